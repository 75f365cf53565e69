"""`leadx run --broker kafka`, what `make run` starts where Java is present: analysts' ordinary tools
work beside it (Debian's kcat lists the topics and reads `sale.closed`, with the commands `leadx run`
prints and the README's, verbatim); a broker killed with SIGKILL is started again from its data
folder, its topics and records still there, and leads sell again; Ctrl-C stops the broker cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev import exchange_env
from leadx.dev.stack import free_port
from tests.integration.test_run_supervision import RunningExchange, beside

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]

README = Path(__file__).resolve().parents[2] / "README.md"
KAFKA_MAIN = "kafka.Kafka"  # the broker's main class, on its command line
LEAD_LINE = re.compile(r"^lead +([A-Z0-9]{10}) +in ")


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[RunningExchange]:
    run = RunningExchange(tmp_path_factory.mktemp("project"), "--broker", "kafka",
                          INTAKE_PORT=str(free_port()), GRPC_PORT=str(free_port()))
    try:
        ready = run.wait_for("exchange ready", timeout_s=240)
        run.wait_for("SOLD ", since=ready)
        yield run
    finally:
        run.stop()


def bootstrap(run: RunningExchange) -> str:
    return exchange_env.read(run.folder / ".leadx" / exchange_env.FILE_NAME)["KAFKA_BOOTSTRAP_SERVERS"]


def leads_in(run: RunningExchange) -> set[str]:
    return {found[1] for line in list(run.lines) if (found := LEAD_LINE.match(line))}


def kcat(*arguments: str) -> bytes:
    result = subprocess.run(["kcat", *arguments], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def sale_keys(run: RunningExchange) -> list[str]:
    return kcat("-b", bootstrap(run), "-C", "-t", "sale.closed", "-o", "beginning", "-e", "-f", "%k\n").decode().split()


def test_it_says_it_runs_apache_kafka_and_kcat_lists_and_reads_sale_closed(running: RunningExchange):
    assert any(line.startswith("leadx: broker: Apache Kafka 4.1.1 (--broker kafka") for line in running.lines)
    address = bootstrap(running)
    assert address.startswith("127.0.0.1:")

    listing = kcat("-b", address, "-L").decode()
    assert f"broker 1 at {address}" in listing, listing
    for topic in ("lead.submitted", "lead.verified", "auction.opened", "bid.placed", "sale.closed"):
        assert f'topic "{topic}" with ' in listing, listing

    # One record, as it is: the SaleClosed protobuf (docs/events.md), then kcat's newline.
    record = kcat("-b", address, "-C", "-t", "sale.closed", "-o", "beginning", "-c", "1", "-e")
    assert record.endswith(b"\n") and len(record) > 1
    sale = ev.SaleClosed.FromString(record[:-1])
    assert sale.lead_id in leads_in(running) and sale.lead_id.encode() in record, sale
    assert sale.outcome in (ev.SALE_OUTCOME_SOLD, ev.SALE_OUTCOME_UNSOLD)


def test_the_printed_kcat_commands_and_the_readme_s_work_beside_it(running: RunningExchange):
    tour = running.wait_for("the topics with Kafka's own tools")
    listing, reading = running.lines[tour + 1].strip(), running.lines[tour + 2].strip()
    assert listing == f"kcat -b {bootstrap(running)} -L"
    listed = beside(running, listing)
    assert listed.returncode == 0 and 'topic "sale.closed"' in listed.stdout, listed.stderr
    read = beside(running, reading)  # each sale's lead id (its key) and headers
    assert read.returncode == 0, read.stderr
    first = read.stdout.splitlines()[0]
    assert first.split()[0] in leads_in(running) and "event-type=leadx.events.v1.SaleClosed" in first, first

    block = readme_kcat_block()
    readme = beside(running, block)
    assert readme.returncode == 0, readme.stderr
    assert 'topic "sale.closed"' in readme.stdout and "event-type=leadx.events.v1.SaleClosed" in readme.stdout, \
        readme.stdout[-2000:]


def readme_kcat_block() -> str:
    """The README's shell block with the kcat commands, as a reader would paste it."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    found = [block for block in blocks if "kcat -b" in block]
    assert len(found) == 1, "the README has one shell block with kcat commands"
    return found[0]


def test_a_killed_broker_starts_again_from_its_data_with_its_records_and_leads_sell_again(running: RunningExchange):
    run = running
    before = sale_keys(run)
    assert before
    broker = run.child(KAFKA_MAIN)
    killed = len(run.lines)
    os.kill(broker, signal.SIGKILL)
    reported = run.wait_for("leadx: broker exited on its own (killed by signal 9)", since=killed, timeout_s=30)
    run.wait_for("leadx: starting broker again (1 of 3)", since=reported, timeout_s=10)
    restarted = run.wait_for("Apache Kafka started again from its data folder", since=reported, timeout_s=180)
    assert run.child(KAFKA_MAIN) != broker
    run.wait_for("SOLD ", since=restarted, timeout_s=180)  # the services carried on with the broker
    after = sale_keys(run)
    assert set(before) <= set(after) and len(after) > len(before)  # what was there before the crash still is
    assert run.process.poll() is None, run.tail()


def test_ctrl_c_stops_the_broker_with_the_rest(running: RunningExchange):
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(90) == 0, running.tail()
    assert "leadx: stopping services, broker and Redis ..." in running.lines
    left = [pid for pid in filter(str.isdigit, os.listdir("/proc")) if java_of(pid, running.folder)]
    assert left == [], "the Kafka broker outlived leadx run"


def java_of(pid: str, folder: Path) -> bool:
    """Whether the process runs a Kafka broker of this run folder's."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return KAFKA_MAIN in command and str(folder) in command

"""`leadx run`'s supervisor, on real processes: one that dies is reported with its log and started
again, a few times at most; a tansu broker started again takes the services with it, Apache Kafka does not."""

from __future__ import annotations

import signal
import sys

from leadx.dev.stack import LocalStack, ManagedProcess, free_port
from leadx.dev.supervisor import Supervisor
from tests.conftest import poll_until

SLEEPER = [sys.executable, "-c", "import time; print('sleeper up', flush=True); time.sleep(120)"]


def sleeper(stack: LocalStack, name: str) -> ManagedProcess:
    process = ManagedProcess(name, SLEEPER, {}, stack.run_dir / "logs" / f"{name}.log")
    process.start()
    stack.services[name] = process
    return process


def listener(stack: LocalStack, name: str) -> ManagedProcess:
    port = free_port()
    process = ManagedProcess(name, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], {},
                             stack.run_dir / "logs" / f"{name}.log", port=port)
    process.start()
    stack.infra.append(process)
    return process


def test_a_service_that_dies_is_reported_with_its_log_and_started_again_a_few_times(tmp_path):
    stack = LocalStack(tmp_path)
    lines: list[str] = []
    supervisor = Supervisor(stack, out=lines.append, max_restarts=2)
    delivery, ledger = sleeper(stack, "delivery"), sleeper(stack, "ledger")
    try:
        poll_until(lambda: "sleeper up" in delivery.log_path.read_text(), message="the sleeper's first line")
        assert supervisor.check() == [] and lines == []  # all running: nothing to say

        first = delivery.process
        delivery.signal(signal.SIGKILL)
        first.wait(10)
        assert supervisor.check() == ["delivery"]
        assert delivery.alive() and delivery.process is not first and ledger.alive()
        assert "leadx: delivery exited on its own (killed by signal 9)" in lines[0]
        assert "leadx:   | sleeper up" in lines  # the last lines of its log
        assert "leadx: starting delivery again (1 of 2)" in lines

        for _ in range(2):
            delivery.process.kill()
            delivery.process.wait(10)
            supervisor.check()
        assert not delivery.alive() and ledger.alive()
        assert lines[-1].startswith("leadx: delivery has been started again 2 times already; it stays stopped")
        said = len(lines)
        assert supervisor.check() == [] and len(lines) == said  # given up on: said once
    finally:
        stack.stop()


def test_a_broker_started_again_restarts_the_services_and_redis_says_what_was_lost(tmp_path):
    stack = LocalStack(tmp_path)
    lines: list[str] = []
    supervisor = Supervisor(stack, out=lines.append)
    broker, redis = listener(stack, "broker"), listener(stack, "redis")
    service = sleeper(stack, "dedup")
    try:
        before = service.process
        for process in (broker, redis):
            process.process.terminate()
            process.process.wait(10)
        assert supervisor.check() == ["broker", "redis"]
        assert broker.alive() and redis.alive()  # listening again on their ports (check waited for them)
        assert service.alive() and service.process is not before  # restarted after the broker
        assert any(line.startswith("leadx: broker exited on its own (killed by signal 15)") for line in lines)
        assert any("topics in memory" in line for line in lines)
        assert any("dedup rebuilds its records from SQL" in line for line in lines)
    finally:
        stack.stop()


def test_apache_kafka_started_again_keeps_its_topics_so_the_services_carry_on(tmp_path):
    stack = LocalStack(tmp_path, broker="kafka")
    lines: list[str] = []
    supervisor = Supervisor(stack, out=lines.append)
    broker = listener(stack, "broker")
    service = sleeper(stack, "dedup")
    try:
        before = service.process
        broker.process.kill()
        broker.process.wait(10)
        assert supervisor.check() == ["broker"]
        assert broker.alive() and service.process is before  # the services are left running
        assert lines[-1] == ("leadx: Apache Kafka started again from its data folder, with its topics and records:"
                             " the services reconnect to it")
        assert not any("topics in memory" in line for line in lines)
    finally:
        stack.stop()

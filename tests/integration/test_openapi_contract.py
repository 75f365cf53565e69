"""The intake's OpenAPI document is its exact contract: schemathesis, with every one of its checks,
finds nothing to report against a running intake, with a seller's key, a buyer's and the operators'.

Each audience's run covers the operations tagged for it (the public ones with the sellers'), in all
of schemathesis's phases: the document's examples, the coverage of every constraint's edges and
every undeclared method, random requests that fit the document and that do not, and stateful
sequences linking what one answer creates to the next request. A request the document accepts is
accepted, one it refuses is refused with a 4xx, every answer is one the operation lists, in the
media type and with the headers it says, and 405s name the path's methods in Allow. The only slack is
what each operation lists under `x-refusals-beyond-schema` (a ZIP code that exists, a consumer's
age, a direct-sale contract), which tests/integration/openapi_refusals.py holds the answers to.

Deterministic: one seed, a bounded number of examples per operation, one schemathesis worker per
run. The sellers' and the buyers' runs go side by side (each on accounts of its own; the runs are
bound by their own CPU, and the machine had room), the operators' alone after them: it rotates and
revokes keys. The exchange is the intake and dedup (so a POST gets its verdict at once), with rate
limits far above what the runs send: the limits are tested in tests/unit/test_intake_rate_limits.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import http_calls as http
from tests.integration.harness import Exchange, start_exchange

pytestmark = pytest.mark.integration

ADMIN_KEY = "openapi-contract-admin-key"  # a test value, not a secret
SEED = 20_250_101
MAX_EXAMPLES = 6
HOOKS = Path(__file__).with_name("openapi_refusals.py")
# Far above what one run sends, so no answer depends on how fast the machine is.
UNLIMITED = {name: "1000000" for name in ("INTAKE_RATE_LIMIT_PER_SECOND", "INTAKE_ADMIN_RATE_LIMIT_PER_SECOND",
                                          "INTAKE_ADDRESS_RATE_LIMIT_PER_SECOND", "INTAKE_AUTH_FAILURES_PER_MINUTE")}
# Audience → (the tags of its operations, its key); the operators last: their run rotates and revokes keys.
AUDIENCES = {"sellers": (("sellers", "public"), "seller"), "buyers": (("buyers",), "buyer"),
             "operators": (("admin",), "admin")}


@pytest.fixture(scope="module")
def contract_exchange(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    prefix = f"{tmp_path_factory.mktemp('c').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("contract"), kafka_bootstrap, redis_url, prefix, ["alpha"],
                              ["intake", "dedup"], ADMIN_API_KEY=ADMIN_KEY, **UNLIMITED)
    yield exchange
    exchange.stop()


# Operations whose bodies are documents another operation's coverage already walks edge by edge
# (an import's profiles are replaceProfiles' Profile, a preview's profile is openList's): fuzzed,
# not walked again, to keep the run within its time.
COVERED_ELSEWHERE = ("importProfiles", "previewList")


def schemathesis_config(document: dict, path: Path) -> Path:
    """The run's configuration: an operation that lists refusals beyond its schema may answer 422 to
    a request the document accepts (the hooks then hold that 422 to the list)."""
    accepted = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
    sections = []
    for item in document["paths"].values():
        for operation in item.values():
            settings = []
            if operation.get("x-refusals-beyond-schema"):
                settings.append(f"checks.positive_data_acceptance.expected-statuses = {accepted}")
            if operation["operationId"] in COVERED_ELSEWHERE:
                settings.append("phases.coverage.enabled = false")
            if settings:
                sections.append("\n".join(["[[operations]]", f'include-operation-id = "{operation["operationId"]}"',
                                           *settings, ""]))
    path.write_text("\n".join(sections).replace("'", '"'))
    return path


RUN_TIMEOUT_S = 600


class Runs:
    """Each audience's schemathesis run, started when a test first asks for one: the sellers' and
    the buyers' together (those of them the session runs), the operators' once no other run is going."""

    def __init__(self, exchange: Exchange, folder: Path, selected: set[str]) -> None:
        self.exchange, self.folder, self.selected = exchange, folder, selected
        self.running: dict[str, tuple[subprocess.Popen, float]] = {}
        self.ended: dict[str, tuple[int, str, float]] = {}

    def result(self, audience: str) -> tuple[int, str, float]:
        """The run's exit code, its output and its seconds."""
        if audience not in self.ended:
            if audience == "operators":
                self._wait_for(*self.running)
                self._start(audience)
            else:
                for side_by_side in ("sellers", "buyers"):
                    if (side_by_side in self.selected | {audience} and side_by_side not in self.running
                            and side_by_side not in self.ended):
                        self._start(side_by_side)
            self._wait_for(audience)
        return self.ended[audience]

    def _start(self, audience: str) -> None:
        url = self.exchange.intake_url()
        tags, who = AUDIENCES[audience]
        key = {"seller": self.exchange.seller_key, "buyer": self.exchange.buyer_keys["alpha"], "admin": ADMIN_KEY}[who]
        folder = self.folder / audience
        folder.mkdir(exist_ok=True)
        config = schemathesis_config(http.get(f"{url}/openapi.json", timeout=10).json(), folder / "schemathesis.toml")
        command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
                   f"{url}/openapi.json", "--header", f"Authorization: Bearer {key}", "--checks", "all",
                   "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color",
                   *(argument for tag in tags for argument in ("--include-tag", tag))]
        with (folder / "output.txt").open("w") as output:
            process = subprocess.Popen(command, cwd=folder, stdout=output, stderr=subprocess.STDOUT, text=True,
                                       env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)})
        self.running[audience] = (process, time.monotonic())

    def _wait_for(self, *audiences: str) -> None:
        """Until these runs have ended, noting when each run going ends; any failure here (a run over
        its time, the test's timeout, Ctrl-C) stops every run."""
        try:
            while any(audience in self.running for audience in audiences):
                for audience, (process, started) in list(self.running.items()):
                    if process.poll() is not None:
                        del self.running[audience]
                        output = (self.folder / audience / "output.txt").read_text()
                        self.ended[audience] = (process.returncode, output, time.monotonic() - started)
                    elif time.monotonic() - started > RUN_TIMEOUT_S:
                        raise TimeoutError(f"the {audience}' schemathesis run took over {RUN_TIMEOUT_S} s")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process, _ in self.running.values():
            process.kill()
            process.wait()
        self.running.clear()


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, contract_exchange: Exchange, tmp_path_factory) -> Iterator[Runs]:
    selected = {item.callspec.params["audience"] for item in request.session.items
                if item.nodeid.startswith(request.node.nodeid) and hasattr(item, "callspec")}
    runs = Runs(contract_exchange, tmp_path_factory.mktemp("schemathesis"), selected)
    yield runs
    runs.stop()


@pytest.mark.parametrize("audience", list(AUDIENCES))
def test_schemathesis_finds_nothing_against_the_document(runs: Runs, audience: str):
    code, output, seconds = runs.result(audience)
    print(f"schemathesis, {audience}: {seconds:.1f} s\n{output[-2000:]}")
    assert code == 0, f"schemathesis found failures with the {audience}' key:\n{output}"

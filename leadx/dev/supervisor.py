"""Keeps `leadx run`'s processes running, as a supervisor would.

A process that exits on its own (a crash, an out-of-memory kill, a `kill -9` from a curious
developer) is reported with the last lines of its log and started again, up to `max_restarts` times
each; after that it is left stopped and said so. The exchange's guarantees carry the rest: what a
service had in hand is read again from the broker when it comes back.

tansu, the light local broker, and Redis keep their data in memory only. A tansu started again has
lost every topic, so the services are restarted after it, to create their topics and join their
groups again; a Redis started again is empty, and dedup rebuilds its records from SQL before it
judges another lead (docs/dedup.md). Both are said when they happen. Apache Kafka starts again
from its data folder, with its topics, records and the groups' offsets: the services reconnect to
it on their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from leadx.dev.stack import LocalStack, ManagedProcess

MAX_RESTARTS = 3
LOG_LINES = 5

AFTER_RESTART = {
    "broker": "the broker keeps its topics in memory, so they went with it: restarting the services"
              " to create them again",
    "redis": "Redis keeps its data in memory, so it is empty now: dedup rebuilds its records from SQL"
             " and holds new leads until it has",
}

KAFKA_AFTER_RESTART = ("Apache Kafka started again from its data folder, with its topics and records: the services"
                       " reconnect to it")


def last_lines(process: ManagedProcess, count: int = LOG_LINES) -> list[str]:
    """The last non-empty lines of a process's log (its stdout and stderr)."""
    try:
        text = process.log_path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]


@dataclass
class Supervisor:
    stack: LocalStack
    out: Callable[[str], None] = print
    max_restarts: int = MAX_RESTARTS
    restarts: Counter[str] = field(default_factory=Counter)
    given_up: set[str] = field(default_factory=set)

    def watched(self) -> list[ManagedProcess]:
        return [*self.stack.infra, *self.stack.services.values()]

    def check(self) -> list[str]:
        """One look at every process: each that exited on its own is reported and started again.
        Returns the names of those started again. Blocking (a broker waits for its port): run it
        on a thread from async code."""
        restarted = []
        for process in self.watched():
            code = process.exit_code()
            if code is None or process.name in self.given_up:
                continue
            self.out(f"leadx: {process.name} exited on its own ({describe(code)}); the last lines of"
                     f" {process.log_path}:")
            for line in last_lines(process):
                self.out(f"leadx:   | {line}")
            if self.restarts[process.name] >= self.max_restarts:
                self.given_up.add(process.name)
                self.out(f"leadx: {process.name} has been started again {self.max_restarts} times already;"
                         f" it stays stopped (the rest of the exchange goes on)")
                continue
            self.restarts[process.name] += 1
            self.start_again(process)
            restarted.append(process.name)
        return restarted

    def start_again(self, process: ManagedProcess) -> None:
        self.out(f"leadx: starting {process.name} again ({self.restarts[process.name]} of {self.max_restarts})")
        if process in self.stack.infra:
            self.stack.start_infra_process(process)
        else:
            self.stack.restart(process.name)
        if process.name == "broker" and self.stack.broker == "kafka":
            self.out(f"leadx: {KAFKA_AFTER_RESTART}")
            return
        if note := AFTER_RESTART.get(process.name):
            self.out(f"leadx: {note}")
        if process.name == "broker":
            self.stack.stop_services()
            for service in self.stack.services.values():
                service.start()


def describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

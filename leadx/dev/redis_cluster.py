"""A Redis Cluster of local processes for the tests and benches: Debian's `redis-server` (the build
deployments run) started once per node on loopback, joined by `redis-cli --cluster create`, with
one or more replicas per primary so that a primary's death can be watched being repaired.

Each node has a folder of its own (its nodes.conf, and its append-only files when asked for) and a
log in `<folder>/logs`. A node is named by its address, "127.0.0.1:<port>", as CLUSTER NODES and
redis-py name it. The fault helpers kill a node (SIGKILL, as a crash), wait for its replica to take
its slots over, and start it again on the same port with the same nodes.conf, so it rejoins: a
primary replaced meanwhile comes back as a replica of its successor."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import redis

from leadx.dev.ports import private_port
from leadx.dev.stack import ManagedProcess, wait_for_port

SLOTS = 16384
HOST = "127.0.0.1"

T = TypeVar("T")

class ClusterNotReady(TimeoutError):
    """The cluster did not reach the state waited for in time; the message says what was still
    wrong and where the nodes' logs are."""


def cluster_binaries() -> tuple[str, str]:
    """redis-server and the redis-cli that creates the cluster (Debian: apt-get install redis-server)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise RuntimeError("redis-server and redis-cli are needed on PATH for a local Redis Cluster "
                           "(Debian: apt-get install redis-server)")
    return server, cli


@dataclass(frozen=True)
class NodeEntry:
    """One line of CLUSTER NODES: a node as the node asked sees it."""

    node_id: str
    address: str  # host:port (the cluster bus port and any hostname dropped)
    flags: frozenset[str]
    primary_id: str | None  # for a replica, the node it replicates
    slots: tuple[tuple[int, int], ...]  # inclusive ranges

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        """Suspected (fail?) or agreed (fail) down, or not yet fully known (handshake, noaddr)."""
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})

    def serves(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeEntry]:
    """CLUSTER NODES' text: `<id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch>
    <link> <slot>...`. Slots being migrated (`[slot->-id]`) are not the node's yet: left out."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        slots = []
        for item in fields[8:]:
            if item.startswith("["):
                continue
            low, _, high = item.partition("-")
            slots.append((int(low), int(high or low)))
        entries.append(NodeEntry(fields[0], fields[1].split("@")[0].split(",")[0], frozenset(fields[2].split(",")),
                                 None if fields[3] == "-" else fields[3], tuple(slots)))
    return entries


def parse_info(text: str) -> dict[str, str]:
    """`key:value` lines, as CLUSTER INFO and INFO write them."""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


@dataclass
class LocalRedisCluster:
    """`primaries` primaries (at least 3, as redis-cli requires) with `replicas_per_primary` replicas
    each, on free loopback ports. `start()` returns once every node agrees the cluster is whole."""

    folder: Path
    primaries: int = 3
    replicas_per_primary: int = 1
    appendonly: bool = False  # append-only files in each node's folder: a restarted node keeps its data
    # Short, so that a killed primary is replaced within seconds (production keeps Redis' 15 s).
    node_timeout_ms: int = 2000
    timeout_s: float = 60  # for each wait: generous, for a loaded 2-core CI machine
    _processes: dict[str, ManagedProcess] = field(default_factory=dict, init=False)
    _ids: dict[str, str] = field(default_factory=dict, init=False)  # address -> node id (kept in nodes.conf)
    _killed: set[str] = field(default_factory=set, init=False)
    _slots_when_killed: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.primaries < 3:
            raise ValueError("primaries: at least 3 (redis-cli --cluster create refuses fewer)")
        if self.replicas_per_primary < 0:
            raise ValueError("replicas_per_primary: 0 or more")

    @property
    def nodes(self) -> list[str]:
        """Every node's address, in start order: the first `primaries` were made the primaries."""
        return list(self._processes)

    @property
    def url(self) -> str:
        """A seed URL for redis-py's RedisCluster.from_url: a running node (a primary, until one was
        killed); the client learns the rest of the cluster from it."""
        live = self._live()
        if not live:
            raise RuntimeError("no node of the cluster is running")
        return f"redis://{live[0]}"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def __enter__(self) -> LocalRedisCluster:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start every node, create the cluster, and wait until it serves all slots with every
        replica in sync. Whatever was started is stopped again if any step fails."""
        server, cli = cluster_binaries()
        shutil.rmtree(self.folder, ignore_errors=True)  # redis-cli only joins nodes that know no cluster
        count = self.primaries * (1 + self.replicas_per_primary)
        for _ in range(count):
            process = self._node_process(server, private_port(), private_port())
            self._processes[f"{HOST}:{process.port}"] = process
        try:
            for process in self._processes.values():
                process.start()
            for process in self._processes.values():
                self._wait_listening(process)
            self._create(cli)
            self._ids = {node: self._ask(node, lambda client: str(client.execute_command("CLUSTER", "MYID")))
                         for node in self.nodes}
            self.wait_ready()
        except BaseException:
            self.stop()  # not left running half made, or after an interrupt
            raise

    def _node_process(self, server: str, port: int, bus_port: int) -> ManagedProcess:
        folder = self.folder / f"node-{port}"
        folder.mkdir(parents=True)
        # The bus port is chosen too (Redis' default is port + 10000, which may be taken or above 65535).
        # Replicas get their first sync at once rather than after the 5 s a primary otherwise waits
        # for more replicas to share one diskless transfer.
        args = [server, "--port", str(port), "--bind", HOST, "--dir", str(folder),
                "--cluster-enabled", "yes", "--cluster-port", str(bus_port),
                "--cluster-config-file", str(folder / "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--appendonly", "yes" if self.appendonly else "no", "--save", "",
                "--repl-diskless-sync-delay", "0"]
        return ManagedProcess(f"redis-{port}", args, dict(os.environ), self.logs / f"node-{port}.log", port=port,
                              start_timeout_s=self.timeout_s, stop_timeout_s=10)

    def _wait_listening(self, process: ManagedProcess) -> None:
        try:
            wait_for_port(HOST, process.port or 0, self.timeout_s, process.process)
        except (RuntimeError, TimeoutError) as error:
            raise ClusterNotReady(f"{process.name}: {error}; see {process.log_path}") from error

    def _create(self, cli: str) -> None:
        """redis-cli assigns the slots to the first `primaries` nodes and makes the others their
        replicas, then waits until the nodes have met (it has no time limit of its own)."""
        argv = [cli, "--cluster", "create", *self.nodes, "--cluster-replicas", str(self.replicas_per_primary),
                "--cluster-yes"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise ClusterNotReady(f"redis-cli --cluster create did not finish within {self.timeout_s:g}s; "
                                  f"see {self.logs}") from error
        if done.returncode != 0 or "[OK] All 16384 slots covered" not in done.stdout:
            raise RuntimeError(f"redis-cli --cluster create failed (exit {done.returncode}): "
                               f"{(done.stdout + done.stderr)[-2000:]}; see {self.logs}")

    def stop(self) -> None:
        """Stop every node (all told at once: none waits for another's shutdown)."""
        for process in self._processes.values():
            process.signal(signal.SIGTERM)
        for process in self._processes.values():
            process.stop()

    # What the nodes say.

    def _live(self) -> list[str]:
        return [node for node, process in self._processes.items() if process.alive()]

    def _ask(self, node: str, question: Callable[[redis.Redis], T]) -> T:
        host, port = node.rsplit(":", 1)
        client = redis.Redis(host=host, port=int(port), decode_responses=True, socket_connect_timeout=2,
                             socket_timeout=5)
        try:
            return question(client)
        finally:
            client.close()

    def view(self, node: str) -> list[NodeEntry]:
        """The cluster as `node` sees it (CLUSTER NODES)."""
        return parse_cluster_nodes(str(self._ask(node, lambda client: client.execute_command("CLUSTER", "NODES"))))

    def cluster_info(self, node: str) -> dict[str, str]:
        return parse_info(str(self._ask(node, lambda client: client.execute_command("CLUSTER", "INFO"))))

    def _any_view(self) -> list[NodeEntry]:
        """The view of the first running node that answers."""
        for node in self._live():
            try:
                return self.view(node)
            except redis.RedisError:
                continue
        raise RuntimeError(f"no node of the cluster answers; see {self.logs}")

    def primary_for_slot(self, slot: int) -> str:
        """The address of the primary serving `slot`, as a running node sees it."""
        for entry in self._any_view():
            if entry.is_primary and not entry.failing and entry.serves(slot):
                return entry.address
        raise RuntimeError(f"no primary serves slot {slot} now")

    def replicas_of(self, primary: str) -> list[str]:
        """The addresses of the nodes replicating `primary`, as a running node sees it."""
        primary_id = self._ids[primary]
        return [entry.address for entry in self._any_view() if entry.primary_id == primary_id]

    def role(self, node: str) -> str:
        """"master" or "slave", as the node itself says (ROLE)."""
        return str(self._ask(node, lambda client: client.execute_command("ROLE"))[0])

    # Faults.

    def kill(self, node: str) -> None:
        """SIGKILL the node, as a crash: no shutdown, nothing told to the others. The slots it served
        are noted for `wait_failover`."""
        self._slots_when_killed[node] = next((entry.slots for entry in self._any_view()
                                              if entry.address == node and entry.is_primary), ())
        self._killed.add(node)
        process = self._processes[node]
        process.signal(signal.SIGKILL)
        if process.process is not None:
            process.process.wait(10)

    def pause(self, node: str) -> None:
        """SIGSTOP the node: it holds its connections and answers nothing, as a node stalled (a
        replica that stops taking its primary's writes, for one)."""
        self._processes[node].signal(signal.SIGSTOP)

    def resume(self, node: str) -> None:
        self._processes[node].signal(signal.SIGCONT)

    def restart(self, node: str) -> None:
        """Start a stopped node again: the same port, folder and nodes.conf, so it rejoins as the
        node it was (a primary replaced meanwhile comes back as its successor's replica). Returns once
        the whole cluster is ready again (`wait_ready`)."""
        process = self._processes[node]
        if process.alive():
            raise RuntimeError(f"{node} is running")
        process.start()
        self._killed.discard(node)
        self._wait_listening(process)
        self.wait_ready()

    def wait_failover(self, old_primary: str) -> str:
        """Wait until the slots the killed `old_primary` served are served by another running node
        (its replica, promoted) in the view of every running node, and each says cluster_state:ok.
        Returns the new primary's address."""
        slots = self._slots_when_killed.get(old_primary)
        if not slots:
            raise ValueError(f"{old_primary} was not a primary serving slots when it was killed")

        def problem() -> str | None:
            successors = set()
            for node in self._live():
                state = self.cluster_info(node).get("cluster_state")
                if state != "ok":
                    return f"{node} says cluster_state:{state}"
                view = self.view(node)
                for low, _ in slots:
                    owner = next((entry for entry in view if entry.is_primary and entry.serves(low)), None)
                    if owner is None or owner.address == old_primary or owner.failing:
                        return f"{node} sees slot {low} served by {owner.address if owner else 'nobody'}"
                    successors.add(owner.address)
            if len(successors) != 1:
                return f"the nodes disagree on who took over: {sorted(successors)}"
            return None

        self._poll(problem, f"a replica of {old_primary} to take over its slots")
        return self.primary_for_slot(slots[0][0])

    # Waiting.

    def wait_ready(self) -> None:
        """Wait until every running node says cluster_state:ok with all 16384 slots served, knows
        every other running node and suspects none, sees every running node either serving slots or
        replicating one that does, and, if a replica, has its link to its primary up (INFO
        replication): the state a cluster is in once a fault is repaired."""
        self._poll(self._not_ready, "the cluster to be whole")

    def _not_ready(self) -> str | None:
        """What is not yet right with the running nodes, or None when nothing is."""
        live = self._live()
        for node in live:
            info = self.cluster_info(node)
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                return (f"{node} says cluster_state:{info.get('cluster_state')} with "
                        f"{info.get('cluster_slots_ok')} of {SLOTS} slots served")
            view = {entry.address: entry for entry in self.view(node)}
            for other in live:
                entry = view.get(other)
                if entry is None:
                    return f"{node} does not know {other} yet"
                if entry.failing:
                    return f"{node} sees {other} as {','.join(sorted(entry.flags))}"
                if entry.is_primary and not entry.slots:
                    return f"{node} sees {other} as a primary without slots (not yet a replica)"
            if not view[node].is_primary:
                link = self._ask(node, lambda client: client.info("replication")).get("master_link_status")
                if link != "up":
                    return f"{node}'s link to its primary is {link}"
        return None

    def _poll(self, problem: Callable[[], str | None], waited_for: str) -> None:
        """Call `problem` until it finds none. A node that exits without having been killed here
        ends the wait at once; a node that does not answer yet is one more problem to wait out."""
        deadline = time.monotonic() + self.timeout_s
        last = "not asked yet"
        while True:
            for node, process in self._processes.items():
                code = process.exit_code()
                if code is not None and node not in self._killed:
                    raise RuntimeError(f"{node} exited with code {code}; see {process.log_path}")
            try:
                found = problem()
            except (redis.RedisError, OSError) as error:
                found = f"a node did not answer: {error}"
            if found is None:
                return
            last = found
            if time.monotonic() > deadline:
                raise ClusterNotReady(f"timed out after {self.timeout_s:g}s waiting for {waited_for}: {last}; "
                                      f"see the logs in {self.logs}")
            time.sleep(0.1)

"""Apache Kafka on this machine, from its jars on Maven Central: one KRaft broker (broker and
controller in one process) on free ports of 127.0.0.1, in a temporary folder, stopped cleanly.

`fetch()` (`make kafka-jars`) resolves org.apache.kafka:kafka_2.13 and its runtime dependencies
with Maven into a cache folder under the user's cache directory (`$XDG_CACHE_HOME` or
`~/.cache`, `leadx/kafka-<version>/libs`), once; Maven's own repository keeps the downloads too.
`KafkaBroker` runs them with Java 17+:

    with KafkaBroker(listeners=[Listener("CLIENT", "SASL_SSL")], tls=BrokerTls(cert, key),
                     scram_users={"leadx": "secret"}) as broker:
        broker.bootstrap("CLIENT")  # 127.0.0.1:<port>

Every broker also has two plaintext listeners of its own on 127.0.0.1: CONTROLLER (KRaft) and
INTERNAL (between brokers, and for tools). SCRAM users are written at format time, before the
broker starts, for each of `sasl_mechanisms`.

`cluster(3, folder)` gives three such brokers that form one cluster (each a controller too, the
three the KRaft quorum), with replicated internal topics, every topic's replication factor 3 and
`min.insync.replicas` 2 by default: what production runs, so that one broker may fail.

`python -m leadx.dev.kafka_broker fetch` fetches the jars; `python -m leadx.dev.kafka_broker run
[--port N]` starts a plaintext broker and prints its bootstrap address until interrupted.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from leadx.dev.ports import free_port

KAFKA_VERSION = "4.1.1"
# Kafka logs through SLF4J 1.7 and ships no binding in its Maven dependencies: the simple one writes
# to the broker's log file.
SLF4J_VERSION = "1.7.36"
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
OWN_LISTENERS = ("CONTROLLER", "INTERNAL")
STARTED = "Kafka Server started"  # what the broker logs once it serves every listener
REQUEST_LOGGER = "kafka.request.logger"  # at DEBUG, a line for every request completed
# What a SCRAM user's name and password may hold here: they are written into a command line of
# Kafka's storage tool, whose own syntax uses `=`, `,`, `[` and `]`.
SCRAM_TEXT = re.compile(r"[A-Za-z0-9._@-]+")

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>leadx.dev</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leadx" / f"kafka-{KAFKA_VERSION}"


def jars_dir() -> Path:
    return cache_dir() / "libs"


def fetched() -> bool:
    return (cache_dir() / "complete").exists()


def fetch(quiet: bool = False) -> Path:
    """The jars' folder, resolved from Maven Central the first time (a lock keeps two processes
    from resolving at once; a resolution cut short leaves nothing behind to be taken as whole)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fetched():
            return jars_dir()
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Maven (mvn) is needed to fetch Apache Kafka's jars: apt-get install maven")
        (folder / "pom.xml").write_text(POM.format(kafka=KAFKA_VERSION, slf4j=SLF4J_VERSION))
        partial = folder / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        if not quiet:
            print(f"fetching Apache Kafka {KAFKA_VERSION}'s jars into {jars_dir()}", flush=True)
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(folder / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"Maven could not fetch Apache Kafka {KAFKA_VERSION}:\n{result.stdout}{result.stderr}")
        shutil.rmtree(jars_dir(), ignore_errors=True)
        partial.rename(jars_dir())
        (folder / "complete").write_text(f"kafka_2.13 {KAFKA_VERSION}\n")
        return jars_dir()


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise RuntimeError("Java 17 or newer is needed to run Apache Kafka: apt-get install openjdk-17-jre-headless")
    return found


def java_problem() -> str | None:
    """Why this machine cannot run Apache Kafka (no Java, or one older than 17), or None when it can."""
    try:
        command = java()
    except RuntimeError as error:
        return str(error)
    try:
        result = subprocess.run([command, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{command} -version failed ({error})"
    found = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if found is None:
        return f"{command} -version did not say its version"
    major = int(found[2]) if found[1] == "1" else int(found[1])  # Java 8 calls itself 1.8
    if major < 17:
        return f"Apache Kafka {KAFKA_VERSION} needs Java 17 or newer; {command} is Java {major}"
    return None


def new_cluster_id() -> str:
    """A cluster id as Kafka writes one (16 random bytes, URL-safe base64 without padding), never
    starting with `-`, which its tools would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class Listener:
    """A listener for clients: its name (Kafka's, upper case), protocol and port (0: a free one).
    `client_auth` asks TLS clients for a certificate signed by the broker's client CA."""

    name: str
    protocol: str = "PLAINTEXT"
    port: int = 0
    client_auth: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"listener {self.name}: protocol must be one of {', '.join(PROTOCOLS)}")
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", self.name) or self.name in OWN_LISTENERS:
            raise ValueError(f"listener name {self.name!r}: upper case, and not one of {', '.join(OWN_LISTENERS)}")
        if self.client_auth and self.protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(f"listener {self.name}: client certificates need a TLS protocol")


@dataclass(frozen=True)
class BrokerTls:
    """The broker's certificate and unencrypted key (PEM files), and the CA its TLS clients'
    certificates must chain to, for listeners with `client_auth`."""

    certfile: Path
    keyfile: Path
    client_cafile: Path | None = None


@dataclass(frozen=True)
class ClusterMember:
    """Which broker of which cluster this is: its node id, the cluster's size, id and KRaft quorum
    (node id to controller port; empty for a broker alone, which chooses its own port)."""

    node_id: int
    size: int
    cluster_id: str | None
    quorum: Mapping[int, int]

    @classmethod
    def alone(cls) -> ClusterMember:
        return cls(node_id=1, size=1, cluster_id=None, quorum={})


class KafkaBroker:
    def __init__(self, listeners: Sequence[Listener] = (Listener("CLIENT"),), *, tls: BrokerTls | None = None,
                 scram_users: Mapping[str, str] | None = None,
                 sasl_mechanisms: Sequence[str] = SCRAM_MECHANISMS, properties: Mapping[str, str] | None = None,
                 workdir: Path | None = None, heap_mb: int = 512, member: ClusterMember | None = None,
                 request_log: bool = False) -> None:
        """`request_log`: every request the broker completes written to its output, one JSON line each
        (Kafka's request logger at DEBUG: its API, client id, sizes and times; leadx.dev.broker_requests
        reads them). It costs the broker CPU a request, so a bench that measures CPU runs without it."""
        if not listeners:
            raise ValueError("a broker needs at least one listener for clients")
        if len({listener.name for listener in listeners}) != len(listeners):
            raise ValueError("listener names must differ")
        needs_tls = any(listener.protocol in ("SSL", "SASL_SSL") for listener in listeners)
        if needs_tls and tls is None:
            raise ValueError("an SSL or SASL_SSL listener needs the broker's certificate (tls=BrokerTls(...))")
        if any(listener.client_auth for listener in listeners) and (tls is None or tls.client_cafile is None):
            raise ValueError("a listener with client_auth needs BrokerTls.client_cafile")
        for mechanism in sasl_mechanisms:
            if mechanism not in SCRAM_MECHANISMS:
                raise ValueError(f"SASL mechanism {mechanism!r}: this launcher sets up {', '.join(SCRAM_MECHANISMS)}")
        for name, password in (scram_users or {}).items():
            if not (SCRAM_TEXT.fullmatch(name) and SCRAM_TEXT.fullmatch(password)):
                raise ValueError(f"SCRAM user {name!r}: name and password of letters, digits and ._@- only")
        self.listeners = list(listeners)
        self.tls = tls
        self.scram_users = dict(scram_users or {})
        self.sasl_mechanisms = tuple(sasl_mechanisms)
        self.properties = dict(properties or {})
        self.heap_mb = heap_mb
        self.request_log = request_log
        self.member = member or ClusterMember.alone()
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="leadx-kafka-"))
        self.log_path = self.workdir / "broker.log"
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen | None = None

    # --- addresses ---

    def bootstrap(self, listener: str | None = None) -> str:
        """`127.0.0.1:<port>` of a client listener (the first one by default)."""
        name = listener or self.listeners[0].name
        if name not in self.ports:
            raise KeyError(f"no listener {name!r} (the broker has {', '.join(self.ports) or 'not started'})")
        return f"127.0.0.1:{self.ports[name]}"

    # --- life cycle ---

    def prepare(self) -> list[str]:
        """Choose the ports, write the configuration and format the data folder unless it was before
        (its cluster id and records are kept); returns the command that runs the broker. The same
        command starts it again, on the same ports, from the same data: `start()` runs it, and a
        supervisor may run it again."""
        if not fetched():
            raise RuntimeError(f"Apache Kafka's jars are not in {jars_dir()}: run `make kafka-jars`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.choose_ports()
        config = self.workdir / "server.properties"
        config.write_text(self.server_properties())
        if not (self.workdir / "data" / "meta.properties").exists():  # a folder formatted before keeps its cluster
            self._format(config)
        return [java(), *self._jvm_options(), "-cp", f"{jars_dir()}/*", "kafka.Kafka", str(config)]

    def start(self, timeout_s: float = 120) -> KafkaBroker:
        command = self.prepare()
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            cwd=self.workdir)
        finally:
            log.close()
        try:
            self._wait_started(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL after `timeout_s`; the temporary folder
        goes with it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # --- what the broker is given ---

    def choose_ports(self) -> dict[str, int]:
        """Its listeners' ports: those given, free ones for the rest."""
        self.ports = {listener.name: listener.port or free_port() for listener in self.listeners}
        self.ports["INTERNAL"] = free_port()
        # A cluster's controller ports are chosen before any of its brokers is prepared: each names
        # all of them as the quorum.
        self.ports["CONTROLLER"] = self.member.quorum.get(self.member.node_id) or free_port()
        return self.ports

    def server_properties(self) -> str:
        """Its server.properties, once its ports are chosen."""
        controller, internal = self.ports["CONTROLLER"], self.ports["INTERNAL"]
        client = [(listener, self.ports[listener.name]) for listener in self.listeners]
        protocol_map = ["CONTROLLER:PLAINTEXT", "INTERNAL:PLAINTEXT",
                        *(f"{listener.name}:{listener.protocol}" for listener, _ in client)]
        addresses = [f"{listener.name}://127.0.0.1:{port}" for listener, port in client]
        voters = self.member.quorum or {self.member.node_id: controller}
        replicas, min_insync = str(self.member.size), str(min(2, self.member.size))
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(self.member.node_id),
            "controller.quorum.voters": ",".join(f"{node}@127.0.0.1:{port}" for node, port in sorted(voters.items())),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "INTERNAL",
            "listeners": ",".join([*addresses, f"CONTROLLER://127.0.0.1:{controller}",
                                   f"INTERNAL://127.0.0.1:{internal}"]),
            "advertised.listeners": ",".join([*addresses, f"INTERNAL://127.0.0.1:{internal}"]),
            "listener.security.protocol.map": ",".join(protocol_map),
            "log.dirs": str(self.workdir / "data"),
            # Every internal topic on every broker of the cluster (one, alone); a write needs two of
            # them in a cluster of three or more, so one broker may fail without losing any.
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_insync,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_insync,
            "default.replication.factor": replicas,
            "min.insync.replicas": min_insync,
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
        }
        if any(listener.protocol.startswith("SASL_") for listener in self.listeners):
            properties["sasl.enabled.mechanisms"] = ",".join(self.sasl_mechanisms)
            for listener in self.listeners:
                if listener.protocol.startswith("SASL_"):
                    for mechanism in self.sasl_mechanisms:
                        properties[f"listener.name.{listener.name.lower()}.{mechanism.lower()}.sasl.jaas.config"] = \
                            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        if self.tls is not None:
            # Kafka reads a PEM keystore as one file: the key, then the certificate chain.
            keystore = self.workdir / "keystore.pem"
            keystore.write_bytes(self.tls.keyfile.read_bytes() + b"\n" + self.tls.certfile.read_bytes())
            keystore.chmod(0o600)
            properties.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore)})
            if self.tls.client_cafile is not None:
                properties.update({"ssl.truststore.type": "PEM",
                                   "ssl.truststore.location": str(self.tls.client_cafile)})
            for listener in self.listeners:
                if listener.client_auth:
                    properties[f"listener.name.{listener.name.lower()}.ssl.client.auth"] = "required"
        properties.update(self.properties)
        return "".join(f"{key}={value}\n" for key, value in properties.items())

    def _jvm_options(self) -> list[str]:
        return [f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 128)}m", "-XX:+UseSerialGC",
                "-Djava.awt.headless=true",
                # Warnings, and the line that says the broker serves.
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
                *([f"-Dorg.slf4j.simpleLogger.log.{REQUEST_LOGGER}=debug"] if self.request_log else []),
                "-Dorg.slf4j.simpleLogger.showDateTime=true"]

    def _format(self, config: Path) -> None:
        scram = [argument for name, password in self.scram_users.items() for mechanism in self.sasl_mechanisms
                 for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]
        result = subprocess.run(
            [java(), "-Xmx256m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             "-cp", f"{jars_dir()}/*", "kafka.tools.StorageTool", "format", "--ignore-formatted",
             "-t", self.member.cluster_id or new_cluster_id(), "-c", str(config), *scram],
            capture_output=True, text=True, cwd=self.workdir)
        if result.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")

    def _wait_started(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with code {self.process.returncode} before it started:\n"
                                   f"{self.log_tail()}")
            if STARTED in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise TimeoutError(f"Kafka did not start within {timeout_s:g}s:\n{self.log_tail()}")


def cluster(size: int, folder: Path, properties: Mapping[str, str] | None = None,
            heap_mb: int = 512, request_log: bool = False) -> list[KafkaBroker]:
    """`size` plaintext brokers that form one cluster, each in `folder/<node id>` with a CLIENT
    listener. Start them all before waiting for any: a broker serves only once a majority of the
    quorum is up."""
    quorum = {node_id: free_port() for node_id in range(1, size + 1)}
    cluster_id = new_cluster_id()
    return [KafkaBroker([Listener("CLIENT")], properties=properties, workdir=folder / str(node_id), heap_mb=heap_mb,
                        member=ClusterMember(node_id, size, cluster_id, quorum), request_log=request_log)
            for node_id in quorum]


@contextmanager
def running(**options) -> Iterator[KafkaBroker]:
    """A started broker (the jars fetched first if need be), stopped at the end."""
    fetch(quiet=True)
    broker = KafkaBroker(**options)
    with broker:
        yield broker


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leadx.dev.kafka_broker", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help=f"fetch Apache Kafka {KAFKA_VERSION}'s jars into {jars_dir()}")
    run = commands.add_parser("run", help="start a plaintext broker until interrupted")
    run.add_argument("--port", type=int, default=0, help="the clients' port (default: a free one)")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch())
        return 0
    stop = False

    def interrupted(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    with running(listeners=[Listener("CLIENT", "PLAINTEXT", args.port)]) as broker:
        print(f"Apache Kafka {KAFKA_VERSION} at {broker.bootstrap()} (KAFKA_BOOTSTRAP_SERVERS); log {broker.log_path}",
              flush=True)
        while not stop and broker.process is not None and broker.process.poll() is None:
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

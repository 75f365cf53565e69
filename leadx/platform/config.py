"""Configuration from the environment.

Each service builds one frozen settings object at start. Connection settings have no defaults in
services, so a misconfigured pod fails at once with the name of what is missing instead of
silently talking to localhost.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_REQUIRED = object()


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def env_str(name: str, default: object = _REQUIRED, environ: Mapping[str, str] | None = None) -> str:
    """The setting `name` from `environ` (the process's environment unless given)."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value == "":
        if default is _REQUIRED:
            raise ConfigError(f"environment variable {name} is required")
        return str(default)
    return value


def env_int(name: str, default: object = _REQUIRED) -> int:
    raw = env_str(name, default)
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: object = _REQUIRED) -> float:
    raw = env_str(name, default)
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name, "true" if default else "false").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"environment variable {name} must be true or false, got {raw!r}")


def env_choice(name: str, choices: tuple[str, ...], default: str, environ: Mapping[str, str] | None = None) -> str:
    raw = env_str(name, default, environ).strip().upper()
    if raw not in choices:
        raise ConfigError(f"environment variable {name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def env_file(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A file the service reads at start (a certificate, a key): empty when unset, else a path that
    must name a readable file now, not at the first connection."""
    path = env_str(name, "", environ)
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"environment variable {name} names {path!r}, which is not a readable file")
    return path


def _check_tls_files(cafile: tuple[str, str], certfile: tuple[str, str], keyfile: tuple[str, str]) -> None:
    """The (setting, path) of a CA bundle and of a certificate and its key, each optional but the
    certificate and key together: loaded once here, so a file that is not PEM, or a key that is
    not the certificate's, fails at start with the setting's name."""
    (ca_name, ca), (cert_name, cert), (key_name, key) = cafile, certfile, keyfile
    if bool(cert) != bool(key):
        raise ConfigError(f"environment variables {cert_name} and {key_name} go together: set both or neither")
    context = ssl.create_default_context()
    if ca:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"environment variable {ca_name}: {ca!r} holds no PEM certificate ({exc})") from None
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"environment variables {cert_name} and {key_name}: {cert!r} and {key!r} are not "
                              f"a PEM certificate and its unencrypted key ({exc})") from None


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client connects to the brokers: TLS (`SSL`, `SASL_SSL`) verified against the CA file
    (the system's CAs without one), optionally with a client certificate; SASL (`SASL_PLAINTEXT`,
    `SASL_SSL`) with a SCRAM or PLAIN user. Every Kafka client leadx makes takes it from here
    (leadx.platform.kafka.clients)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """From the process's environment, or from `environ` (`leadx status` reads the one it is given)."""
        security = cls(
            protocol=env_choice("KAFKA_SECURITY_PROTOCOL", KAFKA_SECURITY_PROTOCOLS, "PLAINTEXT", environ),
            sasl_mechanism=env_str("KAFKA_SASL_MECHANISM", "", environ).strip().upper(),
            sasl_username=env_str("KAFKA_SASL_USERNAME", "", environ),
            sasl_password=env_str("KAFKA_SASL_PASSWORD", "", environ),
            ssl_cafile=env_file("KAFKA_SSL_CAFILE", environ),
            ssl_certfile=env_file("KAFKA_SSL_CERTFILE", environ),
            ssl_keyfile=env_file("KAFKA_SSL_KEYFILE", environ),
        )
        security._check()
        return security

    def _check(self) -> None:
        given = {"KAFKA_SASL_MECHANISM": self.sasl_mechanism, "KAFKA_SASL_USERNAME": self.sasl_username,
                 "KAFKA_SASL_PASSWORD": self.sasl_password}
        if self.sasl:
            for name, value in given.items():
                if not value:
                    raise ConfigError(f"environment variable {name} is required with "
                                      f"KAFKA_SECURITY_PROTOCOL={self.protocol}")
            if self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                raise ConfigError(f"environment variable KAFKA_SASL_MECHANISM must be one of "
                                  f"{', '.join(KAFKA_SASL_MECHANISMS)}, got {self.sasl_mechanism!r}")
        else:
            # Set but unused would leave the operator believing the connection is authenticated.
            for name, value in given.items():
                if value:
                    raise ConfigError(f"environment variable {name} is set, but KAFKA_SECURITY_PROTOCOL="
                                      f"{self.protocol} uses no SASL: use SASL_SSL (or SASL_PLAINTEXT)")
        files = {"KAFKA_SSL_CAFILE": self.ssl_cafile, "KAFKA_SSL_CERTFILE": self.ssl_certfile,
                 "KAFKA_SSL_KEYFILE": self.ssl_keyfile}
        if not self.tls:
            for name, value in files.items():
                if value:
                    raise ConfigError(f"environment variable {name} is set, but KAFKA_SECURITY_PROTOCOL="
                                      f"{self.protocol} uses no TLS: use SSL or SASL_SSL")
            return
        _check_tls_files(*files.items())


# Consumers heartbeat at least once a second (leadx.platform.kafka.clients.group_timeouts): a session
# shorter than three heartbeats would end at the first late one.
MIN_SESSION_TIMEOUT_MS = 3_000
DEFAULT_SESSION_TIMEOUT_MS = 10_000
DEFAULT_FETCH_MIN_BYTES = 65_536
DEFAULT_COMMIT_INTERVAL_MS = 500
DEFAULT_FETCH_IDLE_WAIT_MS = 500
DEFAULT_PRODUCER_LINGER_MS = 2
MAX_PRODUCER_LINGER_MS = 1_000
# An idle fetch in flight holds back a seek or a new assignment's first fetch to its node until it
# ends (leadx.platform.kafka.idle_fetches), so it is kept short.
MAX_FETCH_IDLE_WAIT_MS = 5_000


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    topic_prefix: str
    partitions: int
    replication_factor: int
    # Off by default: the embedded tansu broker rejects InitProducerId v0. Turn on for real Kafka.
    idempotence: bool
    # How long the broker may hold a fetch that has no new data. Some brokers (tansu) wait it out
    # even when data arrives, so it adds to every hop a lead makes; aiokafka's default is 500 ms.
    fetch_max_wait_ms: int = 25
    # The same for the consumers no seller's answer or sale waits for (the ledger's, list awards'):
    # on tansu the ledger's fetches over every topic were 40% of the idle broker's CPU.
    background_fetch_max_wait_ms: int = 250
    # The same for the two consumers a seller's answer waits on (dedup's lead.submitted, the intake's
    # verdicts); None: fetch_max_wait_ms. Shorter, answers come quicker for more CPU: at 10 ms and 50
    # leads/s on Apache Kafka a seller's answer took p50 16 ms instead of 39, a lead 9% more CPU.
    answer_fetch_max_wait_ms: int | None = None
    # How many bytes a fetch waits for (up to its max wait) before the broker answers it. Apache
    # Kafka answers a fetch as soon as any record arrives, so at 1 byte each record woke each
    # consumer on its own: 80 leads/s sold 39 a second at 51 ms of CPU each, and at 64 KB all 80 at
    # 24 ms (bench/README.md). tansu already holds an idle fetch for its whole wait, and waiting for
    # bytes costs it more CPU than it saves the services: the local stack gives it 1.
    fetch_min_bytes: int = DEFAULT_FETCH_MIN_BYTES
    # After a fetch that brought no records, how long the next may wait for the first byte instead
    # (leadx.platform.kafka.idle_fetches): idle, the batch's wait had every consumer fetch forty times
    # a second for nothing. Only with fetch_min_bytes above 1; 0: every fetch waits for the batch.
    fetch_idle_wait_ms: int = DEFAULT_FETCH_IDLE_WAIT_MS
    # About how often a consumer group commits the offsets of finished records. Each commit is a
    # request to the broker: committed after every fetch, the services made about one a record they
    # read (some fifteen a sold lead). Work finished but not yet committed is redone after a crash,
    # which every handler allows (they are idempotent); revokes and stops commit at once. 0: after
    # every fetch.
    commit_interval_ms: int = DEFAULT_COMMIT_INTERVAL_MS
    # How long a producer holds a record for others to share its request (aiokafka's and faust's
    # linger). A request costs the broker and the producer about the same whatever it carries, so a
    # longer linger may buy CPU with latency: each hop of a lead waits up to it. At 10 ms it saved
    # nothing measurable at 100 and 150 leads/s (bench/README.md), hence 2.
    producer_linger_ms: int = DEFAULT_PRODUCER_LINGER_MS
    # The same for the producers someone's HTTP answer waits on (the intake's lead.submitted, dedup's
    # verdicts, the portal's returns): about one record a lead each, so a linger there saves little
    # and the caller waits it.
    answer_producer_linger_ms: int = DEFAULT_PRODUCER_LINGER_MS
    security: KafkaSecurity = KafkaSecurity()
    # How long a service at start waits for the topics it created to have a leader on every
    # partition before it gives up (leadx.platform.kafka.admin.ensure_topics).
    topics_ready_timeout_s: float = 120.0
    # How long a group member may go unheard before the broker gives its partitions to the others:
    # a killed replica's work moves on within it. tansu also holds every join of a group for half of
    # it (its way of waiting for the other members), so each start and rebalance of a consumer there
    # waits that long; Apache Kafka refuses less than its group.min.session.timeout.ms (6 s).
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS

    def __post_init__(self) -> None:
        if self.session_timeout_ms < MIN_SESSION_TIMEOUT_MS:
            raise ConfigError(f"KAFKA_SESSION_TIMEOUT_MS must be at least {MIN_SESSION_TIMEOUT_MS} (a heartbeat a"
                              f" second needs room), got {self.session_timeout_ms}")
        if self.fetch_min_bytes < 1:
            raise ConfigError(f"KAFKA_FETCH_MIN_BYTES must be at least 1, got {self.fetch_min_bytes}")
        if self.answer_fetch_max_wait_ms is not None and self.answer_fetch_max_wait_ms < 1:
            raise ConfigError(f"KAFKA_ANSWER_FETCH_MAX_WAIT_MS must be at least 1, got {self.answer_fetch_max_wait_ms}")
        if not 0 <= self.fetch_idle_wait_ms <= MAX_FETCH_IDLE_WAIT_MS:
            raise ConfigError(f"KAFKA_FETCH_IDLE_WAIT_MS must be 0 to {MAX_FETCH_IDLE_WAIT_MS}, got"
                              f" {self.fetch_idle_wait_ms}")
        if self.commit_interval_ms < 0:
            raise ConfigError(f"KAFKA_COMMIT_INTERVAL_MS must be 0 or more, got {self.commit_interval_ms}")
        for variable, linger_ms in (("KAFKA_PRODUCER_LINGER_MS", self.producer_linger_ms),
                                    ("KAFKA_ANSWER_PRODUCER_LINGER_MS", self.answer_producer_linger_ms)):
            if not 0 <= linger_ms <= MAX_PRODUCER_LINGER_MS:
                raise ConfigError(f"{variable} must be 0 to {MAX_PRODUCER_LINGER_MS}, got {linger_ms}")

    @classmethod
    def from_env(cls) -> KafkaSettings:
        return cls(
            bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS"),
            topic_prefix=env_str("LEADX_TOPIC_PREFIX", ""),
            partitions=env_int("KAFKA_PARTITIONS", 6),
            replication_factor=env_int("KAFKA_REPLICATION_FACTOR", 1),
            idempotence=env_bool("KAFKA_IDEMPOTENCE", False),
            fetch_max_wait_ms=env_int("KAFKA_FETCH_MAX_WAIT_MS", 25),
            background_fetch_max_wait_ms=env_int("KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS", 250),
            answer_fetch_max_wait_ms=(env_int("KAFKA_ANSWER_FETCH_MAX_WAIT_MS")
                                      if env_str("KAFKA_ANSWER_FETCH_MAX_WAIT_MS", "") else None),
            fetch_min_bytes=env_int("KAFKA_FETCH_MIN_BYTES", DEFAULT_FETCH_MIN_BYTES),
            fetch_idle_wait_ms=env_int("KAFKA_FETCH_IDLE_WAIT_MS", DEFAULT_FETCH_IDLE_WAIT_MS),
            commit_interval_ms=env_int("KAFKA_COMMIT_INTERVAL_MS", DEFAULT_COMMIT_INTERVAL_MS),
            producer_linger_ms=env_int("KAFKA_PRODUCER_LINGER_MS", DEFAULT_PRODUCER_LINGER_MS),
            answer_producer_linger_ms=env_int("KAFKA_ANSWER_PRODUCER_LINGER_MS", DEFAULT_PRODUCER_LINGER_MS),
            security=KafkaSecurity.from_env(),
            topics_ready_timeout_s=env_float("KAFKA_TOPICS_READY_TIMEOUT_S", 120.0),
            session_timeout_ms=env_int("KAFKA_SESSION_TIMEOUT_MS", DEFAULT_SESSION_TIMEOUT_MS),
        )


HMAC_KEY_VARIABLE = "LEADX_HMAC_KEY"
HMAC_KEYS_VARIABLE = "LEADX_HMAC_KEYS"
# The id of the one key LEADX_HMAC_KEY gives: the same secret listed as `k0:<secret>` in
# LEADX_HMAC_KEYS keys every identity exactly as before, so a first rotation starts from it.
IMPLICIT_HMAC_KEY_ID = "k0"
MIN_HMAC_SECRET_CHARS = 16
_HMAC_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@dataclass(frozen=True)
class HmacKeyring:
    """The secrets that key consumers' identities (leadx.leads.pii), each named by a key id. The
    first is current: what is recorded from now on is keyed with it. The others are still
    checked, so what was recorded under them keeps counting while a rotation lasts
    (docs/dedup.md#rotating-the-identity-key). A key id never changes what a secret computes."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("an HMAC keyring holds at least one key")

    def __repr__(self) -> str:
        return f"HmacKeyring(ids={list(self.ids)})"

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    @property
    def current(self) -> bytes:
        return self.keys[0][1]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    @classmethod
    def single(cls, secret: bytes) -> HmacKeyring:
        """One key under the implicit id: what LEADX_HMAC_KEY gives."""
        return cls(((IMPLICIT_HMAC_KEY_ID, secret),))

    @classmethod
    def parse(cls, text: str, variable: str = HMAC_KEYS_VARIABLE) -> HmacKeyring:
        """`id:secret,id:secret`, the current key first; a secret is text (no comma) of at least
        MIN_HMAC_SECRET_CHARS characters, used as its UTF-8 bytes as LEADX_HMAC_KEY's is."""
        keys: list[tuple[str, bytes]] = []
        for number, entry in enumerate((e.strip() for e in text.split(",")), start=1):
            if not entry:
                raise ConfigError(f"{variable}: entry {number} is empty (a comma too many?)")
            key_id, colon, secret = entry.partition(":")
            if not colon or not _HMAC_KEY_ID.fullmatch(key_id):
                # Nothing of the entry is shown: a mistyped one may be a bare secret.
                raise ConfigError(f"{variable}: entry {number} is not id:secret with an id of 1 to 32 letters, "
                                  "digits, '.', '_' or '-'")
            if key_id in (k for k, _ in keys):
                raise ConfigError(f"{variable}: key id {key_id!r} is listed twice")
            if len(secret) < MIN_HMAC_SECRET_CHARS:
                raise ConfigError(f"{variable}: the secret of key {key_id!r} must be at least "
                                  f"{MIN_HMAC_SECRET_CHARS} characters")
            twin = next((k for k, s in keys if s == secret.encode()), None)
            if twin is not None:
                raise ConfigError(f"{variable}: keys {twin!r} and {key_id!r} have the same secret")
            keys.append((key_id, secret.encode()))
        return cls(tuple(keys))

    @classmethod
    def from_env(cls) -> HmacKeyring:
        """LEADX_HMAC_KEYS when set, else LEADX_HMAC_KEY as the one key `k0`; never both, so no
        deployment is left guessing which one it runs on."""
        listed, single = os.environ.get(HMAC_KEYS_VARIABLE, ""), os.environ.get(HMAC_KEY_VARIABLE, "")
        if listed and single:
            raise ConfigError(f"set {HMAC_KEYS_VARIABLE} or {HMAC_KEY_VARIABLE}, not both: "
                              f"list the key of {HMAC_KEY_VARIABLE} in {HMAC_KEYS_VARIABLE} as "
                              f"{IMPLICIT_HMAC_KEY_ID}:<secret>")
        if listed:
            return cls.parse(listed)
        if not single:
            raise ConfigError(f"environment variable {HMAC_KEY_VARIABLE} (or {HMAC_KEYS_VARIABLE}) is required")
        if len(single) < MIN_HMAC_SECRET_CHARS:
            raise ConfigError(f"{HMAC_KEY_VARIABLE} must be at least {MIN_HMAC_SECRET_CHARS} characters")
        return cls.single(single.encode())


REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is. `rediss://` connects over TLS, verified against REDIS_SSL_CA_CERTS (a
    private CA) or else the system's CAs, host name included. The password is part of the URL
    (`rediss://:password@host:6379/0`, or `user:password@` for an ACL user), so the whole URL is
    a secret."""

    url: str = field(repr=False)
    ssl_ca_certs: str = ""
    # REDIS_CLUSTER=true: REDIS_URL names one node of a Redis Cluster, from which the client learns
    # the others and which node serves which slot (docs/dedup.md#on-redis-cluster).
    cluster: bool = False
    # REDIS_WAIT_REPLICAS=n: the dedup records a call writes count only once n replicas hold them
    # (Redis's WAIT, at most REDIS_WAIT_TIMEOUT_MS), so a failover to a replica loses no award.
    wait_replicas: int = 0
    wait_timeout_ms: int = 500

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "rediss"

    @classmethod
    def from_env(cls, required: bool = True) -> RedisSettings:
        url = env_str("REDIS_URL") if required else env_str("REDIS_URL", "")
        if not url:  # a service without Redis (its pod may still share the others' settings)
            return cls(url="")
        ca_certs = env_file("REDIS_SSL_CA_CERTS")
        scheme = urlsplit(url).scheme
        if scheme not in REDIS_SCHEMES:
            # Not the URL itself: it may hold the password.
            raise ConfigError("environment variable REDIS_URL must start with redis://, rediss:// (TLS) or "
                              f"unix://, not {scheme or 'no scheme'}")
        if ca_certs:
            if scheme != "rediss":
                raise ConfigError("environment variable REDIS_SSL_CA_CERTS is set, but REDIS_URL is not a "
                                  "rediss:// (TLS) URL")
            _check_tls_files(("REDIS_SSL_CA_CERTS", ca_certs), ("", ""), ("", ""))
        cluster = env_bool("REDIS_CLUSTER", False)
        if cluster and scheme == "unix":
            raise ConfigError("environment variable REDIS_CLUSTER is true, but REDIS_URL is a unix:// socket: "
                              "a Redis Cluster is reached over TCP (redis:// or rediss://)")
        return cls(url=url, ssl_ca_certs=ca_certs, cluster=cluster, wait_replicas=env_int("REDIS_WAIT_REPLICAS", 0),
                   wait_timeout_ms=env_int("REDIS_WAIT_TIMEOUT_MS", 500))


@dataclass(frozen=True)
class GrpcServerSettings:
    """The port a gRPC server listens on, and how: TLS with the certificate and key files (which
    a restart re-reads), client certificates signed by the client CA required when one is given,
    and server reflection (for grpcurl and the like) on or off."""

    port: int = 50051
    tls_certfile: str = ""
    tls_keyfile: str = ""
    tls_client_cafile: str = ""
    reflection: bool = True

    @property
    def tls(self) -> bool:
        return bool(self.tls_certfile)

    @classmethod
    def from_env(cls) -> GrpcServerSettings:
        settings = cls(
            port=env_int("GRPC_PORT", 50051),
            tls_certfile=env_file("GRPC_TLS_CERT_FILE"),
            tls_keyfile=env_file("GRPC_TLS_KEY_FILE"),
            tls_client_cafile=env_file("GRPC_TLS_CLIENT_CA_FILE"),
            reflection=env_bool("GRPC_REFLECTION", True),
        )
        if settings.tls_client_cafile and not settings.tls:
            raise ConfigError("environment variable GRPC_TLS_CLIENT_CA_FILE is set, but GRPC_TLS_CERT_FILE is not: "
                              "client certificates are asked for only over TLS")
        _check_tls_files(("GRPC_TLS_CLIENT_CA_FILE", settings.tls_client_cafile),
                         ("GRPC_TLS_CERT_FILE", settings.tls_certfile), ("GRPC_TLS_KEY_FILE", settings.tls_keyfile))
        return settings


@dataclass(frozen=True)
class CommonSettings:
    """What every service needs: where the broker, Redis and SQL are, and the PII keys."""

    service: str
    kafka: KafkaSettings
    redis_url: str = field(repr=False)  # both may carry a password
    database_url: str = field(repr=False)
    hmac_keys: HmacKeyring
    health_port: int
    log_level: str
    # Gmail dots and `+tags` (leadx.leads.pii.canonical_email) in email identities; change it only
    # together with `leadx dedup rebuild`, as it changes the keys.
    email_provider_rules: bool = True
    # How often the services re-read accounts, partnerships and profiles from SQL: a change made
    # with the admin API or the CLI reaches every lead within this many seconds.
    accounts_refresh_s: float = 5.0
    redis_ssl_ca_certs: str = ""
    redis_cluster: bool = False
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 500

    @property
    def redis(self) -> RedisSettings:
        """What leadx.platform.redis.client.connect takes."""
        return RedisSettings(url=self.redis_url, ssl_ca_certs=self.redis_ssl_ca_certs, cluster=self.redis_cluster,
                             wait_replicas=self.redis_wait_replicas, wait_timeout_ms=self.redis_wait_timeout_ms)

    @classmethod
    def from_env(cls, service: str, *, redis: bool = True, database: bool = True) -> CommonSettings:
        """`redis` and `database` say whether the service uses them: one that does not starts without
        REDIS_URL or DATABASE_URL (its settings hold them empty), so it needs no credentials for them."""
        hmac_keys = HmacKeyring.from_env()
        redis_settings = RedisSettings.from_env(required=redis)
        return cls(
            service=service,
            kafka=KafkaSettings.from_env(),
            redis_url=redis_settings.url,
            database_url=env_str("DATABASE_URL") if database else env_str("DATABASE_URL", ""),
            hmac_keys=hmac_keys,
            health_port=env_int("HEALTH_PORT", 8081),
            log_level=env_str("LOG_LEVEL", "INFO"),
            email_provider_rules=env_bool("DEDUP_EMAIL_PROVIDER_RULES", True),
            accounts_refresh_s=env_float("ACCOUNTS_REFRESH_SECONDS", 5.0),
            redis_ssl_ca_certs=redis_settings.ssl_ca_certs,
            redis_cluster=redis_settings.cluster,
            redis_wait_replicas=redis_settings.wait_replicas,
            redis_wait_timeout_ms=redis_settings.wait_timeout_ms,
        )

    @property
    def hmac_key(self) -> bytes:
        """The current HMAC secret, for what uses one key only (the auction's tie-break seed, the
        intake's ping tokens); identities are looked up under every key of `hmac_keys`."""
        return self.hmac_keys.current

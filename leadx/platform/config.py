"""Configuration from the environment.

Each service builds one frozen settings object at start. Connection settings have no defaults in
services, so a misconfigured pod fails at once with the name of what is missing instead of
silently talking to localhost.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

_REQUIRED = object()


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def env_str(name: str, default: object = _REQUIRED) -> str:
    value = os.environ.get(name)
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

    @classmethod
    def from_env(cls) -> KafkaSettings:
        return cls(
            bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS"),
            topic_prefix=env_str("LEADX_TOPIC_PREFIX", ""),
            partitions=env_int("KAFKA_PARTITIONS", 6),
            replication_factor=env_int("KAFKA_REPLICATION_FACTOR", 1),
            idempotence=env_bool("KAFKA_IDEMPOTENCE", False),
            fetch_max_wait_ms=env_int("KAFKA_FETCH_MAX_WAIT_MS", 25),
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


@dataclass(frozen=True)
class CommonSettings:
    """What every service needs: where the broker, Redis and SQL are, and the PII keys."""

    service: str
    kafka: KafkaSettings
    redis_url: str
    database_url: str
    hmac_keys: HmacKeyring
    health_port: int
    log_level: str
    # Gmail dots and `+tags` (leadx.leads.pii.canonical_email) in email identities; change it only
    # together with `leadx dedup rebuild`, as it changes the keys.
    email_provider_rules: bool = True
    # How often the services re-read accounts, partnerships and profiles from SQL: a change made
    # with the admin API or the CLI reaches every lead within this many seconds.
    accounts_refresh_s: float = 5.0

    @classmethod
    def from_env(cls, service: str, *, redis: bool = True, database: bool = True) -> CommonSettings:
        """`redis` and `database` say whether the service uses them: one that does not starts without
        REDIS_URL or DATABASE_URL (its settings hold them empty), so it needs no credentials for them."""
        hmac_keys = HmacKeyring.from_env()
        return cls(
            service=service,
            kafka=KafkaSettings.from_env(),
            redis_url=env_str("REDIS_URL") if redis else env_str("REDIS_URL", ""),
            database_url=env_str("DATABASE_URL") if database else env_str("DATABASE_URL", ""),
            hmac_keys=hmac_keys,
            health_port=env_int("HEALTH_PORT", 8081),
            log_level=env_str("LOG_LEVEL", "INFO"),
            email_provider_rules=env_bool("DEDUP_EMAIL_PROVIDER_RULES", True),
            accounts_refresh_s=env_float("ACCOUNTS_REFRESH_SECONDS", 5.0),
        )

    @property
    def hmac_key(self) -> bytes:
        """The current HMAC secret, for what uses one key only (the auction's tie-break seed, the
        intake's ping tokens); identities are looked up under every key of `hmac_keys`."""
        return self.hmac_keys.current

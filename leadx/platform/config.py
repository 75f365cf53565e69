"""Configuration from the environment.

Each service builds one frozen settings object at start. Connection settings have no defaults in
services, so a misconfigured pod fails at once with the name of what is missing instead of
silently talking to localhost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class CommonSettings:
    """What every service needs: where the broker, Redis and SQL are, and the PII key."""

    service: str
    kafka: KafkaSettings
    redis_url: str
    database_url: str
    hmac_key: bytes
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
        key = env_str("LEADX_HMAC_KEY")
        if len(key) < 16:
            raise ConfigError("LEADX_HMAC_KEY must be at least 16 characters")
        return cls(
            service=service,
            kafka=KafkaSettings.from_env(),
            redis_url=env_str("REDIS_URL") if redis else env_str("REDIS_URL", ""),
            database_url=env_str("DATABASE_URL") if database else env_str("DATABASE_URL", ""),
            hmac_key=key.encode(),
            health_port=env_int("HEALTH_PORT", 8081),
            log_level=env_str("LOG_LEVEL", "INFO"),
            email_provider_rules=env_bool("DEDUP_EMAIL_PROVIDER_RULES", True),
            accounts_refresh_s=env_float("ACCOUNTS_REFRESH_SECONDS", 5.0),
        )

from __future__ import annotations

import math
from dataclasses import dataclass

from leadx.accounts.api_keys import cache_ttl_from_env
from leadx.dedup.store import DEFAULT_BUCKET_BITS
from leadx.leads.rules import PACKAGED_RULES
from leadx.platform.config import CommonSettings, ConfigError, env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class IntakeSettings:
    common: CommonSettings
    port: int
    # How long a seller's POST waits for the pipeline's verdict before getting 202 + status URL.
    verdict_timeout_s: float
    # How long a POST waits for the broker to acknowledge its lead before answering 202 + status URL
    # (the lead goes on being published); services.intake.publishing.
    publish_timeout_s: float
    max_in_flight: int  # unacknowledged lead publishes per replica; beyond it 503 at once; 0: no limit
    max_body_bytes: int
    public_url: str  # base of the status URLs handed to sellers
    rules_dir: str  # the lead constraint rules (leadx/rules by default)
    rate_limit_per_second: int  # per account (seller or buyer), across replicas; 0 switches it off
    admin_rate_limit_per_second: int  # the admin key's, across replicas; 0 switches it off
    address_rate_limit_per_second: int  # per source address, of requests that carry no key; 0 switches it off
    auth_failures_per_minute: int  # per source address, across replicas; 0 switches it off
    api_key_cache_s: float  # how long a key's account is cached: a revoked key works at most this long
    idempotency_ttl_s: int  # how long a retried POST gets the first answer back
    ping_ttl_s: int  # how long a ping token is good for
    phone_area_must_match: bool  # a phone area code outside the ZIP's state: error, not warning
    dedup_bucket_bits: int
    admin_api_key: str  # the operators' admin API (/v1/admin/...); empty: the admin API answers 401

    @classmethod
    def from_env(cls) -> IntakeSettings:
        port = env_int("INTAKE_PORT", 8080)
        return cls(
            common=CommonSettings.from_env("intake"),
            port=port,
            verdict_timeout_s=env_float("INTAKE_VERDICT_TIMEOUT_SECONDS", 2.0),
            publish_timeout_s=_positive(env_float("INTAKE_PUBLISH_TIMEOUT_SECONDS", 5.0),
                                        "INTAKE_PUBLISH_TIMEOUT_SECONDS"),
            max_in_flight=_not_negative(env_int("INTAKE_MAX_IN_FLIGHT", 1000), "INTAKE_MAX_IN_FLIGHT"),
            max_body_bytes=env_int("INTAKE_MAX_BODY_BYTES", 65_536),
            public_url=env_str("INTAKE_PUBLIC_URL", f"http://127.0.0.1:{port}").rstrip("/"),
            rules_dir=env_str("INTAKE_RULES_DIR", str(PACKAGED_RULES)),
            rate_limit_per_second=env_int("INTAKE_RATE_LIMIT_PER_SECOND", 500),
            admin_rate_limit_per_second=env_int("INTAKE_ADMIN_RATE_LIMIT_PER_SECOND", 50),
            address_rate_limit_per_second=env_int("INTAKE_ADDRESS_RATE_LIMIT_PER_SECOND", 20),
            auth_failures_per_minute=env_int("INTAKE_AUTH_FAILURES_PER_MINUTE", 60),
            api_key_cache_s=cache_ttl_from_env(),
            idempotency_ttl_s=env_int("INTAKE_IDEMPOTENCY_TTL_SECONDS", 86_400),
            ping_ttl_s=env_int("INTAKE_PING_TOKEN_TTL_SECONDS", 900),
            phone_area_must_match=env_bool("INTAKE_PHONE_AREA_MUST_MATCH", False),
            dedup_bucket_bits=env_int("DEDUP_BUCKET_BITS", DEFAULT_BUCKET_BITS),
            admin_api_key=env_str("ADMIN_API_KEY", ""),
        )


def _positive(value: float, name: str) -> float:
    if not 0 < value < math.inf:  # also refuses nan
        raise ConfigError(f"environment variable {name} must be more than 0, got {value!r}")
    return value


def _not_negative(value: int, name: str) -> int:
    if value < 0:
        raise ConfigError(f"environment variable {name} must be 0 (no limit) or more, got {value!r}")
    return value

from __future__ import annotations

from dataclasses import dataclass

from leadx.accounts.buyer_urls import BuyerUrlRules
from leadx.dedup.store import DEFAULT_BUCKET_BITS
from leadx.platform.config import CommonSettings, ConfigError, env_float, env_int, env_str
from services.delivery.buyer_http import DEFAULT_REPLY_MAX_BYTES


@dataclass(frozen=True)
class DeliverySettings:
    common: CommonSettings
    ping_timeout_s: float  # a buyer's ping connection is closed after this (5 s by default)
    post_timeout_s: float
    max_concurrent_requests: int
    seller_fee_percent: float
    dedup_bucket_bits: int
    rules_dir: str  # the POST rule files (docs/post-rules.md); empty: every buyer gets the JSON post
    breaker_failures: int  # failed calls in a row that open a buyer's circuit
    breaker_cooldown_s: float  # how long an open circuit skips the buyer
    buyer_urls: BuyerUrlRules  # the addresses calls may reach (BUYER_URLS_ALLOW_PRIVATE: local development)
    reply_max_bytes: int  # a buyer's reply is read no further: the rest is cut

    @classmethod
    def from_env(cls) -> DeliverySettings:
        return cls(
            common=CommonSettings.from_env("delivery"),
            ping_timeout_s=env_float("DELIVERY_PING_TIMEOUT_SECONDS", 5.0),
            post_timeout_s=env_float("DELIVERY_POST_TIMEOUT_SECONDS", 10.0),
            max_concurrent_requests=env_int("DELIVERY_MAX_CONCURRENT_REQUESTS", 200),
            seller_fee_percent=env_float("SELLER_FEE_PERCENT", 10.0),
            dedup_bucket_bits=env_int("DEDUP_BUCKET_BITS", DEFAULT_BUCKET_BITS),
            rules_dir=env_str("DELIVERY_RULES_DIR", ""),
            breaker_failures=env_int("DELIVERY_BREAKER_FAILURES", 5),
            breaker_cooldown_s=env_float("DELIVERY_BREAKER_COOLDOWN_SECONDS", 30.0),
            buyer_urls=BuyerUrlRules.from_env(),
            reply_max_bytes=_positive("DELIVERY_REPLY_MAX_BYTES", DEFAULT_REPLY_MAX_BYTES),
        )


def _positive(name: str, default: int) -> int:
    value = env_int(name, default)
    if value < 1:
        raise ConfigError(f"environment variable {name} must be at least 1, got {value}")
    return value

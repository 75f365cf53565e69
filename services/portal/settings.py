"""The portal's settings (docs/configuration.md#portal)."""

from __future__ import annotations

from dataclasses import dataclass, field

from leadx.accounts.people import SessionPolicy, ThrottlePolicy
from leadx.ledger.returns import ReturnPolicy
from leadx.platform.config import ConfigError, KafkaSettings, RedisSettings, env_bool, env_file, env_int, env_str
from leadx.platform.exchange_health import HEALTH_URLS, parse_health_urls

MIN_SESSION_SECRET_CHARS = 32
LIVE_POLL_S, LIVE_STREAM_S = 2, 60  # the homes' live streams (live.py), by default


@dataclass(frozen=True)
class PortalSettings:
    port: int
    health_port: int
    log_level: str
    database_url: str = field(repr=False)
    redis: RedisSettings
    topic_prefix: str  # the namespace of its Redis keys, as every service's
    dashboard_address: str  # host:port of the ledger's gRPC DashboardService
    dashboard_key: str = field(repr=False)  # the dashboard's admin key: the portal reads for the person's account
    dashboard_ca_file: str  # set: the dashboard is reached over TLS, verified against this CA
    session_secret: bytes = field(repr=False)
    secure_cookies: bool  # the cookie only over https: true wherever the portal is behind TLS
    sessions: SessionPolicy
    throttle: ThrottlePolicy
    kafka: KafkaSettings  # a return is published as lead.returned, as the API publishes it
    return_policy: ReturnPolicy  # the API's: RETURN_WINDOW_DAYS, RETURN_RATE_CAP_PERCENT, RETURN_RATE_PERIOD_DAYS
    live_poll_s: int  # how often an open home's live stream reads the dashboard
    live_stream_s: int  # how long one event stream lasts before the browser reconnects (and is checked)
    health_urls: dict[str, str]  # Administration's Services page: each service's health server, by name

    @classmethod
    def from_env(cls) -> PortalSettings:
        secret = env_str("PORTAL_SESSION_SECRET")
        if len(secret) < MIN_SESSION_SECRET_CHARS:
            raise ConfigError(f"environment variable PORTAL_SESSION_SECRET must be at least "
                              f"{MIN_SESSION_SECRET_CHARS} characters (openssl rand -base64 32)")
        dashboard_key = env_str("DASHBOARD_ADMIN_API_KEY")
        idle_minutes = env_int("PORTAL_SESSION_IDLE_MINUTES", 30)
        max_hours = env_int("PORTAL_SESSION_MAX_HOURS", 12)
        live_poll_s, live_stream_s = (env_int("PORTAL_LIVE_POLL_SECONDS", LIVE_POLL_S),
                                      env_int("PORTAL_LIVE_STREAM_SECONDS", LIVE_STREAM_S))
        if live_poll_s <= 0 or live_stream_s < live_poll_s:
            raise ConfigError("environment variable PORTAL_LIVE_POLL_SECONDS must be more than 0, and "
                              "PORTAL_LIVE_STREAM_SECONDS at least as much")
        health_urls = env_str(HEALTH_URLS, "")
        if idle_minutes <= 0 or max_hours <= 0:
            raise ConfigError("environment variables PORTAL_SESSION_IDLE_MINUTES and PORTAL_SESSION_MAX_HOURS "
                              "must be more than 0")
        return cls(
            port=env_int("PORTAL_PORT", 8000),
            health_port=env_int("HEALTH_PORT", 8081),
            log_level=env_str("LOG_LEVEL", "INFO"),
            database_url=env_str("DATABASE_URL"),
            redis=RedisSettings.from_env(),
            topic_prefix=env_str("LEADX_TOPIC_PREFIX", ""),
            dashboard_address=env_str("DASHBOARD_ADDRESS"),
            dashboard_key=dashboard_key,
            dashboard_ca_file=env_file("DASHBOARD_TLS_CA_FILE"),
            session_secret=secret.encode(),
            secure_cookies=env_bool("PORTAL_SECURE_COOKIES", True),
            sessions=SessionPolicy(idle_s=idle_minutes * 60, absolute_s=max_hours * 3600),
            throttle=ThrottlePolicy(per_account=env_int("PORTAL_LOGIN_FAILURES_PER_ACCOUNT", 5),
                                    per_address=env_int("PORTAL_LOGIN_FAILURES_PER_ADDRESS", 20),
                                    window_s=env_int("PORTAL_LOGIN_WINDOW_SECONDS", 300)),
            kafka=KafkaSettings.from_env(),
            return_policy=ReturnPolicy.from_env(),
            live_poll_s=live_poll_s,
            live_stream_s=live_stream_s,
            # Unset: the Services page says so. Malformed: the portal does not start (the entry is named).
            health_urls=parse_health_urls(health_urls) if health_urls.strip() else {},
        )

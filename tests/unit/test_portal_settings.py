"""The portal's settings fail fast, naming what is missing or wrong; its pages' small helpers."""

from __future__ import annotations

import pytest

from leadx.platform.config import ConfigError
from services.portal.pages import money, utc_time
from services.portal.settings import PortalSettings
from services.portal.web import PersonView, navigation

SECRET = "x" * 32


@pytest.fixture
def portal_env(env):
    env.setenv("PORTAL_SESSION_SECRET", SECRET)
    env.setenv("DASHBOARD_ADDRESS", "ledger:50051")
    env.setenv("DASHBOARD_ADMIN_API_KEY", "a-test-key")
    env.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    for name in ("PORTAL_PORT", "PORTAL_SECURE_COOKIES", "PORTAL_SESSION_IDLE_MINUTES", "PORTAL_SESSION_MAX_HOURS",
                 "PORTAL_LIVE_POLL_SECONDS", "PORTAL_LIVE_STREAM_SECONDS", "LEADX_HEALTH_URLS"):
        env.delenv(name, raising=False)
    return env


def test_defaults(portal_env):
    settings = PortalSettings.from_env()
    assert (settings.port, settings.secure_cookies) == (8000, True)
    assert (settings.sessions.idle_s, settings.sessions.absolute_s) == (1800, 43200)
    assert (settings.throttle.per_account, settings.throttle.per_address, settings.throttle.window_s) == (5, 20, 300)
    assert (settings.live_poll_s, settings.live_stream_s) == (2, 60)
    assert settings.health_urls == {}  # the Services page then says LEADX_HEALTH_URLS is not set
    assert SECRET not in repr(settings) and "a-test-key" not in repr(settings)
    # Returns follow the API's policy, from the same variables.
    assert (settings.return_policy.window_days, settings.kafka.bootstrap_servers) == (7, "kafka:9092")


@pytest.mark.parametrize("name, value, message", [
    ("PORTAL_SESSION_SECRET", "", "PORTAL_SESSION_SECRET is required"),
    ("PORTAL_SESSION_SECRET", "short", "PORTAL_SESSION_SECRET must be at least 32 characters"),
    ("DASHBOARD_ADDRESS", "", "DASHBOARD_ADDRESS is required"),
    ("DASHBOARD_ADMIN_API_KEY", "", "DASHBOARD_ADMIN_API_KEY is required"),
    ("KAFKA_BOOTSTRAP_SERVERS", "", "KAFKA_BOOTSTRAP_SERVERS is required"),
    ("PORTAL_SESSION_IDLE_MINUTES", "0", "must be more than 0"),
    ("PORTAL_SECURE_COOKIES", "maybe", "PORTAL_SECURE_COOKIES must be true or false"),
    ("PORTAL_LIVE_POLL_SECONDS", "0", "PORTAL_LIVE_POLL_SECONDS must be more than 0"),
    ("PORTAL_LIVE_STREAM_SECONDS", "1", "PORTAL_LIVE_STREAM_SECONDS at least as much"),
    ("LEADX_HEALTH_URLS", "dedup=http://dedup:8081,dedup=http://other:8081", "LEADX_HEALTH_URLS: dedup is given twice"),
    ("LEADX_HEALTH_URLS", "ledger", "LEADX_HEALTH_URLS: 'ledger' is not name=http://host:port"),
])
def test_bad_settings_stop_the_start_with_their_name(portal_env, name, value, message):
    portal_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        PortalSettings.from_env()


def test_the_services_page_reads_the_health_servers_named(portal_env):
    portal_env.setenv("LEADX_HEALTH_URLS", "intake=http://intake:8081/readyz,portal=http://127.0.0.1:9/")
    assert PortalSettings.from_env().health_urls == {"intake": "http://intake:8081", "portal": "http://127.0.0.1:9"}


def test_money_times_and_the_navigation_bar():
    assert [money(c) for c in (0, 5, 1234, 123456789, -250)] == \
        ["$0.00", "$0.05", "$12.34", "$1,234,567.89", "-$2.50"]
    assert utc_time(0) == "" and utc_time(1_700_000_000_000) == "2023-11-14 22:13 UTC"
    assert navigation(None) == []
    shared = [("Search", "/search"), ("Transactions", "/transactions")]
    partners = ("Partners", "/partners")  # buyers and sellers choose and rate each other; operators do not
    markets = ("Markets", "/markets")  # market data is every logged-in person's
    profiles = ("Profiles", "/profiles")  # a buyer's AutoBid profiles
    assert navigation(PersonView("u_1", "buyer", "b_1", "owner")) == \
        [("Home", "/buyer"), *shared, profiles, partners, markets]
    assert navigation(PersonView("u_2", "seller", "s_1", "read-only")) == \
        [("Home", "/seller"), *shared, partners, markets]
    assert navigation(PersonView("u_3", "operator", "", "operator")) == \
        [("Exchange", "/operator"), ("Administration", "/admin"), ("Services", "/admin/services"), *shared, markets]

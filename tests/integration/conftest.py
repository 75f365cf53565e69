from __future__ import annotations

import pytest

from tests.integration.harness import Exchange, start_exchange

ADMIN_KEY = "test-dashboard-admin-key"  # a test value, not a secret; also the intake's ADMIN_API_KEY
ALL_SERVICES = ["intake", "intake-2", "dedup", "scoring", "auction", "delivery", "ledger"]


@pytest.fixture(scope="module")
def exchange(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    """The whole exchange with two intake replicas and three buyers. Platform-wide dedup is off
    here so that per-buyer protection can be seen on its own (a repeated consumer is still sold,
    but never to a buyer that already has it)."""
    prefix = f"{tmp_path_factory.mktemp('x').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("exchange"), kafka_bootstrap, redis_url, prefix,
                              ["alpha", "beta", "gamma"], ALL_SERVICES, DEDUP_PLATFORM_SCOPE="false",
                              DASHBOARD_ADMIN_API_KEY=ADMIN_KEY, ADMIN_API_KEY=ADMIN_KEY)
    yield exchange
    exchange.stop()


@pytest.fixture
def market(exchange: Exchange) -> Exchange:
    exchange.reset_buyers()
    return exchange

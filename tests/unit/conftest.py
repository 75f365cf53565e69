import shutil
from pathlib import Path

import pytest

from leadx.dev.tools import check_k8s

# Settings the unit tests read from the environment: cleared, so the machine's own never leak in.
_SETTINGS = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL", "LEADX_HMAC_KEY", "LEADX_HMAC_KEYS",
             "KAFKA_PARTITIONS",
             "KAFKA_IDEMPOTENCE", "KAFKA_FETCH_MAX_WAIT_MS", "AUCTION_OPEN_BATCH", "AUCTION_BID_BATCH",
             "AUCTION_CLOSE_BATCH", "AUCTION_BATCH_WAIT_MS", "AUCTION_BID_FLUSH_MS")


@pytest.fixture
def env(monkeypatch):
    """The environment of a service with only its required settings; tests set the rest."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("REDIS_URL", "redis://r")
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    monkeypatch.setenv("LEADX_HMAC_KEY", "0123456789abcdef")
    return monkeypatch


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """A copy of deploy/k8s for a test to break on purpose."""
    copy = tmp_path / "k8s"
    shutil.copytree(check_k8s.K8S, copy)
    return copy

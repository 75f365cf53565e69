import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from leadx.dedup.store import DedupStore
from leadx.dev.tools import check_k8s
from leadx.platform.config import RedisSettings
from leadx.platform.db import engine as engines
from leadx.platform.redis.client import connect

# Settings the unit tests read from the environment: cleared, so the machine's own never leak in.
_SETTINGS = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL", "LEADX_HMAC_KEY", "LEADX_HMAC_KEYS",
             "KAFKA_PARTITIONS", "KAFKA_SESSION_TIMEOUT_MS",
             "KAFKA_IDEMPOTENCE", "KAFKA_FETCH_MAX_WAIT_MS", "KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS",
             "KAFKA_FETCH_MIN_BYTES", "KAFKA_COMMIT_INTERVAL_MS", "KAFKA_FETCH_IDLE_WAIT_MS",
             "KAFKA_ANSWER_FETCH_MAX_WAIT_MS", "KAFKA_PRODUCER_LINGER_MS",
             "KAFKA_ANSWER_PRODUCER_LINGER_MS",
             "AUCTION_OPEN_BATCH", "AUCTION_BID_BATCH",
             "AUCTION_CLOSE_BATCH", "AUCTION_BATCH_WAIT_MS", "AUCTION_BID_FLUSH_MS", "API_KEY_CACHE_SECONDS")


@pytest.fixture
def url_with_tables(database_url) -> Iterator[str]:
    """`database_url` (a schema of its own), its tables made."""
    engine = engines.make_engine(database_url)
    engines.create_schema(engine)
    engine.dispose()
    yield database_url


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


@dataclass(frozen=True)
class DedupTarget:
    """Where a dedup test's store keeps its records."""
    url: str
    cluster: bool = False
    shards: int | None = None  # None: as deployed (1 on one Redis, CLUSTER_SHARDS on a cluster)

    def connect(self):
        return connect(RedisSettings(url=self.url, cluster=self.cluster))

    def store(self, redis, namespace: str, **options) -> DedupStore:
        return DedupStore(redis, namespace, shards=self.shards, **options)


@pytest.fixture(params=["one-redis", "sharded", "cluster"])
def dedup_target(request, redis_url) -> DedupTarget:
    """The dedup store's layouts: one Redis as deployed (one shard: a script per call), one Redis
    split into 16 shards (a consumer's identities in several shards: a script per shard in ascending
    order, the calls a cluster gets) and a real Redis Cluster of three primaries."""
    if request.param == "cluster":
        return DedupTarget(request.getfixturevalue("redis_cluster").url, cluster=True)
    return DedupTarget(redis_url, shards=16 if request.param == "sharded" else None)

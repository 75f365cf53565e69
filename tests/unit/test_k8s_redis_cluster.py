"""The redis-cluster component (deploy/k8s/components/redis-cluster): added to the prod overlay,
every service reads a cluster client and waits for a replica on dedup writes."""

from __future__ import annotations

from leadx.dev.tools import check_k8s
from leadx.platform.config import RedisSettings

COMPONENT = check_k8s.K8S / "components" / "redis-cluster"


def test_the_component_turns_every_service_to_the_cluster_and_waits_for_a_replica(monkeypatch):
    docs = check_k8s.render_with_component(check_k8s.K8S / "overlays" / "prod", COMPONENT, "leadx",
                                           "overlays/prod + redis-cluster")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("leadx-config"))
    assert (config["data"]["REDIS_CLUSTER"], config["data"]["REDIS_WAIT_REPLICAS"]) == ("true", "1")
    assert config["data"]["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"  # merged into prod's, not replacing it
    users = [d for d in docs if d["kind"] == "Deployment"
             and any(e["name"] == "REDIS_URL" for e in d["spec"]["template"]["spec"]["containers"][0]["env"])]
    assert users
    for deployment in users:
        sources = deployment["spec"]["template"]["spec"]["containers"][0].get("envFrom", [])
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources
    # What a service reads from them (REDIS_URL comes from the Secret).
    monkeypatch.setenv("REDIS_URL", "redis://redis-cluster-0.redis:6379")
    for name in ("REDIS_CLUSTER", "REDIS_WAIT_REPLICAS"):
        monkeypatch.setenv(name, config["data"][name])
    settings = RedisSettings.from_env()
    assert settings.cluster and settings.wait_replicas == 1 and settings.wait_timeout_ms == 500

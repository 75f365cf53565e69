"""The Kubernetes manifests render and pass the schema and our policies; broken ones are caught."""

from __future__ import annotations

import ipaddress
from pathlib import Path


from leadx.dev.tools import check_k8s
from leadx.platform.exchange_health import parse_health_urls
from tests.unit.k8s_copies import edit


def test_the_real_manifests_pass():
    assert check_k8s.check() == []


def test_every_service_is_deployed_with_probes_and_limits():
    docs = check_k8s.render(check_k8s.K8S / "overlays" / "prod")
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert names == {f"leadx-{s}" for s in ("intake", "dedup", "scoring", "auction", "delivery", "ledger", "portal")}
    kinds = {d["kind"] for d in docs}
    assert {"ConfigMap", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["KAFKA_IDEMPOTENCE"] == "true" and config["KAFKA_REPLICATION_FACTOR"] == "3"
    assert all(d["kind"] != "Secret" for d in docs)  # production secrets are never in the repo


def test_the_portal_is_served_and_reads_the_ledgers_dashboard():
    docs = check_k8s.render(check_k8s.K8S / "overlays" / "prod")
    portal = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "leadx-portal")
    container = portal["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.portal.main"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    ledger = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "leadx-ledger")
    grpc_port = next(p["port"] for p in ledger["spec"]["ports"] if p["port"] == 50051)
    assert env["DASHBOARD_ADDRESS"]["value"] == f"leadx-ledger:{grpc_port}"
    for secret in ("PORTAL_SESSION_SECRET", "DASHBOARD_ADMIN_API_KEY", "DATABASE_URL", "REDIS_URL"):
        assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "leadx-secrets"
    assert "PORTAL_SECURE_COOKIES" not in env  # Secure cookies: the default, behind TLS
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "leadx-portal")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    init = portal["spec"]["template"]["spec"]["initContainers"][0]
    assert init["command"] == ["leadx", "db", "upgrade"]  # the people table's revision, before it starts


def test_the_portals_services_page_reaches_every_services_health_server():
    docs = check_k8s.render(check_k8s.K8S / "overlays" / "prod")
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    portal = deployments["leadx-portal"]["spec"]["template"]["spec"]["containers"][0]
    urls = parse_health_urls(next(e["value"] for e in portal["env"] if e["name"] == "LEADX_HEALTH_URLS"))
    assert set(urls) == {name.removeprefix("leadx-") for name in deployments}
    for name, url in urls.items():
        host, port = url.removeprefix("http://").split(":")
        service = services[host]["spec"]
        # Not-ready replicas answer too: a service none of whose replicas is ready says why.
        assert service["publishNotReadyAddresses"] is True
        assert service["selector"] == {"app.kubernetes.io/name": f"leadx-{name}"}
        assert service["ports"] == [{"name": "health", "port": int(port), "targetPort": "health"}]
        container = deployments[f"leadx-{name}"]["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "health", "containerPort": 8081} in container["ports"]


def test_a_container_without_a_readiness_probe_is_reported(manifests: Path):
    edit(manifests / "base" / "dedup.yaml", "readinessProbe:", "startupProbeX:")
    problems = check_k8s.check(manifests)
    assert any("leadx-dedup: container dedup: has no readinessProbe" in p for p in problems)


def test_running_as_root_or_with_a_writable_root_is_reported(manifests: Path):
    edit(manifests / "base" / "scoring.yaml", "runAsNonRoot: true", "runAsNonRoot: false")
    edit(manifests / "base" / "scoring.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    problems = check_k8s.check(manifests)
    assert any("leadx-scoring: pod securityContext.runAsNonRoot must be true" in p for p in problems)
    assert any("leadx-scoring: container scoring: securityContext.readOnlyRootFilesystem" in p for p in problems)


def test_missing_limits_and_latest_images_are_reported(manifests: Path):
    edit(manifests / "base" / "delivery.yaml", 'limits: {cpu: "1", memory: 512Mi}', "limits: {memory: 512Mi}")
    edit(manifests / "overlays" / "prod" / "kustomization.yaml", "newTag: 0.1.0", "newTag: latest")
    problems = check_k8s.check(manifests)
    assert any("container delivery: resources.limits.cpu is not set" in p for p in problems)
    assert any("overlays/prod" in p and "must carry a pinned tag" in p for p in problems)


def test_an_unknown_field_fails_the_schema(manifests: Path):
    edit(manifests / "base" / "ledger.yaml", "terminationGracePeriodSeconds: 30",
         "terminationGracePeriodSeconds: 30\n      restartPolicyy: Always")
    problems = check_k8s.check(manifests)
    assert any("Deployment/leadx-ledger" in p and "restartPolicyy" in p for p in problems)


def test_a_service_dropped_from_an_overlay_is_reported(manifests: Path):
    edit(manifests / "base" / "kustomization.yaml", "  - scoring.yaml\n", "")
    problems = check_k8s.missing_services(check_k8s.render(check_k8s.K8S / "base"),
                                          check_k8s.render(manifests / "base"), "overlays/x")
    assert problems == ["overlays/x: Deployment/leadx-scoring of the base is missing"]


def test_production_delivery_reaches_only_dns_its_stores_and_public_https():
    docs = check_k8s.render(check_k8s.K8S / "overlays" / "prod")
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    delivery = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "leadx-delivery")
    assert check_k8s.selector_matches(policy["spec"]["podSelector"], delivery["spec"]["template"]["metadata"]["labels"])
    assert policy["spec"]["policyTypes"] == ["Egress"]
    rules = policy["spec"]["egress"]
    ports = [{(p["protocol"], p["port"]) for p in rule["ports"]} for rule in rules]
    assert ports == [{("UDP", 53), ("TCP", 53)}, {("TCP", 9092), ("TCP", 6379), ("TCP", 5432)}, {("TCP", 443)}]
    blocks = [peer["ipBlock"] for peer in rules[2]["to"]]

    def reachable(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip.version == ipaddress.ip_network(b["cidr"]).version and ip in ipaddress.ip_network(b["cidr"])
                   and not any(ip in ipaddress.ip_network(e) for e in b.get("except", [])
                               if ipaddress.ip_network(e).version == ip.version) for b in blocks)

    for internal in ("169.254.169.254", "10.0.0.1", "172.16.5.4", "192.168.0.1", "100.64.0.1", "127.0.0.1",
                     "0.0.0.0", "224.0.0.1", "fd00:ec2::254", "fe80::1", "::1", "::ffff:10.0.0.1"):
        assert not reachable(internal), internal
    for public in ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"):
        assert reachable(public), public

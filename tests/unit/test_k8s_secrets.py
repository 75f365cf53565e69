"""Secrets come only from Secrets in the Kubernetes manifests (`make k8s-check`), and production
connects over TLS with authentication (components/connection-security)."""

from __future__ import annotations

from pathlib import Path


from leadx.dev.tools import check_k8s
from tests.unit.k8s_copies import edit


def test_a_secret_in_the_configmap_is_reported(manifests: Path):
    edit(manifests / "base" / "configmap.yaml", '  LOG_LEVEL: "INFO"\n',
         '  LOG_LEVEL: "INFO"\n  REDIS_URL: "rediss://:pw@redis:6379/0"\n  KAFKA_SASL_PASSWORD: "pw"\n'
         '  ANALYTICS_DSN: "postgresql://reader:pw@analytics/db"\n')
    problems = check_k8s.check(manifests)
    for key in ("REDIS_URL", "KAFKA_SASL_PASSWORD"):
        assert f"base: ConfigMap/leadx-config: {key} is a secret: give it from a Secret, not the ConfigMap" in problems
    assert "base: ConfigMap/leadx-config: ANALYTICS_DSN holds a URL with a password: give it from a Secret" in problems
    assert any(p.startswith("overlays/prod: ConfigMap/leadx-config") and "REDIS_URL" in p for p in problems)


def test_a_secret_given_as_a_value_or_from_a_configmap_is_reported(manifests: Path):
    edit(manifests / "base" / "scoring.yaml", "            - {name: OTEL_SERVICE_NAME, value: leadx-scoring}\n",
         "            - {name: OTEL_SERVICE_NAME, value: leadx-scoring}\n"
         "            - {name: ADMIN_API_KEY, value: not-so-secret}\n"
         "            - name: DATABASE_URL\n"
         "              valueFrom: {configMapKeyRef: {name: leadx-config, key: DATABASE_URL}}\n")
    problems = check_k8s.check(manifests)
    prefix = "base: Deployment/leadx-scoring: container scoring"
    assert f"{prefix}: ADMIN_API_KEY is given as a plain value: take it from a Secret (secretKeyRef)" in problems
    assert f"{prefix}: DATABASE_URL comes from a ConfigMap: take it from a Secret (secretKeyRef)" in problems


def test_a_secret_rendered_outside_dev_is_reported(manifests: Path):
    edit(manifests / "overlays" / "prod" / "kustomization.yaml", "configMapGenerator:",
         "secretGenerator:\n  - name: leadx-secrets\n    literals: [KAFKA_SASL_PASSWORD=pw]\nconfigMapGenerator:")
    problems = check_k8s.check(manifests)
    assert any(p.startswith("overlays/prod: Secret/leadx-secrets") and "create it in the namespace" in p
               for p in problems), problems
    assert not any(p.startswith("overlays/dev: Secret") for p in problems)


def test_production_connects_over_tls_with_its_secrets_from_secrets():
    docs = check_k8s.render(check_k8s.K8S / "overlays" / "prod")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("leadx-config"))
    data = config["data"]
    assert (data["KAFKA_SECURITY_PROTOCOL"], data["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (data["KAFKA_SSL_CAFILE"], data["REDIS_SSL_CA_CERTS"]) == ("/etc/leadx/ca/kafka-ca.crt",
                                                                     "/etc/leadx/ca/redis-ca.crt")
    assert "REDIS_URL" not in data and "DATABASE_URL" not in data
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "leadx-secrets"
        if "REDIS_URL" in env:
            assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "leadx-secrets", "key": "REDIS_URL"}
        assert {"name": "connection-ca", "mountPath": "/etc/leadx/ca", "readOnly": True} in container["volumeMounts"]
        assert {v["name"]: v for v in pod["volumes"]}["connection-ca"]["secret"]["secretName"] == "leadx-connection-ca"
    ledger = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "leadx-ledger")
    [container] = ledger["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GRPC_REFLECTION"] == "false"
    assert env["GRPC_TLS_CERT_FILE"] == "/etc/leadx/grpc-tls/tls.crt"
    assert env["GRPC_TLS_KEY_FILE"] == "/etc/leadx/grpc-tls/tls.key"
    # The kubelet's gRPC probe speaks no TLS: readiness is the health port's /readyz.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert "grpc" not in container["readinessProbe"]


def test_the_dev_overlay_keeps_plaintext_and_reflection():
    docs = check_k8s.render(check_k8s.K8S / "overlays" / "dev")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("leadx-config"))
    assert config["data"]["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    ledger = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "leadx-ledger")
    env = {e["name"]: e.get("value") for e in ledger["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRPC_REFLECTION"] == "true" and "GRPC_TLS_CERT_FILE" not in env

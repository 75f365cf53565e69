"""The house plan of docs/architecture.md, enforced: the layers, and no import cycles.

Every import counts, wherever it is written: at the top of a module, inside a function, or under
`if TYPE_CHECKING`. An import inside a function is allowed (the CLI keeps `leadx --help` fast that way),
but it cannot hide a cycle or a layer violation, because it is checked like any other."""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lower layers never import higher ones. A module's layer is that of its longest listed prefix.
LAYERS: dict[str, int] = {
    "leadx.contracts": 0,
    "leadx.platform": 1,
    "leadx.leads": 2, "leadx.accounts": 2, "leadx.dedup": 2, "leadx.auction": 2, "leadx.delivery": 2,
    "leadx.ledger": 2, "leadx.lists": 2, "leadx.scoring": 2, "leadx.prospects": 2,
    "leadx.dev": 3,
    "leadx.cli": 4,
    "services": 4,
}
DOMAIN = 2
# Services are edges over the domain: they use contracts, platform and domain, never the developer
# tools, the CLI or each other.
SERVICE_MAY_IMPORT = ("leadx.contracts", "leadx.platform", *[name for name, layer in LAYERS.items() if layer == DOMAIN])


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_generated(name: str) -> bool:
    return name.endswith(("_pb2", "_pb2_grpc"))


def scan(root: Path) -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported project module, line)} for every import statement under root's `leadx`
    and `services`, wherever the statement sits (module level, function, TYPE_CHECKING block)."""
    known = {_module_name(root, path): path for top in ("leadx", "services") if (root / top).exists()
             for path in (root / top).rglob("*.py") if not _is_generated(path.stem)}

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from package import module` names a module; `from module import name` its module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names]
            for target in targets:
                resolved = None if _is_generated(target) else resolve(target)
                if resolved and resolved != name:
                    found[name].add((resolved, node.lineno))
        found.setdefault(name, set())
    return found


@cache
def imports() -> dict[str, set[tuple[str, int]]]:
    return scan(ROOT)


ROOTS = ("leadx", "services")


def layer_of(module: str) -> tuple[str, int]:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return prefix, LAYERS[prefix]


def _top_package(module: str) -> str:
    """leadx.dedup.store -> leadx.dedup; services.intake.app -> services.intake."""
    return ".".join(module.split(".")[:2])


def test_every_module_has_a_layer():
    unplaced = [m for m in imports() if m not in ROOTS
                and not any(m == p or m.startswith(p + ".") for p in LAYERS)]
    assert not unplaced, f"modules outside every layer of docs/architecture.md: {unplaced}"


def test_no_module_imports_a_higher_layer():
    violations = []
    for module, targets in imports().items():
        if module in ROOTS:
            continue
        _, own = layer_of(module)
        for target, line in targets:
            if target in ROOTS:
                continue
            _, theirs = layer_of(target)
            if theirs > own:
                violations.append(f"{module}:{line} imports {target}")
    assert not violations, "imports against the layers:\n" + "\n".join(sorted(violations))


def test_services_use_only_contracts_platform_and_domain():
    violations = []
    for module, targets in imports().items():
        if not module.startswith("services."):
            continue
        for target, line in targets:
            if target.startswith("services."):
                if _top_package(target) != _top_package(module):
                    violations.append(f"{module}:{line} imports another service, {target}")
            elif not any(target == p or target.startswith(p + ".") for p in SERVICE_MAY_IMPORT):
                violations.append(f"{module}:{line} imports {target}")
    assert not violations, "\n".join(sorted(violations))


def test_the_shared_package_never_imports_a_service():
    violations = [f"{m}:{line} imports {t}" for m, targets in imports().items() if m.startswith("leadx")
                  for t, line in targets if t.startswith("services")]
    assert not violations, "\n".join(sorted(violations))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules():
    graph = {m: {t for t, _ in targets} for m, targets in imports().items()}
    assert _cycles(graph) == [], "import cycles (imports inside functions count too)"


def test_no_import_cycles_between_domain_packages():
    """Each domain package builds on others in one direction (docs/architecture.md draws the order)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        if module in ROOTS or layer_of(module)[1] != DOMAIN:
            continue
        for target, _ in targets:
            if target not in ROOTS and layer_of(target)[1] == DOMAIN and _top_package(target) != _top_package(module):
                graph[_top_package(module)].add(_top_package(target))
    assert _cycles(graph) == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_an_import_inside_a_function_cannot_hide_a_cycle(tmp_path):
    (tmp_path / "leadx").mkdir()
    (tmp_path / "leadx" / "__init__.py").write_text("")
    (tmp_path / "leadx" / "first.py").write_text("from leadx.second import helper\n")
    (tmp_path / "leadx" / "second.py").write_text(
        "def helper():\n    from leadx import first  # dodges the cycle at import time\n    return first\n")
    graph = {m: {t for t, _ in targets} for m, targets in scan(tmp_path).items()}
    assert graph["leadx.second"] == {"leadx.first"}
    assert _cycles(graph) == [["leadx.first", "leadx.second"]]


def test_the_project_is_scanned():
    """The checks above look at the real tree: a service's entry point and its imports are there."""
    found = imports()
    assert "leadx.platform.runtime" in {target for target, _ in found["services.dedup.main"]}
    assert len(found) > 100

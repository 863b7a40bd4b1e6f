"""labkit's layers, read from the source (ast): nothing below imports what sits above it,
and no two modules import each other, however indirectly — lazy imports inside
functions included, since they are dependencies all the same.

From the top: the CLI (cli, views) → review → everything else (grading, sandbox, bundles,
runtimes, proc, ...); within the lower layers, the sandbox sits below the check engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import labkit

SRC = Path(labkit.__file__).resolve().parent
TOP = ("labkit.cli", "labkit.views")
# Imports each group of modules must never make (a module's own group excepted).
FORBIDDEN = {
    "labkit.review": TOP,
    "": (*TOP, "labkit.review"),  # every other module
    "labkit.sandbox": (*TOP, "labkit.review", "labkit.grading"),
    "labkit.warm": (*TOP, "labkit.review", "labkit.grading", "labkit.sandbox"),
}
# No cycle is allowed (the last, review.batch <-> review.kube_batch, went with the backends step).
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the labkit modules it imports (at module level or inside functions)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        own_package = name if package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = own_package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in names:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # A module's own packages are imported with it, by Python itself: no edge.
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def _group(module: str) -> str:
    for group in ("labkit.sandbox", "labkit.review", "labkit.warm"):
        if module == group or module.startswith(group + "."):
            return group
    return "" if not module.startswith(TOP) else "top"


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for module, targets in sorted(import_graph().items()):
        group = _group(module)
        if group == "top":
            continue
        upward += [f"{module} imports {t}" for t in sorted(targets) if _under(t, FORBIDDEN[group])]
    assert upward == []


def test_there_is_no_import_cycle():
    assert [c for c in cycles(import_graph()) if c not in KNOWN_CYCLES] == []


def test_the_checker_sees_what_it_must_refuse():
    """The rules above are only as good as the graph: a lazy upward import and a cycle are found."""
    graph = import_graph()
    assert "labkit.review.batch" in graph["labkit.views"]  # a lazy import, inside a function
    assert "labkit.sandbox.confine" in graph["labkit.sandbox.runner"]  # a from-import of names
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _under("labkit.review.confine", FORBIDDEN[""]) and _under("labkit.grading.plugin", FORBIDDEN["labkit.sandbox"])

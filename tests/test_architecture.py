"""The package's shape, read from the source (AST, function-level imports included): every import
runs down the floors below, no two modules import each other through any chain, and no module
outgrows 450 lines (the synthetic vocabularies, word lists, excepted)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "prodmatch"

# Floors, lowest first: a module may import only from the floors listed before its own (a top-level
# module or a sub-package is one floor; inside a sub-package modules import each other freely, but
# never in a circle). Plugins below reach the floors above only by a registered module name.
FLOORS = [
    "prodmatch", "errors", "extras", "resources", "registry", "task", "config", "io", "report", "summary",
    "layers", "weights", "backbones", "training", "data", "metrics",
    "neighbors", "ann", "similarity", "saved_model", "store",
    "post", "encoders", "embedders", "pairs", "stack", "kdd", "distributed", "ccks",
    "baseline", "predict", "leaderboard", "shopee", "pipeline", "commands", "cli", "__main__",
]
MAX_LINES = 450
VOCABULARIES = ("data/synth/vocab",)  # word lists of the synthetic generators


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str) -> set[str]:
    """Every prodmatch name `path` imports, anywhere in the file: a module path, or a module path
    and one of its attributes (``from pkg import x`` imports module ``pkg.x`` when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "prodmatch":
                found |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "prodmatch"}
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports: a name resolves to the longest module path it starts with."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(target: str) -> str:
        while target not in paths:
            target = target.rpartition(".")[0]
        return target

    return {name: {resolve(t) for t in imported(path, name)} - {name} for name, path in paths.items()}


def floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "prodmatch"


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_every_module_has_a_floor():
    assert sorted({floor(m) for m in import_graph()} - set(FLOORS)) == []


def test_no_import_runs_upward():
    rank = {name: i for i, name in enumerate(FLOORS)}
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
                    if floor(a) != floor(b) and rank[floor(b)] >= rank[floor(a)])
    assert upward == []


def test_no_circle():
    assert circles(import_graph()) == []


def test_the_checks_see_what_they_should():
    """The reader finds function-level and relative imports, and the circle finder finds circles."""
    assert "prodmatch.neighbors" in import_graph()["prodmatch.ann"]
    assert "prodmatch.post.pool" in import_graph()["prodmatch.embedders.tune"]  # imported inside a function
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_450_lines(path):
    relative = path.relative_to(PACKAGE).as_posix()
    if relative.startswith(VOCABULARIES):
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{relative}: {lines} lines"

"""The import graph of ``bot`` and ``charrnn`` has layers and no cycle.

Every import counts: at the top of a module, inside a function, or only for type checking, since each is a
dependency a reader must follow. A layer imports only from layers below it (``LAYERS``); the Telegram handlers
never import each other; charrnn's text helpers know nothing of models.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "charrnn")

# Lowest first. A module belongs to the first layer whose prefix it starts with; bot's migrations run apart.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("charrnn",),
    ("bot.settings", "bot.domain"),
    ("bot.db", "bot.ops"),
    ("bot.serving",),
    ("bot.services",),
    ("bot.telegram",),
    ("bot.app", "bot.styles_cli", "bot.worker", "bot.sandbox", "bot.cli", "bot.__main__", "bot"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports (a package's ``__init__`` only when it is imported as such)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
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


def test_the_finder_sees_a_cycle_and_an_upward_import() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("bot.services.lyrics") > layer("bot.serving.generation") > layer("charrnn.vocab")


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_no_layer_imports_from_one_above_it() -> None:
    upward = sorted(f"{name} -> {target}" for name, targets in graph().items() for target in targets
                    if layer(target) > layer(name))
    assert upward == []


def test_telegram_handlers_never_import_each_other() -> None:
    handlers = "bot.telegram.handlers."
    crossing = sorted(f"{name} -> {target}" for name, targets in graph().items() if name.startswith(handlers)
                      for target in targets if target.startswith(handlers))
    assert crossing == []


def test_charrnn_text_knows_nothing_of_models() -> None:
    """``charrnn.text`` is what a lyric is (scripts, rhyme, forms, titles); writing one is ``charrnn.generation``."""
    edges = graph()
    text = [name for name in edges if name.startswith("charrnn.text")]
    assert text, "charrnn.text has no modules"
    assert sorted(f"{name} -> {target}" for name in text for target in edges[name]
                  if target.startswith(("charrnn.generation", "charrnn.model", "charrnn.train"))) == []
    for name in text:
        source = modules()[name].read_text(encoding="utf-8")
        assert "import torch" not in source, name

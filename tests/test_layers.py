"""The house's rules, read from the code's own imports (function-level ones included): no import circle
among the app's modules, nothing imports a floor above its own, and no product module passes 450 lines
(docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "search"
MAX_LINES = 450
# Floors from the ground up; a module may import its own floor or one below, never one above.
FLOORS = {"engine": 0, "charts": 0, "models": 1, "schedules": 1, "counters": 1, "selectors": 2, "services": 3}
ADAPTER = 4  # views, forms, admin, tasks, templatetags, management commands, urls, apps


def modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The app's modules `path` imports, at any depth of the file."""
    out: set[str] = set()
    package = ".".join(path.relative_to(ROOT).parent.parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).rstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return {m for m in out if m in known}


def floor(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return FLOORS.get(part, ADAPTER)


def test_no_import_circle_among_the_apps_modules() -> None:
    mods = modules()
    graph = {m: imports(p, set(mods)) - {m} for m, p in mods.items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        assert m not in path, f"import circle: {' -> '.join([*path[path.index(m) :], m])}"
        if m in done:
            return
        for n in sorted(graph[m]):
            if not (n.startswith(m + ".") or m.startswith(n + ".")):  # a package and its own modules
                visit(n, [*path, m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])


def test_nothing_imports_a_floor_above_its_own() -> None:
    mods = modules()
    wrong = [
        f"{m} (floor {floor(m)}) imports {n} (floor {floor(n)})"
        for m, p in mods.items()
        for n in imports(p, set(mods))
        if floor(n) > floor(m)
    ]
    assert wrong == []


def test_the_engine_and_charts_import_no_django() -> None:
    for folder in ("engine", "charts"):
        for path in (APP / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
            assert not [n for n in names if n.split(".")[0] in ("django", "django_q")], path


def test_no_product_module_passes_the_line_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in modules().values() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}

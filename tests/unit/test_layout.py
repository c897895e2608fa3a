"""The layout's promises, checked on the imports themselves: the sandboxes stay out of the
product, the Celery side never imports Flask, the web never imports the tasks or the CLI, and
the shared core depends on none of the parts built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("app", "workers", "tasks", "config", "core", "cli")


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module each file of the package imports (absolute names, first two parts)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path} imports {name}"
            for package in packages
            for path, names in imported_modules(package).items()
            for name in sorted(names)
            if name.split(".")[0] in forbidden]


@pytest.mark.parametrize(("packages", "forbidden"), [
    (PRODUCT, ("sandboxes",)),
    (("workers", "tasks"), ("flask", "werkzeug", "app")),
    (("app",), ("tasks", "cli")),
    (("core", "config"), ("app", "workers", "tasks", "cli")),
])
def test_dependencies_point_one_way(packages, forbidden):
    assert offenders(packages, forbidden) == []


def test_the_sandboxes_are_not_in_the_product_wheel():
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = next(line for line in pyproject.splitlines() if line.startswith("include ="))
    assert "sandboxes" not in include and all(f'"{p}*"' in include for p in PRODUCT)

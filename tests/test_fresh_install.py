"""What a fresh `pip install -e ".[dev]"` gives is enough: every library the code and tests import is declared.

A library that happens to be installed on a developer's machine, but that no declared
requirement brings in, makes the suite pass there and fail on a newcomer's machine (and
in CI, which installs into a fresh virtual environment). This reads every import of the
package, its callbacks, examples and tests, and checks that each third-party module
comes from a distribution that the project's requirements (``dependencies`` and every
extra) bring in, directly or through their own requirements.
"""
import ast
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
requirements = pytest.importorskip("packaging.requirements")

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("plugin", "callbacks", "examples", "tests")
OWN = {"wse", "tests", "plugin", "callbacks", "examples", "benchmarks", "__future__"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return {normalise(requirements.Requirement(line).name) for line in lines}


def closure(names: set) -> set:
    """The distributions ``names`` bring in, with their requirements, as far as they are installed."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in needs:
            requirement = requirements.Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalise(requirement.name))
    return seen


def imported_modules() -> dict:
    """Top-level third-party module -> the files importing it."""
    found = {}
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_library_comes_with_a_declared_requirement():
    available = closure(declared())
    providers = metadata.packages_distributions()
    undeclared = {}
    for module, files in imported_modules().items():
        distributions = {normalise(d) for d in providers.get(module, ())}
        # A module no installed distribution provides is not importable here: its tests skip or fail visibly.
        if distributions and not distributions & available:
            undeclared[module] = sorted(files)
    assert not undeclared, (
        f"imported but brought in by no requirement of pyproject.toml: {undeclared}; declare them "
        f"(in `dependencies` or an extra such as `dev`)."
    )
    assert {"torch", "lightning", "pytest"} <= available

"""The package shows the pipeline: library code lives in minionerec/, root scripts only call it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOT_MODULES = {p.stem for p in ROOT.glob("*.py")}


def imported_top_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "minionerec").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_package_never_imports_a_root_module(path: Path) -> None:
    assert not imported_top_names(path) & ROOT_MODULES, f"{path} imports root modules"


@pytest.mark.parametrize("folder", ["tests", "benchmarks", "minionerec", "data", "rq"])
def test_nothing_patches_sys_path(folder: str) -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py") if p.name != "test_layout.py"
                 if "sys.path.insert" in p.read_text() or "sys.path.append" in p.read_text()]
    assert not offenders, f"these files patch sys.path instead of importing the package: {offenders}"


@pytest.mark.parametrize("script", sorted(p for p in ROOT.glob("*.py")), ids=lambda p: p.name)
def test_root_scripts_are_thin(script: Path) -> None:
    lines = len(script.read_text().splitlines())
    assert lines <= 200, f"{script.name} has {lines} lines: library code belongs in minionerec/"

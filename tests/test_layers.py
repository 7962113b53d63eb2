"""Layers import downwards only: api -> qa -> retriever. Read from the source (ast), so lazy imports count too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# each layer, and the packages above it that it must never import
ABOVE = {"retriever": ("qa", "api"), "qa": ("api",)}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, wherever in the module the import stands."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:  # relative ones stay inside
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_a_layer_never_imports_the_layers_above_it(layer):
    modules = sorted((ROOT / layer).rglob("*.py"))
    assert modules, f"no modules under {layer}/"
    upward = {str(m.relative_to(ROOT)): sorted(imported_packages(m) & set(ABOVE[layer])) for m in modules}
    assert {m: found for m, found in upward.items() if found} == {}


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from qa.reader import Reader\n    import api.app\n", encoding="utf-8")
    assert imported_packages(module) >= {"qa", "api"}

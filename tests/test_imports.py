"""Import costs and the lazy top-level API.

Commands that only read cards and recipes must not pay for torch (~2.5 s), and nothing may import
peft (and with it transformers, ~6 s) or timm unless it is used. Each case runs in a fresh
interpreter and reads ``sys.modules`` afterwards.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import rsfm

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "peft", "transformers", "torchvision", "accelerate")

# Runs the rsfm CLI (or an import), then reports which heavy packages were loaded.
WRAPPER = """
import json, sys
code = 0
if sys.argv[1] == "cli":
    from rsfm.cli import main
    code = main(sys.argv[2:])
else:
    __import__(sys.argv[2])
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("LOADED " + json.dumps(heavy), file=sys.stderr)
sys.exit(code)
"""


def _loaded(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", WRAPPER.format(heavy=HEAVY), *args], cwd=ROOT, check=False,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if x.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED "))


@pytest.mark.parametrize("argv", [
    ["backbones"],
    ["backbones", "prithvi*"],
    ["check", "recipes/demo.yaml", "--quiet"],
    ["check", "recipes/prithvi_burn_scars_lora.yaml", "--quiet"],
])
def test_card_and_recipe_commands_do_not_import_torch(argv):
    assert _loaded("cli", *argv) == []


def test_import_rsfm_and_the_check_modules_are_light():
    assert _loaded("import", "rsfm") == []
    assert _loaded("import", "rsfm.preflight") == []
    assert _loaded("import", "rsfm.modelcheck") == []


def test_hub_and_factory_do_not_import_peft_or_timm():
    for module in ("rsfm.hub", "rsfm.factory"):
        loaded = _loaded("import", module)
        assert "torch" in loaded  # (they build models)
        assert not {"peft", "transformers", "timm"} & set(loaded), (module, loaded)


def _init_tree() -> ast.Module:
    return ast.parse((ROOT / "rsfm" / "__init__.py").read_text(encoding="utf-8"))


def _literal(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"rsfm/__init__.py assigns no {name}")


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """``name -> module`` of the ``from M import name as name`` lines under ``if TYPE_CHECKING:``."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                for alias in stmt.names:
                    # "as name": an explicit re-export for type checkers (PEP 484)
                    assert alias.asname == alias.name, ast.unparse(stmt)
                    found[alias.name] = str(stmt.module)
    return found


def test_lazy_exports_all_and_type_checking_imports_agree():
    tree = _init_tree()
    exports = _literal(tree, "_EXPORTS")
    names = _literal(tree, "__all__")
    assert isinstance(exports, dict) and isinstance(names, list)
    assert set(names) - {"__version__"} == set(exports)
    assert _type_checking_imports(tree) == exports  # same names, from the same modules
    assert exports == rsfm._EXPORTS and names == rsfm.__all__


@pytest.mark.parametrize("name", sorted(rsfm._EXPORTS))
def test_every_lazy_export_resolves(name):
    module = importlib.import_module(rsfm._EXPORTS[name])
    value = getattr(rsfm, name)
    if isinstance(value, types.ModuleType):  # a same-named subpackage (rsfm.train) is bound
        assert callable(value), f"rsfm.{name} is the module {value.__name__}, not callable"
    else:
        assert value is getattr(module, name)


# Exports named like a subpackage or module of rsfm: importing that module binds it to the name.
SHADOWED = sorted(n for n in rsfm._EXPORTS if importlib.util.find_spec(f"rsfm.{n}") is not None)


@pytest.mark.parametrize("name", SHADOWED)
def test_exports_named_like_a_submodule_stay_callable(name):
    """``rsfm.train(...)`` must work however the submodules were imported before."""
    code = (f"import importlib, rsfm; importlib.import_module({rsfm._EXPORTS[name]!r}); "
            f"a = rsfm.{name}; b = rsfm.{name}; assert a is b and callable(a), type(a)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr[-800:]
    code = f"import rsfm; f = rsfm.{name}; import {rsfm._EXPORTS[name]}; assert rsfm.{name} is f"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr[-800:]

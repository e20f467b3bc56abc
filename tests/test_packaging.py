"""The wheel ships the adapter cards and recipes, and finds them without a source checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{result.stderr[-3000:]}")
    return next(out.glob("rsfm-*.whl"))


def test_wheel_contains_every_card_and_recipe(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for card in (ROOT / "adapters").glob("*.yaml"):
        assert f"rsfm/_adapters/{card.name}" in names
    for recipe in (ROOT / "recipes").glob("*.yaml"):
        assert f"rsfm/_recipes/{recipe.name}" in names
    assert "rsfm/py.typed" in names


def test_installed_wheel_finds_its_cards(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = "import rsfm, rsfm.cards as c; print(len(rsfm.list_backbones()), c.adapter_dirs()[-1])"
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    count, directory = out.stdout.split()
    assert int(count) == len(list((ROOT / "adapters").glob("*.yaml")))
    assert directory.endswith("rsfm/_adapters") and str(tmp_path) in directory

"""The command line: no raw traceback reaches a user; arguments in any order."""

from __future__ import annotations

import sys
from pathlib import Path

from rsfm.cli import main, run_guarded
from rsfm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_rsfm_error_is_one_line_exit_2(capsys):
    def fail():
        raise ConfigError("data.tile_size: must be >= 8 pixels (got 4)")

    assert run_guarded("check", fail) == 2
    err = capsys.readouterr().err
    assert err == "error: data.tile_size: must be >= 8 pixels (got 4)\n"


def test_unexpected_error_saves_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RSFM_TRACEBACK_DIR", str(tmp_path))

    def bug():
        return {}["missing"]

    assert run_guarded("predict", bug) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyError" in err and "--debug" in err
    saved = list(tmp_path.glob("*-predict-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in err
    assert 'return {}["missing"]' in saved[0].read_text()


def test_debug_prints_the_traceback(capsys):
    assert run_guarded("x", lambda: 1 / 0, debug=True) == 1
    assert "Traceback" in capsys.readouterr().err


def test_os_error_naming_a_file_is_a_user_error(capsys):
    def denied():
        raise PermissionError(13, "Permission denied", "/read-only/out.tif")

    assert run_guarded("predict", denied) == 2
    assert capsys.readouterr().err == "error: Permission denied (/read-only/out.tif)\n"


def test_options_between_positionals(capsys):
    """`rsfm check r.yaml --data k=v` used to reject the override after --data."""
    recipe = str(ROOT / "recipes" / "demo.yaml")
    assert main(["check", recipe, "--quiet", "train.epochs=0"]) == 2
    assert "train.epochs" in capsys.readouterr().err
    assert main(["check", "--debug", recipe, "--quiet", "train.epochs=2"]) == 0


def test_python_m_rsfm_train_uses_the_same_handler(tmp_path):
    import subprocess

    out = subprocess.run([sys.executable, "-m", "rsfm.train", str(tmp_path / "missing.yaml")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "missing.yaml" in out.stderr

"""A catalogue of bad inputs and faults, driven through the real command line (issue 11, item 4).

Each case builds its inputs in a fresh folder, runs ``rsfm ...`` (in-process through
:func:`rsfm.cli.main`; a subprocess where a launcher or a signal is part of the fault) and asserts
what the user sees and what is left on disk:

- the exit code: 2 for a user error (never 1 with a saved traceback: nothing in this catalogue is
  a bug), 0 where the fault is survivable and only warned about;
- the message names the culprit (the file, the key path, the band or the value);
- no raw traceback is printed, and no traceback file is saved;
- no file the user had (inputs, recipe, run folder, outputs) changed: the watched folders are
  hashed before and after. A failed command leaves no new file either, unless the case says so.

A case is a function ``(ctx) -> argv`` (or ``(argv, extra culprit strings)``) registered with
:func:`case`. The tiny models (a 2-block, width-64 DOFA on 64-px tiles of the real Sen1Floods11
crops; a ResNet-18 Faster R-CNN built without training) keep the whole file to a few minutes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin
from test_train import tiny_recipe

from rsfm.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
S1 = DATA / "sen1floods11"
SCENE = S1 / "S1Hand" / "Spain_7370579_S1Hand.tif"
S2_CHIP = S1 / "S2Hand" / "Spain_7370579_S2Hand.tif"
ALL_NAN = S1 / "S1Hand" / "Paraguay_34417_S1Hand.tif"
LANDSAT = DATA / "landsat7" / "RGB.byte.crop.tif"
TREES = DATA / "deepforest"
ARCGIS = DATA / "arcgis"
TERRATORCH = DATA / "terratorch"
DELETE = object()  # a recipe change that removes the key


# ------------------------------------------------------------------------------------ recipes
def seg_recipe(out: Path) -> dict[str, Any]:
    """test_train's tiny DOFA segmentation recipe, one step, no plots."""
    return tiny_recipe(out, train={"epochs": 1, "max_steps": 1}, output={"dir": str(out),
                                                                          "plots": False})



# what a successful resume rewrites: checkpoints rotate, best/last weights and metrics grow
RESUMED = ("run/checkpoints/", "run/model.safetensors", "run/last_model.safetensors",
           "run/config.json", "run/metrics.jsonl", "run/metrics.csv")

RESNET = {"model.backbone": "resnet18", "model.head": "unet", "model.backbone_kwargs": {},
          "model.neck": DELETE}


def det_recipe(out: Path, images: Path, labels: Path) -> dict[str, Any]:
    """A ResNet-18 Faster R-CNN recipe on VOC-annotated RGB chips."""
    return {
        "name": "trees",
        "model": {"task": "detection", "backbone": "resnet18", "head": "faster_rcnn",
                  "num_classes": 1, "bands": ["RED", "GREEN", "BLUE"]},
        "data": {"kind": "chips", "train": {"images": str(images), "labels": str(labels)},
                 "label_format": "voc", "classes": ["Tree"], "file_bands": ["RED", "GREEN", "BLUE"],
                 "batch_size": 1, "normalization": {"mode": "minmax"}},
        "train": {"epochs": 1, "max_steps": 1, "progress": False},
        "output": {"dir": str(out), "plots": False},
    }


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set (or with DELETE remove) ``a.b.c`` in a nested dict, creating sections."""
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = copy.deepcopy(value)


def changed(recipe: dict[str, Any], *changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(recipe)
    for change in changes:
        for key, value in change.items():
            set_path(out, key, value)
    return out


# ------------------------------------------------------------------------------------ files
def write_tif(path: Path, data: np.ndarray, *, crs: str | None = "EPSG:32633", transform=None,
              nodata=None, descriptions: Iterable[str] = ()) -> Path:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "dtype": data.dtype.name, "nodata": nodata,
               "transform": transform or from_origin(500000, 5000000, 10, 10)}
    if crs is not None:
        profile["crs"] = crs
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
    return path


def voc(path: Path, boxes: Iterable[tuple[int, int, int, int]], size=(400, 400),
        name="Tree", filename="OSBS_029.tif") -> Path:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        f"<ymax>{d}</ymax></bndbox></object>" for a, b, c, d in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
                    f"<height>{size[1]}</height><depth>3</depth></size>{objects}</annotation>")
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file short (a fresh inode: a hard-linked copy elsewhere keeps its bytes)."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: int(len(data) * keep)])


# ------------------------------------------------------------------------------------ hashing
_HASHES: dict[tuple, str] = {}


def snapshot(folders: Iterable[Path]) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``folders`` (cached by inode, size and ctime, which
    every write changes)."""
    out = {}
    for folder in folders:
        if not folder.exists():
            continue
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                key = (str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if key not in _HASHES:
                    _HASHES[key] = hashlib.sha256(p.read_bytes()).hexdigest()
                out[str(p)] = _HASHES[key]
    return out


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 2-epoch run keeping 2 checkpoints (epoch-0001 weights only, epoch-0002 full)."""
    from rsfm.train.loop import train

    run = tmp_path_factory.mktemp("trained") / "run"
    recipe = changed(seg_recipe(run), {"train.epochs": 2, "train.max_steps": DELETE,
                                       "output.keep_checkpoints": 2})
    train(recipe)
    path = run / "recipe.yaml"
    assert path.is_file() and (run / "checkpoints" / "epoch-0001").is_dir()
    return run


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    """A saved (untrained) ResNet-18 Faster R-CNN folder for RGB trees."""
    import torch

    from rsfm.factory import create_model
    from rsfm.hub import save_pretrained

    torch.manual_seed(0)
    model = create_model("detection", "resnet18", head="faster_rcnn", num_classes=1,
                         bands=["RED", "GREEN", "BLUE"], classes=["Tree"])
    folder = tmp_path_factory.mktemp("detector") / "det"
    save_pretrained(model, folder)
    return folder


@dataclass
class Ctx:
    """What a case builds its inputs with."""

    tmp: Path
    request: Any
    extra_watch: list[Path] = field(default_factory=list)

    # -- files
    def recipe(self, *changes: dict[str, Any], base: dict[str, Any] | None = None,
               name: str = "recipe.yaml") -> Path:
        data = changed(base if base is not None else seg_recipe(self.tmp / "run"), *changes)
        return self.write_yaml(data, name)

    def write_yaml(self, data: Any, name: str = "recipe.yaml") -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def chips(self, files: Iterable[Path], folder: str = "images") -> Path:
        """A folder holding copies of ``files``."""
        dst = self.tmp / folder
        dst.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(f, dst / f.name)
        return dst

    def s1_pair(self, images: str = "images", labels: str = "labels") -> tuple[Path, Path]:
        """Copies of two real S1 chips and their labels (names shared, no suffixes)."""
        im, lab = self.tmp / images, self.tmp / labels
        im.mkdir(parents=True, exist_ok=True)
        lab.mkdir(parents=True, exist_ok=True)
        for stem in ("Spain_7370579", "Ghana_53713"):
            shutil.copy(S1 / "S1Hand" / f"{stem}_S1Hand.tif", im / f"{stem}.tif")
            shutil.copy(S1 / "LabelHand" / f"{stem}_LabelHand.tif", lab / f"{stem}.tif")
        return im, lab

    def chip_recipe(self, images: Path, labels: Path | None, *changes: dict[str, Any]) -> Path:
        """The tiny recipe on a chip folder pair."""
        base = changed(seg_recipe(self.tmp / "run"), {
            "data.kind": "chips", "data.train": {"images": str(images)} | (
                {"labels": str(labels)} if labels is not None else {}),
            "data.image_suffix": DELETE, "data.label_suffix": DELETE, "data.val_fraction": 0.0})
        return self.recipe(*changes, base=base)

    def tree_chips(self, boxes: Iterable[tuple[int, int, int, int]] | None = None) -> tuple[Path, Path]:
        """One real NEON RGB chip with a VOC file (its own boxes, or ``boxes``)."""
        im = self.chips([TREES / "images" / "OSBS_029.tif"], "trees")
        ann = self.tmp / "ann"
        ann.mkdir(exist_ok=True)
        if boxes is None:
            shutil.copy(TREES / "annotations" / "OSBS_029.xml", ann / "OSBS_029.xml")
        else:
            voc(ann / "OSBS_029.xml", boxes)
        return im, ann

    # -- shared models (module fixtures; watched, read-only)
    @property
    def trained(self) -> Path:
        run = self.request.getfixturevalue("trained")
        self.watch(run)
        return run

    def run_recipe(self, run: Path, *changes: dict[str, Any]) -> Path:
        """The run's own recipe.yaml, pointed at ``run`` (a copy), written to the case folder."""
        recipe = yaml.safe_load((run / "recipe.yaml").read_text())
        return self.recipe({"output.dir": str(run)}, *changes, base=recipe)

    def run_copy(self, name: str = "run") -> Path:
        dst = self.tmp / name
        shutil.copytree(self.request.getfixturevalue("trained"), dst)
        return dst

    @property
    def detector(self) -> Path:
        folder = self.request.getfixturevalue("detector")
        self.watch(folder)
        return folder

    def watch(self, folder: Path) -> None:
        if folder not in self.extra_watch:
            self.extra_watch.append(folder)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Ctx], Any]
    names: tuple[str, ...] = ()
    code: int = 2
    new_files: bool = False  # a failing command may add files (e.g. recipe history)
    subprocess: bool = False
    timeout: float = 180
    may_change: tuple[str, ...] = ()  # paths (relative to the case folder) a success may rewrite


CASES: list[Any] = []


def case(id: str, *names: str, code: int = 2, marks: Any = (), new_files: bool = False,
         subprocess: bool = False, may_change: tuple[str, ...] = ()) -> Callable:
    """Register a catalogue case; ``names`` are culprit strings the message must contain
    (``{tmp}`` is the case's folder)."""
    def deco(fn: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        CASES.append(pytest.param(Case(id, fn, names, code, new_files or code == 0, subprocess,
                                       may_change=may_change), id=id, marks=marks))
        return fn
    return deco


def _reset_status_handlers() -> None:
    """``rsfm train`` binds its status handler to the sys.stdout of the first run; rebind."""
    logger = logging.getLogger("rsfm.train")
    for h in list(logger.handlers):
        if getattr(h, "_rsfm_status", False):
            logger.removeHandler(h)
    logger.propagate = True


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    log: str

    @property
    def text(self) -> str:
        return f"{self.err}\n{self.out}\n{self.log}"


def run_cli(argv: list[str], capsys, caplog, env: dict[str, str] | None = None,
            in_subprocess: bool = False, timeout: float = 180) -> Outcome:
    if in_subprocess:
        proc = subprocess.run([sys.executable, "-m", "rsfm", *argv], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **(env or {})},
                              check=False)
        return Outcome(proc.returncode, proc.stdout, proc.stderr, "")
    _reset_status_handlers()
    caplog.clear()
    try:
        with caplog.at_level(logging.INFO, logger="rsfm"):
            code = main(argv)
    except SystemExit as exc:  # argparse: usage + one error line, exit 2
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        _reset_status_handlers()
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, caplog.text)


def run_case(c: Case, tmp_path: Path, request: Any, capsys: Any, caplog: Any,
             monkeypatch: Any) -> None:
    """Run one CLI case and check it: exit code, no traceback (printed or saved), one short
    message naming every culprit, no file of the case folder or the test data changed or added.
    The catalogues in ``test_bad_inputs_hidden*.py`` run their cases through this too."""
    tracebacks = tmp_path / "tracebacks"
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.setenv("RSFM_TRACEBACK_DIR", str(tracebacks))
    monkeypatch.chdir(work)
    ctx = Ctx(work, request)
    built = c.build(ctx)
    argv, extra = (built if isinstance(built, tuple) else (built, ()))
    argv = [str(a) for a in argv]
    watched = [work, DATA, *ctx.extra_watch]
    before = snapshot(watched)
    outcome = run_cli(argv, capsys, caplog, {"RSFM_TRACEBACK_DIR": str(tracebacks)},
                      in_subprocess=c.subprocess, timeout=c.timeout)
    after = snapshot(watched)
    shown = f"rsfm {' '.join(argv)}\n--- stderr:\n{outcome.err}\n--- log:\n{outcome.log[-3000:]}"
    if os.environ.get("RSFM_SHOW_CATALOGUE"):  # review the messages: RSFM_SHOW_CATALOGUE=1 -s
        warned = "".join(line + "\n" for line in outcome.log.splitlines() if "WARNING" in line)
        sys.__stdout__.write(f"\n=== {c.id} (exit {outcome.code})\n{outcome.err}{warned}")
    assert outcome.code == c.code, shown
    assert "Traceback" not in outcome.err and "Traceback" not in outcome.out, shown
    assert not tracebacks.exists() or not any(tracebacks.iterdir()), shown
    if c.code == 2:  # one short message (argparse adds its usage line)
        assert "error:" in outcome.err and len(outcome.err) < 3000, shown
    where = outcome.err if c.code == 2 else outcome.text  # an error names it in its message
    bare = where.replace(str(tmp_path), "<tmp>")  # the case folder is named after the case id
    for name in (*c.names, *extra):
        if "{tmp}" in str(name):
            assert str(name).replace("{tmp}", str(work)) in where, f"{name!r} not named\n{shown}"
        else:
            assert str(name) in bare, f"{name!r} not named\n{shown}"
    free = tuple(str(work / m) for m in c.may_change)
    changed_files = sorted(p for p in before if after.get(p) != before[p]
                           and not p.startswith(free))
    assert not changed_files, f"files changed or removed: {changed_files}\n{shown}"
    if not c.new_files:
        added = sorted(set(after) - set(before))
        assert not added, f"a failed command wrote {added}\n{shown}"


@pytest.mark.parametrize("c", CASES)
def test_bad_input(c: Case, tmp_path, request, capsys, caplog, monkeypatch):
    run_case(c, tmp_path, request, capsys, caplog, monkeypatch)


# =============================================================================================
# Recipe files and YAML
# =============================================================================================
@case("recipe-missing", "{tmp}/nope.yaml")
def _(ctx):
    return ["check", ctx.tmp / "nope.yaml"]


@case("recipe-bad-yaml-syntax", "{tmp}/recipe.yaml", "line")
def _(ctx):
    path = ctx.tmp / "recipe.yaml"
    path.write_text("model:\n  task: segmentation\n  bands: [VV, VH\ndata: {}\n")
    return ["check", path]


@case("recipe-tab-indent", "{tmp}/recipe.yaml")
def _(ctx):
    path = ctx.tmp / "recipe.yaml"
    path.write_text("model:\n\ttask: segmentation\n")
    return ["check", path]


@case("recipe-is-a-list", "{tmp}/recipe.yaml", "mapping", "list")
def _(ctx):
    return ["check", ctx.write_yaml([seg_recipe(ctx.tmp / "run")])]


@case("recipe-empty-file", "{tmp}/recipe.yaml", "empty")
def _(ctx):
    path = ctx.tmp / "recipe.yaml"
    path.write_text("")
    return ["check", path]


@case("recipe-is-a-folder", "{tmp}/recipe.yaml", "folder")
def _(ctx):
    (ctx.tmp / "recipe.yaml").mkdir()
    return ["check", ctx.tmp / "recipe.yaml"]


@case("recipe-include-missing", "data.normalization.include", "{tmp}/stats.yaml")
def _(ctx):
    return ["check", ctx.recipe({"data.normalization": {"include": "stats.yaml"}})]


@case("recipe-missing-required-section", "data")
def _(ctx):
    return ["check", ctx.recipe({"data": DELETE})]


@case("recipe-missing-required-key", "model.num_classes")
def _(ctx):
    return ["check", ctx.recipe({"model.num_classes": DELETE})]


@case("override-without-equals", "train.epochs")
def _(ctx):
    return ["check", ctx.recipe(), "train.epochs"]


@case("override-into-a-value", "model.head")
def _(ctx):
    return ["check", ctx.recipe(), "model.head.kind=fcn"]


@case("override-after-option-check-data", "train.epochs", "0")
def _(ctx):  # `rsfm check r.yaml --data k=v`: the override after --data is read (and checked)
    return ["check", ctx.recipe(), "--data", "train.epochs=0"]


@case("override-after-option-train-resume", "model.head", '"fcn"', '"unet"')
def _(ctx):  # `rsfm train r.yaml --resume k=v`
    run = ctx.run_copy()
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "model.head=unet"]


@case("override-bad-value-type", "train.epochs", "many")
def _(ctx):
    return ["check", ctx.recipe(), "train.epochs=many"]


@case("recipe-utf16", code=0)
def _(ctx):  # Windows Notepad's "Unicode" (with its byte-order mark) is read
    path = ctx.tmp / "recipe.yaml"
    path.write_bytes(yaml.safe_dump(seg_recipe(ctx.tmp / "run")).encode("utf-16"))
    return ["check", path]


@case("recipe-duplicate-section", "{tmp}/recipe.yaml", "'train' twice", "line")
def _(ctx):  # plain YAML keeps the last `train:` silently
    path = ctx.recipe()
    path.write_text(path.read_text() + "train:\n  epochs: 50\n")
    return ["check", path]


@case("recipe-include-cycle", "{tmp}/a.yaml", "includes itself")
def _(ctx):
    (ctx.tmp / "a.yaml").write_text("include: b.yaml\n")
    (ctx.tmp / "b.yaml").write_text("include: a.yaml\n")
    return ["check", ctx.tmp / "a.yaml"]


@case("recipe-shipped-name-typo", "demoo")
def _(ctx):
    return ["check", "demoo"]


@case("unknown-subcommand", "trian", "train")
def _(ctx):
    return ["trian", ctx.recipe()]


@case("unknown-option", "--dta")
def _(ctx):
    return ["check", ctx.recipe(), "--dta"]


# =============================================================================================
# Unknown keys, at every level (with close matches)
# =============================================================================================
UNKNOWN_KEYS = [
    ("top", {"trian": {"epochs": 2}}, ["trian", "'train'"]),
    ("model", {"model.backbon": "resnet18"}, ["model.backbon", "'backbone'"]),
    ("model.neck", {"model.neck.out_chanels": 32}, ["model.neck.out_chanels", "'out_channels'"]),
    ("data", {"data.tile_sise": 64}, ["data.tile_sise", "'tile_size'"]),
    ("data.train", {"data.train.label": "x"}, ["data.train.label", "'labels'"]),
    ("data.normalization", {"data.normalization.means": [1, 2]},
     ["data.normalization.means", "'mean'"]),
    ("train", {"train.epoch": 3}, ["train.epoch", "'epochs'"]),
    ("train.optimizer", {"train.optimizer.learning_rate": 0.1},
     ["train.optimizer.learning_rate"]),
    ("train.scheduler", {"train.scheduler.warmup": 1}, ["train.scheduler.warmup"]),
    ("train.loss", {"train.loss.weights": [1, 2]}, ["train.loss.weights", "'class_weights'"]),
    ("train.early_stopping", {"train.early_stopping": {"patients": 3}},
     ["train.early_stopping.patients", "'patience'"]),
    ("train.freeze", {"train.freeze.backbones": True}, ["train.freeze.backbones", "'backbone'"]),
    ("eval", {"eval.metrics": "miou"}, ["eval.metrics", "'metric'"]),
    ("output", {"output.directory": "x"}, ["output.directory", "'dir'"]),
    ("lora", {"lora": {"rank": 4}}, ["lora.rank"]),
    ("data.bands-decl", {"data.bands": [{"name": "VV", "wavelenght": 5.5}, "VH"],
                         "model.bands": DELETE},
     ["wavelenght", "'wavelength'"]),
]
for _where, _change, _names in UNKNOWN_KEYS:
    case(f"unknown-key-{_where}", *_names)(lambda ctx, ch=_change: ["check", ctx.recipe(ch)])


# =============================================================================================
# Typos in every choice (enum): the key, the value and the allowed values / close match
# =============================================================================================
ENUM_TYPOS = [
    ("task", {"model.task": "segmentaton"}, ["model.task", "segmentaton", "'segmentation'"]),
    ("head", {"model.head": "deeplabv3pls"}, ["model.head", "deeplabv3pls", "'deeplabv3plus'"]),
    ("loss", {"train.loss.name": "dicee"}, ["train.loss.name", "dicee", "'dice'"]),
    ("optimizer", {"train.optimizer.name": "adamW"}, ["train.optimizer.name", "adamW", "'adamw'"]),
    ("scheduler", {"train.scheduler.name": "cosin"}, ["train.scheduler.name", "cosin", "'cosine'"]),
    ("neck-kind", {"model.neck.kind": "fpnn"}, ["model.neck.kind", "fpnn", "'fpn'"]),
    ("normalization-mode", {"data.normalization.mode": "stat"},
     ["data.normalization.mode", "'stat'", "'stats'"]),
    ("label-format", {"data.label_format": "vocc"}, ["data.label_format", "vocc", "'voc'"]),
    ("data-kind", {"data.kind": "scene"}, ["data.kind", "'scene'", "'scenes'"]),
    ("metric", {"eval.metric": "mIoU"}, ["eval.metric", "mIoU", "'miou'"]),
    ("eval-mode", {"eval.mode": "maximum"}, ["eval.mode", "maximum"]),
    ("mixed-precision", {"train.mixed_precision": "fp8"}, ["train.mixed_precision", "fp8"]),
    ("temporal-reduction", {"model.temporal_reduction": "max"},
     ["model.temporal_reduction", "max"]),
    ("missing-labels", {"data.missing_labels": "ignore"}, ["data.missing_labels", "ignore"]),
    ("lora-bias", {"lora": {"bias": "some"}}, ["lora.bias", "some"]),
    ("augmentation", {"data.augment": {"hflipp": True}}, ["data.augment.hflipp", "'hflip'"]),
    ("spectral-index", {"data.indices": ["NDVII"]}, ["NDVII"]),
    ("resume", {"train.resume": "yes please"}, ["train.resume", "yes please"]),
]
for _where, _change, _names in ENUM_TYPOS:
    case(f"enum-typo-{_where}", *_names)(lambda ctx, ch=_change: ["check", ctx.recipe(ch)])


# =============================================================================================
# Impossible combinations and model options (rsfm check, no data read)
# =============================================================================================
COMBOS = [
    ("classification-head-on-segmentation", {"model.head": "classification"},
     ["model.head", "'classification'", "segmentation"]),
    ("detection-head-on-segmentation", {"model.head": "faster_rcnn"}, ["model.head", "detection"]),
    ("detection-with-two-frames", {"model.task": "detection", "model.head": "faster_rcnn",
                                   "model.num_frames": 2}, ["num_frames"]),
    ("class-count-mismatch", {"data.classes": ["dry", "water", "cloud"]},
     ["data.classes", "num_classes"]),
    ("model-and-data-classes-disagree", {"model.classes": ["land", "water"]},
     ["model.classes", "data.classes"]),
    ("class-weights-length", {"train.loss.class_weights": [1.0, 2.0, 3.0]},
     ["train.loss.class_weights", "2"]),
    ("ignore-index-is-a-class", {"data.ignore_index": 1}, ["ignore_index", "1", "'water'"]),
    ("stats-without-mean", {"data.normalization": {"mode": "stats"}},
     ["data.normalization", "mean"]),
    ("mean-without-std", {"data.normalization": {"mode": "stats", "mean": [0.0, 0.0]}},
     ["data.normalization", "std"]),
    ("mean-std-length-vs-bands", {"data.normalization.mean": [1.0, 2.0, 3.0],
                                  "data.normalization.std": [1.0, 1.0, 1.0]},
     ["data.normalization", "3", "['VV', 'VH']"]),
    ("zero-std", {"data.normalization.std": [4.0, 0.0]}, ["data.normalization.std", "0.0"]),
    ("card-stats-for-unknown-band", {"model.backbone": "prithvi_eo_v2_300m",
                                     "data.normalization": {"mode": "card"}},
     ["data.normalization", "VV", "rsfm stats"]),
    ("model-bands-vs-data-bands", {"data.bands": ["VH", "VV"]}, ["model.bands", "data.bands"]),
    ("band-listed-twice", {"model.bands": ["VV", "VV"]}, ["model.bands", "VV", "twice"]),
    ("bands-not-a-list", {"model.bands": "VV"}, ["model.bands", "VV"]),
    ("unknown-band", {"model.bands": ["VV", "FOO"]}, ["model.bands", "FOO", "name: FOO"]),
    ("dofa-band-without-wavelength", {"model.bands": ["VV", {"name": "DEM"}]},
     ["DEM", "wavelength"]),
    ("dofa-index-without-wavelength", {"data.indices": ["NDWI"], "model.bands": ["B03", "B08"],
                                       "data.normalization": {"mode": "none"}},
     ["NDWI", "data.indices"]),
    ("wavelengths-length", {"model.wavelengths": [5.5]}, ["model.wavelengths", "1"]),
    ("window-size-on-resnet", RESNET | {"model.window_size": 8}, ["model.window_size", "ResNet"]),
    ("global-blocks-on-resnet", RESNET | {"model.global_blocks": [1]}, ["model.global_blocks"]),
    ("output-stride-8-on-resnet18", RESNET | {"model.output_stride": 8},
     ["model.output_stride", "8", "resnet18"]),
    ("output-stride-12", RESNET | {"model.output_stride": 12}, ["model.output_stride", "12"]),
    ("output-stride-on-vit", {"model.output_stride": 16}, ["model.output_stride", "dofa_base"]),
    ("num-frames-on-resnet", RESNET | {"model.num_frames": 2}, ["model.num_frames", "resnet18"]),
    ("out-indices-out-of-range", {"model.out_indices": [5]}, ["model.out_indices", "5"]),
    ("backbone-kwargs-unknown", {"model.backbone_kwargs": {"dept": 2}},
     ["model.backbone_kwargs", "dept", "depth"]),
    ("pretrained-with-changed-depth", {"model.pretrained": True},
     ["model.backbone_kwargs", "pretrained"]),
    ("pretrained-and-weights", {"model.pretrained": True, "model.weights": "w.pt"},
     ["model.weights", "pretrained"]),
    ("neck-stages-on-vit", {"model.neck.kind": "stages"}, ["neck.kind", "'stages'"]),
    ("neck-pyramid-on-resnet", RESNET | {"model.neck": {"kind": "simple_feature_pyramid"}},
     ["neck.kind", "simple_feature_pyramid"]),
    ("vit-tile-not-patch-multiple", {"data.tile_size": 60},
     ["data.tile_size", "60", "patch size 16", "64"]),
    ("tile-too-small", {"data.tile_size": 4}, ["data.tile_size", "4"]),
    ("classification-on-scenes", {"model.task": "classification", "model.head": "classification"},
     ["data.kind", "class_folders"]),
    ("metric-of-another-task", {"eval.metric": "map"}, ["eval.metric", "'map'", "segmentation"]),
    ("unfreeze-after-last-epoch", {"train.freeze": {"unfreeze": [{"epoch": 5}]}},
     ["train.freeze.unfreeze", "5"]),
    ("negative-batch-size", {"data.batch_size": 0}, ["data.batch_size", "0"]),
    ("val-fraction-one", {"data.val_fraction": 1.0}, ["data.val_fraction", "1.0"]),
    ("lora-rank-zero", {"lora": {"r": 0}}, ["lora.r", "0"]),
    ("num-classes-zero", {"model.num_classes": 0, "data.classes": DELETE},
     ["model.num_classes", "0"]),
    ("class-colour-not-hex", {"data.classes": ["dry", {"name": "water", "color": "blue"}]},
     ["data.classes[1].color", "blue"]),
    ("classes-listed-twice", {"data.classes": ["water", "water"]},
     ["data.classes", "'water'", "twice"]),
    ("loss-metric-with-mode-max", {"eval.metric": "loss", "eval.mode": "max"},
     ["eval.mode", "'max'", "loss"]),
    ("val-and-val-fraction", {"data.val": {"images": str(S1 / "S1Hand"),
                                           "labels": str(S1 / "LabelHand")}},
     ["data.val_fraction", "data.val"]),
    ("val-block-size-without-fraction", {"data.val_fraction": 0.0, "data.val_block_size": 500},
     ["data.val_block_size", "val_fraction"]),
    ("label-map-to-no-class", {"data.label_map": {255: 2}}, ["data.label_map", "255", "0..1"]),
    ("color-map-to-no-class", {"data.color_map": {"#0000FF": 5}}, ["data.color_map", "5"]),
    ("color-map-bad-colour", {"data.color_map": {"red": 1}}, ["red", "#RRGGBB"]),
]
for _where, _change, _names in COMBOS:
    case(f"combo-{_where}", *_names)(lambda ctx, ch=_change: ["check", ctx.recipe(ch)])


# =============================================================================================
# Budgets and numbers
# =============================================================================================
NUMBERS = [
    ("zero-epochs", {"train.epochs": 0}, ["train.epochs", "0"]),
    ("negative-epochs", {"train.epochs": -3}, ["train.epochs", "-3"]),
    ("epochs-float", {"train.epochs": 2.5}, ["train.epochs", "2.5"]),
    ("zero-max-steps", {"train.max_steps": 0}, ["train.max_steps", "0"]),
    ("max-time-words", {"train.max_time": "ten minutes"}, ["train.max_time", "ten minutes"]),
    ("max-time-negative", {"train.max_time": -5}, ["train.max_time", "-5"]),
    ("max-time-zero-string", {"train.max_time": "0m"}, ["train.max_time", "0m"]),
    ("max-time-unit-typo", {"train.max_time": "10 mins"}, ["train.max_time", "10 mins"]),
    ("lr-negative", {"train.optimizer.lr": -0.1}, ["train.optimizer.lr", "-0.1"]),
    ("lr-string", {"train.optimizer.lr": "fast"}, ["train.optimizer.lr", "fast"]),
    ("lr-nan", {"train.optimizer.lr": float("nan")}, ["train.optimizer.lr", "nan"]),
    ("lr-inf", {"train.optimizer.lr": float("inf")}, ["train.optimizer.lr", "inf"]),
    ("grad-accum-zero", {"train.grad_accum_steps": 0}, ["train.grad_accum_steps", "0"]),
    ("clip-grad-negative", {"train.clip_grad_norm": -1.0}, ["train.clip_grad_norm", "-1.0"]),
    ("warmup-negative", {"train.scheduler.warmup_epochs": -1}, ["train.scheduler.warmup_epochs"]),
    ("keep-checkpoints-zero", {"output.keep_checkpoints": 0}, ["output.keep_checkpoints", "0"]),
    ("label-smoothing-one", {"train.loss.label_smoothing": 1.0}, ["train.loss.label_smoothing"]),
    ("early-stopping-patience-zero", {"train.early_stopping": {"patience": 0}},
     ["train.early_stopping.patience", "0"]),
]
for _where, _change, _names in NUMBERS:
    case(f"number-{_where}", *_names)(lambda ctx, ch=_change: ["check", ctx.recipe(ch)])


# =============================================================================================
# Backbones, weights and the Hub
# =============================================================================================
@case("unknown-backbone-close-matches", "model.backbone", "dofa_bse", "dofa_base")
def _(ctx):
    return ["check", ctx.recipe({"model.backbone": "dofa_bse"})]


@case("missing-weights-file", "model.weights", "{tmp}/nope.pt")
def _(ctx):
    return ["check", ctx.recipe({"model.weights": str(ctx.tmp / "nope.pt"),
                                 "model.backbone_kwargs": {}})]


@case("bad-hf-url", "hf://onlyorg")
def _(ctx):
    return ["check", ctx.recipe({"model.weights": "hf://onlyorg", "model.backbone_kwargs": {}})]


@case("weights-file-not-a-checkpoint", "{tmp}/weights.pt", new_files=False)
def _(ctx):
    (ctx.tmp / "weights.pt").write_text("not a checkpoint")
    return ["train", ctx.recipe({"model.weights": str(ctx.tmp / "weights.pt"),
                                 "model.backbone_kwargs": {}})]


@case("offline-hub-repo-not-in-cache", "earthflow/DOFA", "HF_HUB_OFFLINE")
def _(ctx):  # HF_HUB_OFFLINE=1 (conftest) and an empty cache: the card's repo cannot be fetched
    return ["train", ctx.recipe({"model.pretrained": True, "model.backbone_kwargs": {}})]


@case("backbones-pattern-matches-nothing", "resnt*", "resnet")
def _(ctx):
    return ["backbones", "resnt*"]


# =============================================================================================
# Data: folders, pairing, rasters, dtypes, grids (rsfm check --data)
# =============================================================================================
@case("images-folder-typo", "{tmp}/imgs")
def _(ctx):
    _, lab = ctx.s1_pair()
    return ["check", ctx.chip_recipe(ctx.tmp / "imgs", lab), "--data"]


@case("labels-folder-typo", "{tmp}/lables")
def _(ctx):
    im, _ = ctx.s1_pair()
    return ["check", ctx.chip_recipe(im, ctx.tmp / "lables"), "--data"]


@case("scenes-labels-folder-typo", "{tmp}/LabelHnd")
def _(ctx):
    return ["check", ctx.recipe({"data.train.labels": str(ctx.tmp / "LabelHnd")}), "--data"]


@case("scenes-images-folder-typo", "{tmp}/S1Hnd", "not found")
def _(ctx):
    return ["check", ctx.recipe({"data.train.images": str(ctx.tmp / "S1Hnd")}), "--data"]


@case("scenes-label-suffix-wrong", "LabelHand", "label_suffix")
def _(ctx):
    return ["check", ctx.recipe({"data.label_suffix": "_Label"}), "--data"]


@case("images-given-as-a-wildcard", "{tmp}/images/*.tif", "Wildcards")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["check", ctx.chip_recipe(Path(f"{im}/*.tif"), lab), "--data"]


@case("empty-images-folder", "{tmp}/images")
def _(ctx):
    (ctx.tmp / "images").mkdir()
    (ctx.tmp / "labels").mkdir()
    return ["check", ctx.chip_recipe(ctx.tmp / "images", ctx.tmp / "labels"), "--data"]


@case("empty-labels-folder", "{tmp}/labels", "Ghana_53713")
def _(ctx):
    im, lab = ctx.s1_pair()
    shutil.rmtree(lab)
    lab.mkdir()
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("unpaired-image", "{tmp}/images/Extra.tif", "{tmp}/labels")
def _(ctx):
    im, lab = ctx.s1_pair()
    shutil.copy(SCENE, im / "Extra.tif")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("val-folder-missing", "{tmp}/val_images")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["check", ctx.chip_recipe(im, lab, {"data.val": {"images": str(ctx.tmp / "val_images"),
                                                            "labels": str(lab)}}), "--data"]


@case("manifest-missing", "{tmp}/chips.csv")
def _(ctx):
    return ["check", ctx.recipe({"data.kind": "chips", "data.train": {
        "manifest": str(ctx.tmp / "chips.csv")}}), "--data"]


@case("truncated-geotiff", "{tmp}/images/Ghana_53713.tif")
def _(ctx):
    im, lab = ctx.s1_pair()
    truncate(im / "Ghana_53713.tif", 0.3)
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("text-file-named-tif", "{tmp}/images/Ghana_53713.tif")
def _(ctx):
    im, lab = ctx.s1_pair()
    (im / "Ghana_53713.tif").write_text("this is not a GeoTIFF\n")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("zero-byte-label", "{tmp}/labels/Ghana_53713.tif")
def _(ctx):
    im, lab = ctx.s1_pair()
    (lab / "Ghana_53713.tif").write_bytes(b"")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("complex-dtype-image", "{tmp}/images/Ghana_53713.tif", "complex")
def _(ctx):
    im, lab = ctx.s1_pair()
    with rasterio.open(im / "Ghana_53713.tif") as src:
        data, profile = src.read(), src.profile
    profile.update(dtype="complex64", nodata=None)
    with rasterio.open(im / "Ghana_53713.tif", "w", **profile) as dst:
        dst.write(data.astype(np.complex64))
        dst.descriptions = ("VV", "VH")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("float-label-values", "{tmp}/labels/Ghana_53713.tif", "0.5", "nearest neighbour")
def _(ctx):
    im, lab = ctx.s1_pair()
    with rasterio.open(lab / "Ghana_53713.tif") as src:
        profile = src.profile
        shape = (src.height, src.width)
    profile.update(dtype="float32", nodata=None)
    with rasterio.open(lab / "Ghana_53713.tif", "w", **profile) as dst:
        dst.write(np.full((1, *shape), 0.5, np.float32))
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("bool-like-label-255", "{tmp}/labels", "water", "label_map: {255: 1}")
def _(ctx):  # a 0/255 "boolean" mask for classes 0/1
    im, lab = ctx.s1_pair()
    for f in lab.iterdir():
        with rasterio.open(f) as src:
            profile, data = src.profile, src.read()
        profile.update(dtype="uint8", nodata=None)
        with rasterio.open(f, "w", **profile) as dst:
            dst.write(np.where(data > 0, 255, 0).astype(np.uint8))
    return ["check", ctx.chip_recipe(im, lab, {"data.label_ignore_values": []}), "--data"]


@case("label-values-outside-classes", "{tmp}/labels", "7", "label_map")
def _(ctx):
    im, lab = ctx.s1_pair()
    for f in lab.iterdir():
        with rasterio.open(f) as src:
            profile, data = src.profile, src.read()
        with rasterio.open(f, "w", **profile) as dst:
            dst.write(np.where(data >= 0, 7, data).astype(data.dtype))
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("all-nan-chip", "Paraguay_34417", "nodata")
def _(ctx):
    im = ctx.chips([ALL_NAN])
    lab = ctx.chips([S1 / "LabelHand" / "Paraguay_34417_LabelHand.tif"], "labels")
    return ["check", ctx.chip_recipe(im, lab, {"data.image_suffix": "_S1Hand",
                                               "data.label_suffix": "_LabelHand"}), "--data"]


@case("inf-pixels-are-nodata", "done: best train_loss", code=0)
def _(ctx):  # inf pixels are read as nodata (ignored in the target, 0 in the input), not NaN loss
    im, lab = ctx.s1_pair()
    with rasterio.open(im / "Ghana_53713.tif") as src:
        profile, data = src.profile, src.read()
    data[:, :40, :40] = np.inf
    data[:, 50:60, :] = -np.inf
    with rasterio.open(im / "Ghana_53713.tif", "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("VV", "VH")
    return (["train", ctx.chip_recipe(im, lab, {"data.tile_size": 64})], ["loss"])


@case("band-missing-in-files", "HH", "{tmp}/images", "['VV', 'VH']")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["check", ctx.chip_recipe(im, lab, {"model.bands": ["VV", "VH", "HH"],
                                               "data.normalization": {"mode": "none"}}), "--data"]


@case("file-bands-count-mismatch", "file_bands", "{tmp}/images")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["check", ctx.chip_recipe(im, lab, {"data.file_bands": ["VV", "VH", "HH"]}), "--data"]


@case("crs-mismatch-label", "{tmp}/labels/Ghana_53713.tif", "CRS", "data.align_labels: true")
def _(ctx):
    im, lab = ctx.s1_pair()
    with rasterio.open(lab / "Ghana_53713.tif") as src:
        profile, data = src.profile, src.read()
    profile.update(crs="EPSG:3857")
    with rasterio.open(lab / "Ghana_53713.tif", "w", **profile) as dst:
        dst.write(data)
    return ["check", ctx.chip_recipe(im, lab), "--data"]


def shifted_label_pair(ctx) -> tuple[Path, Path]:
    """The S1 chip pair with Ghana's label moved 5 pixels east (same size, another grid)."""
    im, lab = ctx.s1_pair()
    with rasterio.open(lab / "Ghana_53713.tif") as src:
        profile, data = src.profile, src.read()
    t = profile["transform"]
    profile.update(transform=rasterio.Affine(t.a, t.b, t.c + 5 * t.a, t.d, t.e, t.f))
    with rasterio.open(lab / "Ghana_53713.tif", "w", **profile) as dst:
        dst.write(data)
    return im, lab


@case("grid-mismatch-label", "{tmp}/labels/Ghana_53713.tif", "align_labels")
def _(ctx):
    im, lab = shifted_label_pair(ctx)
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("grid-mismatch-advice-followed", "train", code=0)
def _(ctx):  # the advice of the case above can be followed: data.align_labels: true
    im, lab = shifted_label_pair(ctx)
    return ["check", ctx.chip_recipe(im, lab, {"data.align_labels": True}), "--data"]


@case("label-size-mismatch", "{tmp}/labels/Ghana_53713.tif", "size")
def _(ctx):
    im, lab = ctx.s1_pair()
    write_tif(lab / "Ghana_53713.tif", np.zeros((1, 100, 128), np.int16))
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("ungeoreferenced-label-with-align", "{tmp}/labels/Ghana_53713.tif", "no CRS",
      "georeference the label")
def _(ctx):
    im, lab = ctx.s1_pair()
    write_tif(lab / "Ghana_53713.tif", np.zeros((1, 100, 128), np.int16), crs=None)
    return ["check", ctx.chip_recipe(im, lab, {"data.align_labels": True}), "--data"]


@case("colour-mask-read-as-values", "color_map", "{tmp}/labels")
def _(ctx):
    im = ctx.chips(sorted((DATA / "dubai" / "images").glob("*.jpg")))
    lab = ctx.chips(sorted((DATA / "dubai" / "masks").glob("*.png")), "labels")
    for f in lab.iterdir():
        f.rename(f.with_name(f.name.replace("image_part", "image_part")))
    return ["check", ctx.recipe(
        {"model.backbone": "resnet18", "model.head": "unet", "model.backbone_kwargs": {},
         "model.neck": DELETE, "model.bands": ["RED", "GREEN", "BLUE"], "model.num_classes": 6,
         "data.kind": "chips", "data.train": {"images": str(im), "labels": str(lab)},
         "data.classes": ["a", "b", "c", "d", "e", "f"], "data.image_suffix": DELETE,
         "data.label_suffix": DELETE, "data.val_fraction": 0.0, "data.tile_size": DELETE,
         "data.normalization": {"mode": "minmax"}}), "--data"]


@case("arcgis-broken-emd", "{tmp}/export/esri_model_definition.emd")
def _(ctx):
    export = ctx.tmp / "export"
    shutil.copytree(ARCGIS / "classified_tiles", export)
    (export / "esri_model_definition.emd").write_text('{"ModelConfiguration": "x", ')
    return ["check", ctx.recipe({"data.kind": "arcgis", "data.train": {"images": str(export)},
                                 "data.classes": DELETE, "data.normalization": DELETE,
                                 "data.image_suffix": DELETE, "data.label_suffix": DELETE,
                                 "model.bands": DELETE})]


@case("arcgis-emd-without-classes", "{tmp}/export", "model.num_classes")
def _(ctx):
    export = ctx.tmp / "export"
    shutil.copytree(ARCGIS / "classified_tiles", export)
    emd = json.loads((export / "esri_model_definition.emd").read_text())
    emd.pop("Classes", None)
    (export / "esri_model_definition.emd").write_text(json.dumps(emd))
    return ["check", ctx.recipe({"data.kind": "arcgis", "data.train": {"images": str(export)},
                                 "data.classes": DELETE, "data.normalization": DELETE,
                                 "data.image_suffix": DELETE, "data.label_suffix": DELETE,
                                 "model.bands": DELETE}), "--data"]


@case("mixed-chip-sizes-at-train", "different sizes", "data.batch_size", new_files=True)
def _(ctx):  # warned at construction, a clear error at the first batch (was a stack traceback)
    im, lab = ctx.s1_pair()
    for folder in (im, lab):
        with rasterio.open(folder / "Ghana_53713.tif") as src:
            window = rasterio.windows.Window(0, 0, 96, 96)
            profile, data = src.profile, src.read(window=window)
            profile.update(width=96, height=96, transform=src.window_transform(window))
            names = src.descriptions
        with rasterio.open(folder / "Ghana_53713.tif", "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = names
    return ["train", ctx.chip_recipe(im, lab, {"data.batch_size": 2})]


def spacenet_with_vectors(ctx, labels: Path) -> Path:
    """A ResNet recipe on the SpaceNet-4 panchromatic tile with ``labels`` as vector labels."""
    return ctx.recipe(RESNET, {
        "model.bands": [{"name": "PAN"}], "data.file_bands": ["PAN"], "data.kind": "scenes",
        "data.train": {"images": str(DATA / "spacenet4" / "sample_geotiff.tif"),
                       "labels": str(labels)},
        "data.classes": ["background", "building"], "data.normalization": {"mode": "per_tile"},
        "data.image_suffix": DELETE, "data.label_suffix": DELETE})


def polygons(path: Path, lon: float, lat: float) -> Path:
    ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat + 0.001],
            [lon, lat]]
    feature = {"type": "Feature", "properties": {},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


@case("vector-labels-outside-the-scene", "{tmp}/buildings.geojson", "overlaps", "EPSG:4326")
def _(ctx):  # polygons of the neighbouring town (the scene is a 500 m tile of Atlanta)
    polygons(ctx.tmp / "buildings.geojson", -84.60, 33.70)
    return ["check", spacenet_with_vectors(ctx, ctx.tmp / "buildings.geojson"), "--data"]


@case("vector-labels-in-another-crs", "{tmp}/buildings.geojson", "reprojected", "EPSG:4326")
def _(ctx):  # (lon, lat) = (0, 0) cannot even be projected to the scene's UTM zone 16N
    polygons(ctx.tmp / "buildings.geojson", 0.0, 0.0)
    return ["check", spacenet_with_vectors(ctx, ctx.tmp / "buildings.geojson"), "--data"]


@case("vector-labels-empty", "{tmp}/buildings.geojson", "no features")
def _(ctx):
    (ctx.tmp / "buildings.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    return ["check", spacenet_with_vectors(ctx, ctx.tmp / "buildings.geojson"), "--data"]


@case("augmentation-value-not-a-probability", "data.augment.hflip", "maybe")
def _(ctx):
    return ["check", ctx.recipe({"data.augment": {"hflip": "maybe"}}), "--data"]


@case("augmentation-probability-above-one", "data.augment.vflip", "5")
def _(ctx):
    return ["check", ctx.recipe({"data.augment": {"vflip": 5}}), "--data"]


@case("multi-frame-model-on-single-images", "model.num_frames", "3", "time step")
def _(ctx):  # was a ValueError traceback at the first training step
    return ["check", ctx.recipe({"model.backbone": "prithvi_eo_v2_300m", "model.num_frames": 3}),
            "--data"]


@case("tracker-name-typo", "output.trackers", "tensorbard")
def _(ctx):
    return ["train", ctx.recipe({"output.trackers": ["tensorbard"]})]


# =============================================================================================
# Detection annotations
# =============================================================================================
@case("detection-scenes-with-voc-labels", "{tmp}/ann", "kind: chips")
def _(ctx):
    im, ann = ctx.tree_chips()
    recipe = changed(det_recipe(ctx.tmp / "run", im, ann), {"data.kind": "scenes"})
    return ["check", ctx.write_yaml(recipe), "--data"]


@case("detection-every-box-outside", "{tmp}/ann", "outside")
def _(ctx):
    im, ann = ctx.tree_chips([(500, 500, 540, 540), (-80, -80, -10, -10), (410, 0, 450, 30)])
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann)), "--data"]


@case("detection-every-box-outside-at-train", "{tmp}/ann", "outside", new_files=True)
def _(ctx):
    im, ann = ctx.tree_chips([(500, 500, 540, 540), (-80, -80, -10, -10)])
    return ["train", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann))]


@case("detection-clipped-and-zero-size-boxes-reported", "6 read, 3 used", "2 clipped",
      "1 outside", "2 zero-size", "{tmp}/ann", code=0)
def _(ctx):
    im, ann = ctx.tree_chips([(10, 10, 50, 50), (380, 380, 420, 420), (-5, 100, 20, 130),
                              (60, 60, 60, 90), (100, 100, 120, 100), (500, 10, 520, 30)])
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann)), "--data"]


@case("detection-unknown-class-name", "{tmp}/ann/OSBS_029.xml", "Palm")
def _(ctx):
    im = ctx.chips([TREES / "images" / "OSBS_029.tif"], "trees")
    voc(ctx.tmp / "ann" / "OSBS_029.xml", [(10, 10, 50, 50)], name="Palm")
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ctx.tmp / "ann")), "--data"]


@case("detection-broken-xml", "{tmp}/ann/OSBS_029.xml")
def _(ctx):
    im, ann = ctx.tree_chips()
    (ann / "OSBS_029.xml").write_text("<annotation><object><name>Tree</name>")
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann)), "--data"]


@case("detection-raster-labels", "{tmp}/labels", "detection")
def _(ctx):
    im, lab = ctx.s1_pair()
    recipe = changed(det_recipe(ctx.tmp / "run", im, lab), {
        "model.bands": ["VV", "VH"], "data.file_bands": DELETE, "data.label_format": DELETE})
    return ["check", ctx.write_yaml(recipe), "--data"]


# =============================================================================================
# Training runs: output folders, resume, checkpoints, non-finite losses
# =============================================================================================
@case("output-parent-is-a-file", "output.dir", "{tmp}/blocker")
def _(ctx):
    (ctx.tmp / "blocker").write_text("a file, not a folder")
    return ["train", ctx.recipe({"output.dir": str(ctx.tmp / "blocker" / "run")})]


@case("output-parent-is-a-file-at-check", "output.dir", "{tmp}/blocker")
def _(ctx):
    (ctx.tmp / "blocker").write_text("a file, not a folder")
    return ["check", ctx.recipe({"output.dir": str(ctx.tmp / "blocker" / "run")})]


@case("output-dir-is-a-file", "output.dir", "{tmp}/run")
def _(ctx):
    (ctx.tmp / "run").write_text("a file where the run folder should be")
    return ["train", ctx.recipe()]


@case("output-dir-read-only", "{tmp}/locked",
      marks=pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions"))
def _(ctx):
    locked = ctx.tmp / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    ctx.request.addfinalizer(lambda: locked.chmod(0o755))
    return ["train", ctx.recipe({"output.dir": str(locked / "run")})]


@case("output-dir-on-read-only-file-system", "/proc/rsfm-run")
def _(ctx):  # works as root too: /proc refuses new folders
    return ["check", ctx.recipe({"output.dir": "/proc/rsfm-run"})]


@case("run-exists-without-overwrite", "{tmp}/run", "overwrite")
def _(ctx):
    run = ctx.run_copy()
    recipe = ctx.run_recipe(run)
    return ["train", recipe]


@case("overwrite-then-data-error", "{tmp}/LabelHnd")
def _(ctx):  # output.overwrite with a typo in the labels folder: the trained run must survive
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run, {"output.overwrite": True,
                                          "data.train.labels": str(ctx.tmp / "LabelHnd")})]


@case("lora-targets-matching-nothing", "lora.target_modules", "attn.qkv")
def _(ctx):
    return ["train", ctx.recipe(RESNET, {"lora": {"r": 4, "target_modules": ["attn.qkv"]}})]


@case("resume-different-head", "model.head", '"fcn"', '"unet"', "{tmp}/run")
def _(ctx):
    run = ctx.run_copy()
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "model.head=unet"]


@case("resume-different-num-classes", "model.num_classes", "input.classes", "{tmp}/run")
def _(ctx):
    run = ctx.run_copy()
    recipe = ctx.run_recipe(run, {"model.num_classes": 3,
                                  "data.classes": ["dry", "water", "cloud"]})
    return ["train", recipe, "--resume"]


@case("resume-different-bands", "input.bands", "{tmp}/run")
def _(ctx):
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run), "--resume", "model.bands=[VH, VV]"]


@case("resume-without-checkpoint", "--resume", "{tmp}/run")
def _(ctx):
    return ["train", ctx.recipe(), "--resume"]


@case("resume-truncated-model-safetensors", "epoch-0002", "epoch-0001", "model.safetensors",
      code=0, may_change=RESUMED)
def _(ctx):
    run = ctx.run_copy()
    truncate(run / "checkpoints" / "epoch-0002" / "model.safetensors")
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "train.epochs=3"]


@case("resume-truncated-optimizer-bin", "epoch-0002", "epoch-0001", "optimizer.bin", code=0, may_change=RESUMED)
def _(ctx):
    run = ctx.run_copy()
    truncate(run / "checkpoints" / "epoch-0002" / "optimizer.bin", 0.9)
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "train.epochs=3"]


@case("resume-every-checkpoint-damaged", "no intact checkpoint", "epoch-0002", "epoch-0001")
def _(ctx):
    run = ctx.run_copy()
    for ckpt in (run / "checkpoints").glob("epoch-*"):
        truncate(ckpt / "model.safetensors", 0.1)
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "train.epochs=3"]


@case("resume-damaged-trainer-state", "trainer_state.json", code=0, may_change=RESUMED)
def _(ctx):
    run = ctx.run_copy()
    (run / "checkpoints" / "epoch-0002" / "trainer_state.json").write_text('{"epoch": 1, ')
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "train.epochs=3"]


@case("resume-leftover-tmp-files", "resumed from", code=0,
      may_change=(*RESUMED, "run/.last_model.safetensors.link"))  # (its own temporary name)
def _(ctx):  # a process killed while writing left half-written files: resume ignores them
    run = ctx.run_copy()
    (run / "checkpoints" / ".tmp-epoch-0003").mkdir()
    (run / "checkpoints" / ".tmp-epoch-0003" / "model.safetensors").write_bytes(b"\x00" * 100)
    (run / ".model.safetensors.k2j3x9.tmp").write_bytes(b"\x00" * 10)  # rsfm.io's names
    (run / ".last_model.safetensors.link").write_bytes(b"\x00" * 10)
    (run / ".metrics.jsonl.a81kq0.tmp").write_text('{"epoch": 9')
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "train.epochs=3"]


@case("resume-latest-pointer-garbage", "resumed from", code=0, may_change=RESUMED)
def _(ctx):
    run = ctx.run_copy()
    (run / "checkpoints" / "latest").write_text("epoch-9999\n")
    recipe = ctx.run_recipe(run)
    return ["train", recipe, "--resume", "train.epochs=3"]


@case("absurd-learning-rate", "step 2", "learning rate", "last good checkpoint",
      "train.optimizer.lr",
      "nodata", new_files=True)
def _(ctx):  # the first update makes the weights huge: the second step's loss is NaN
    return ["train", ctx.recipe({"train.optimizer.lr": 1.0e12, "train.clip_grad_norm": None,
                                 "train.max_steps": DELETE})]


@case("resume-with-changed-lr-says-what-happens", "train.optimizer.lr", code=0, may_change=RESUMED)
def _(ctx):
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run), "--resume", "train.epochs=3",
            "train.optimizer.lr=0.01"]


@case("vit-tile-not-patch-multiple-at-check-data", "data.tile_size", "60", "patch size 16")
def _(ctx):
    return ["check", ctx.recipe({"data.tile_size": 60}), "--data"]


@case("resnet-stem-level-with-a-head-that-ignores-it", "backbone_kwargs.stem", "fcn")
def _(ctx):
    return ["check", ctx.recipe(RESNET, {"model.head": "fcn", "model.backbone_kwargs": {"stem": True}})]


@case("empty-band-list", "model.bands", "empty")
def _(ctx):
    return ["check", ctx.recipe({"model.bands": []})]


@case("label-ignore-values-hide-every-class", "data.label_ignore_values", "[0, 1]")
def _(ctx):
    return ["check", ctx.recipe({"data.label_ignore_values": [0, 1]})]


@case("tile-size-larger-than-every-scene", "data.tile_size", "100000", "512 x 512")
def _(ctx):  # read as one tile it would need ~80 GB: the process was killed by the OOM killer
    return ["check", ctx.recipe({"data.tile_size": 100000}), "--data"]


@case("vit-tile-not-patch-multiple-at-train", "data.tile_size", "60", "patch size 16")
def _(ctx):
    return ["train", ctx.recipe({"data.tile_size": 60})]


@case("resnet18-output-stride-8-at-train", "model.output_stride", "resnet18")
def _(ctx):
    return ["train", ctx.recipe(RESNET, {"model.output_stride": 8, "model.head": "deeplabv3"})]


# =============================================================================================
# Prediction
# =============================================================================================
@case("predict-detection-to-tif-with-vectors", ".geojson", "--vectors", "x.tif")
def _(ctx):
    return ["predict", ctx.detector, TREES / "images" / "OSBS_029.tif", "-o", ctx.tmp / "x.tif",
            "--vectors", ctx.tmp / "y.geojson", "--file-bands", "RED,GREEN,BLUE", "--quiet"]


@case("predict-segmentation-to-geojson", ".tif", "out.geojson")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "out.geojson", "--quiet"]


@case("predict-with-the-recipe-instead-of-the-run", "{tmp}/recipe.yaml", "run folder")
def _(ctx):
    return ["predict", ctx.recipe(), SCENE, "-o", ctx.tmp / "o.tif"]


@case("check-given-a-run-folder", "{tmp}/run", "recipe.yaml")
def _(ctx):
    return ["check", ctx.run_copy()]


@case("predict-model-folder-missing", "{tmp}/runs/nope")
def _(ctx):
    return ["predict", ctx.tmp / "runs" / "nope", SCENE, "-o", ctx.tmp / "o.tif"]


@case("predict-run-without-config-json", "{tmp}/run", "config.json")
def _(ctx):
    run = ctx.run_copy()
    (run / "config.json").unlink()
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-run-killed-before-its-first-epoch", "{tmp}/run", "not saved a model yet")
def _(ctx):  # kill -9 during the first epoch leaves the recipe only
    (ctx.tmp / "run").mkdir()
    shutil.copy(ctx.request.getfixturevalue("trained") / "recipe.yaml", ctx.tmp / "run")
    return ["predict", ctx.tmp / "run", SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-truncated-weights", "{tmp}/run/model.safetensors")
def _(ctx):
    run = ctx.run_copy()
    truncate(run / "model.safetensors")
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-corrupt-config-json", "{tmp}/run/config.json")
def _(ctx):
    run = ctx.run_copy()
    (run / "config.json").write_text('{"model": ')
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-run-with-leftover-tmp-files", code=0)
def _(ctx):
    run = ctx.run_copy()
    (run / ".model.safetensors.k2j3x9.tmp").write_bytes(b"\x00" * 10)
    (run / ".config.json.0qk2pz.tmp").write_text('{"model": ')
    (run / "checkpoints" / ".tmp-epoch-0003").mkdir()
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-input-missing", "{tmp}/scene.tif")
def _(ctx):
    return ["predict", ctx.trained, ctx.tmp / "scene.tif", "-o", ctx.tmp / "o.tif"]


@case("predict-input-not-a-raster", "{tmp}/scene.tif")
def _(ctx):
    (ctx.tmp / "scene.tif").write_text("hello")
    return ["predict", ctx.trained, ctx.tmp / "scene.tif", "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-empty-input-folder", "{tmp}/scenes")
def _(ctx):
    (ctx.tmp / "scenes").mkdir()
    return ["predict", ctx.trained, ctx.tmp / "scenes", "-o", ctx.tmp / "out", "--quiet"]


@case("predict-2-band-model-on-3-band-scene", "{tmp}/rgb.tif", "3 bands", "['VV', 'VH']")
def _(ctx):
    write_tif(ctx.tmp / "rgb.tif", np.ones((3, 96, 96), np.float32))
    return ["predict", ctx.trained, ctx.tmp / "rgb.tif", "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-missing-named-band", "VV", str(S2_CHIP), "B8A")
def _(ctx):
    return ["predict", ctx.trained, S2_CHIP, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-file-bands-count-wrong", "file_bands", "'X'", str(SCENE))
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--file-bands", "VV,VH,X",
            "--quiet"]


@case("predict-uint8-rgb-forced-as-db-sar", str(LANDSAT), "does not look like", "VV", code=0)
def _(ctx):
    return ["predict", ctx.trained, LANDSAT, "-o", ctx.tmp / "o.tif", "--file-bands",
            "VV,VH,BLUE", "--quiet"]


@case("predict-output-overwrites-input", "{tmp}/scene.tif", "input")
def _(ctx):
    shutil.copy(SCENE, ctx.tmp / "scene.tif")
    return ["predict", ctx.trained, ctx.tmp / "scene.tif", "-o", ctx.tmp / "scene.tif"]


@case("predict-output-parent-is-a-file", "{tmp}/blocker")
def _(ctx):
    (ctx.tmp / "blocker").write_text("x")
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "blocker" / "o.tif"]


@case("predict-output-is-a-folder", "{tmp}/out.tif", "folder")
def _(ctx):
    (ctx.tmp / "out.tif").mkdir()
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "out.tif"]


@case("predict-tile-not-patch-multiple", "--tile-size", "60", "16")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--tile-size", "60"]


@case("predict-overlap-not-smaller-than-tile", "overlap", "64")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--tile-size", "64",
            "--overlap", "64"]


@case("predict-threshold-out-of-range", "threshold", "2.0")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--threshold", "2"]


@case("predict-bad-preview-suffix", "{tmp}/p.txt")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--preview", ctx.tmp / "p.txt"]


@case("predict-bad-vector-suffix", "{tmp}/v.csv")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--vectors", ctx.tmp / "v.csv"]


@case("predict-all-nan-scene", str(ALL_NAN), "no valid pixel", code=0)
def _(ctx):
    return ["predict", ctx.trained, ALL_NAN, "-o", ctx.tmp / "o.tif", "--tile-size", "128",
            "--quiet"]


@case("predict-device-not-a-device", "--device", "gpu0")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--device", "gpu0"]


@case("predict-device-cuda-without-gpu", "--device", "cuda", "cpu", marks=pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU"))
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--device", "cuda"]


@case("predict-hub-repo-offline", "nobody/no-such-model")
def _(ctx):
    return ["predict", "nobody/no-such-model", SCENE, "-o", ctx.tmp / "o.tif"]


@case("predict-second-scene-lacks-the-bands", str(LANDSAT), "'VV'", "--file-bands")
def _(ctx):  # every scene is checked before the first one runs
    return ["predict", ctx.trained, SCENE, LANDSAT, "-o", ctx.tmp / "predictions"]


# =============================================================================================
# evaluate, convert, export, stats
# =============================================================================================
@case("evaluate-undefined-split", "data.test", "--split")
def _(ctx):
    return ["evaluate", ctx.run_copy(), "--split", "test"]


@case("evaluate-images-without-labels", "--labels")
def _(ctx):
    im, _lab = ctx.s1_pair()
    return ["evaluate", ctx.trained, "--images", im]


@case("evaluate-split-and-folders", "--split", "--images")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["evaluate", ctx.trained, "--split", "val", "--images", im, "--labels", lab]


@case("evaluate-device-cuda-without-gpu", "--device", "cuda", marks=pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="a CUDA GPU is here"))
def _(ctx):
    return ["evaluate", ctx.run_copy(), "--split", "val", "--device", "cuda", "--quiet"]


@case("convert-terratorch-regression", "regression")
def _(ctx):
    return ["convert", "terratorch", TERRATORCH / "regression_pixelwise.yaml"]


@case("convert-output-exists", "{tmp}/recipe.yaml", "--force")
def _(ctx):
    (ctx.tmp / "recipe.yaml").write_text("mine: true\n")
    return ["convert", "terratorch", TERRATORCH / "sen1floods11_generic_fcn.yaml", "-o",
            ctx.tmp / "recipe.yaml"]


@case("convert-config-missing", "{tmp}/tt.yaml")
def _(ctx):
    return ["convert", "terratorch", ctx.tmp / "tt.yaml"]


@case("convert-config-not-terratorch", "{tmp}/tt.yaml")
def _(ctx):
    (ctx.tmp / "tt.yaml").write_text("hello: world\n")
    return ["convert", "terratorch", ctx.tmp / "tt.yaml"]


@case("predict-tile-larger-than-the-scene", "--tile-size", "100000", "128 x 128")
def _(ctx):  # the blend weights alone were a 37 GiB allocation (MemoryError traceback)
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--tile-size", "100000"]


@case("predict-several-scenes-into-one-file", "{tmp}/o.tif", "folder")
def _(ctx):  # wrote a folder named o.tif (two different scenes: one given twice is one scene)
    return ["predict", ctx.trained, SCENE, S1 / "S1Hand" / "Ghana_53713_S1Hand.tif", "-o",
            ctx.tmp / "o.tif"]


@case("export-size-not-patch-multiple", "size 7", "use 64.")
def _(ctx):  # said "use 64 or 64"
    return ["export", ctx.trained, "-o", ctx.tmp / "m.onnx", "--size", "7"]


@case("export-detection-to-onnx", "detection")
def _(ctx):
    return ["export", ctx.detector, "--format", "onnx", "-o", ctx.tmp / "det.onnx"]


@case("stats-empty-folder", "{tmp}/empty")
def _(ctx):
    (ctx.tmp / "empty").mkdir()
    return ["stats", ctx.tmp / "empty", "-o", ctx.tmp / "stats.yaml"]


@case("stats-unknown-band", "B99", str(S2_CHIP))
def _(ctx):
    return ["stats", S2_CHIP, "--bands", "B99", "-o", ctx.tmp / "stats.yaml"]


@case("stats-band-index-out-of-range", "5", str(SCENE))
def _(ctx):
    return ["stats", SCENE, "--bands", "5", "-o", ctx.tmp / "stats.yaml"]


@case("push-offline", "HF_HUB_OFFLINE")
def _(ctx):
    return ["push", ctx.trained, "--repo-id", "me/model"]


@case("broken-user-adapter-card", "{tmp}/cards/mynet.yaml", "family", "'resnet'")
def _(ctx):
    (ctx.tmp / "cards").mkdir()
    (ctx.tmp / "cards" / "mynet.yaml").write_text("schema: 1\nname: mynet\nfamily: resnett\n")
    ctx.request.getfixturevalue("monkeypatch").setenv("RSFM_ADAPTER_PATH", str(ctx.tmp / "cards"))
    return ["check", ctx.recipe()]


@case("push-folder-without-config", "{tmp}/empty", "config.json")
def _(ctx):
    (ctx.tmp / "empty").mkdir()
    return ["push", ctx.tmp / "empty", "--repo-id", "me/model"]


# =============================================================================================
# Launchers and signals (subprocesses)
# =============================================================================================
@case("python-m-rsfm-train-bad-recipe", "model.head", "deeplabv3pls", subprocess=True)
def _(ctx):
    return ["train", ctx.recipe({"model.head": "deeplabv3pls"})]


def test_python_m_rsfm_train_uses_the_handler(tmp_path):
    """``python -m rsfm.train`` (what ``accelerate launch -m rsfm.train`` runs) reports a bad
    recipe like ``rsfm train``: exit 2, one line, nothing written."""
    recipe = changed(seg_recipe(tmp_path / "run"), {"train.max_time": "soon"})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    proc = subprocess.run([sys.executable, "-m", "rsfm.train", str(path)], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "RSFM_TRACEBACK_DIR": str(tmp_path / "tb")})
    assert proc.returncode == 2, proc.stderr
    assert "train.max_time" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_ctrl_c_during_training_keeps_the_run_resumable(tmp_path):
    """SIGINT while training: exit 130, no traceback, the last checkpoint intact, resumable."""
    recipe = changed(seg_recipe(tmp_path / "run"), {"train.epochs": 40, "train.max_steps": DELETE})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "RSFM_TRACEBACK_DIR": str(tmp_path / "tb")}
    proc = subprocess.Popen([sys.executable, "-m", "rsfm", "train", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    latest = tmp_path / "run" / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert latest.exists(), proc.communicate()[1] if proc.poll() is not None else "no checkpoint"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "tb").exists()
    from rsfm.train.checkpoint import checkpoint_problem, find_resumable

    ckpt, skipped = find_resumable(tmp_path / "run")
    assert ckpt is not None and checkpoint_problem(ckpt) is None and not skipped


def test_catalogue_size():
    assert len(CASES) >= 60
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# =============================================================================================
# Commands never overwrite what they read (the model folder, the inputs) or files they did not write
# =============================================================================================
def _hard_linked_run(ctx) -> Path:
    """A copy of the trained run whose best and last weights are hard links to a checkpoint's
    (as training leaves them): writing through one would destroy all three."""
    run = ctx.run_copy()
    weights = run / "checkpoints" / "epoch-0002" / "model.safetensors"
    for name in ("model.safetensors", "last_model.safetensors"):
        (run / name).unlink()
        os.link(weights, run / name)
    return run


@case("export-pt2-onto-the-run-weights", "{tmp}/run/model.safetensors", "model folder")
def _(ctx):  # exit 0: the run's three hard-linked weight files replaced by a .pt2 archive
    run = _hard_linked_run(ctx)
    return ["export", run, "-o", run / "model.safetensors", "--format", "pt2"]


@case("export-onnx-onto-the-run-config", "{tmp}/run/config.json", "model folder")
def _(ctx):  # config.json was rewritten, then onnxruntime failed on it
    run = ctx.run_copy()
    return ["export", run, "-o", run / "config.json", "--format", "onnx"]


@case("export-torchscript-onto-the-run-recipe", "{tmp}/run/recipe.yaml", "model folder")
def _(ctx):
    run = ctx.run_copy()
    return ["export", run, "-o", run / "recipe.yaml", "--format", "torchscript"]


@case("export-onto-a-checkpoint-file", "{tmp}/run/checkpoints/epoch-0002/model.safetensors",
      "model folder")
def _(ctx):
    run = _hard_linked_run(ctx)
    return ["export", run, "-o", run / "checkpoints" / "epoch-0002" / "model.safetensors",
            "--format", "pt2"]


@case("export-onto-a-scene", "{tmp}/scene.tif", "not a model exported by rsfm")
def _(ctx):  # the scene was silently replaced by an ONNX file
    shutil.copy(SCENE, ctx.tmp / "scene.tif")
    return ["export", ctx.trained, "-o", ctx.tmp / "scene.tif", "--format", "onnx"]


@case("export-to-a-read-only-folder", "/proc", "cannot be written")
def _(ctx):  # a RuntimeError traceback from torch after the export
    return ["export", ctx.trained, "-o", "/proc/m.pt2"]


@case("export-output-parent-is-a-file", "{tmp}/blocker", "not a folder")
def _(ctx):  # "File exists (…/blocker)" after the model was loaded
    (ctx.tmp / "blocker").write_text("x")
    return ["export", ctx.trained, "-o", ctx.tmp / "blocker" / "m.onnx"]


@case("export-output-is-a-folder", "{tmp}/m.onnx", "folder")
def _(ctx):
    (ctx.tmp / "m.onnx").mkdir()
    return ["export", ctx.trained, "-o", ctx.tmp / "m.onnx"]


@case("stats-output-is-the-input", "{tmp}/scene.tif", "input")
def _(ctx):  # the raster was replaced by YAML (exit 0), even without --force
    shutil.copy(SCENE, ctx.tmp / "scene.tif")
    return ["stats", ctx.tmp / "scene.tif", "-o", ctx.tmp / "scene.tif", "--force"]


@case("stats-output-exists", "{tmp}/stats/mine.yaml", "--force")
def _(ctx):
    (ctx.tmp / "stats").mkdir()
    (ctx.tmp / "stats" / "mine.yaml").write_text("# my notes\nmean: [1]\n")
    return ["stats", SCENE, "-o", ctx.tmp / "stats" / "mine.yaml"]


@case("stats-default-output-exists", "stats.yaml", "--force")
def _(ctx):  # the default -o stats.yaml in the working folder
    (ctx.tmp / "stats.yaml").write_text("mean: [1]\n")
    return ["stats", SCENE]


@case("stats-output-exists-with-force", "wrote", code=0, may_change=("stats.yaml",))
def _(ctx):
    (ctx.tmp / "stats.yaml").write_text("mean: [1]\n")
    return ["stats", SCENE, "-o", ctx.tmp / "stats.yaml", "--force"]


@case("schema-output-exists", "{tmp}/schema.json", "--force")
def _(ctx):
    (ctx.tmp / "schema.json").write_text("{}\n")
    return ["schema", "-o", ctx.tmp / "schema.json"]


@case("predict-vectors-onto-the-run-config", "{tmp}/run/config.json", "model folder")
def _(ctx):  # GeoJSON written over config.json (exit 0), plus config.json.summary.json
    run = ctx.run_copy()
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--vectors", run / "config.json",
            "--quiet"]


@case("predict-probabilities-onto-a-run-file", "{tmp}/run/metrics_probs.tif", "model folder")
def _(ctx):  # a companion output (<out>_probs.tif) is checked like the main output
    run = ctx.run_copy()
    shutil.copy(SCENE, run / "metrics_probs.tif")  # a file the user keeps in the run folder
    return ["predict", run, SCENE, "-o", run / "metrics.tif", "--probabilities", "uint8",
            "--quiet"]


@case("predict-vectors-onto-a-json-file", "{tmp}/notes.json", "not GeoJSON")
def _(ctx):
    (ctx.tmp / "notes.json").write_text('{"a": 1}\n')
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--vectors",
            ctx.tmp / "notes.json", "--quiet"]


@case("predict-two-scenes-with-the-same-name", "{tmp}/a/scene.tif", "{tmp}/b/scene.tif",
      "{tmp}/out/scene_pred.tif")
def _(ctx):  # both went to out/scene_pred.tif: the first result lost, its compute wasted
    for folder in ("a", "b"):
        (ctx.tmp / folder).mkdir()
        shutil.copy(SCENE, ctx.tmp / folder / "scene.tif")
    return ["predict", ctx.trained, ctx.tmp / "a" / "scene.tif", ctx.tmp / "b" / "scene.tif",
            "-o", ctx.tmp / "out", "--quiet"]


@case("predict-the-same-scene-twice", "given twice", "predicted once", code=0)
def _(ctx):  # ran twice, writing the same file twice
    shutil.copy(SCENE, ctx.tmp / "scene.tif")
    os.symlink(ctx.tmp / "scene.tif", ctx.tmp / "link.tif")
    return ["predict", ctx.trained, ctx.tmp / "scene.tif", ctx.tmp / "scene.tif",
            ctx.tmp / "link.tif", "-o", ctx.tmp / "out", "--quiet"]


@case("predict-a-folder-again-skips-its-predictions", "skipping", "scene_pred.tif", code=0,
      may_change=("scenes/scene_pred",))
def _(ctx):  # the earlier scene_pred.tif (1 band) was read as a scene: a band error
    (ctx.tmp / "scenes").mkdir()
    shutil.copy(SCENE, ctx.tmp / "scenes" / "scene.tif")
    write_tif(ctx.tmp / "scenes" / "scene_pred.tif", np.zeros((32, 32), np.uint8))
    with rasterio.open(ctx.tmp / "scenes" / "scene_pred.tif", "r+") as ds:
        ds.update_tags(RSFM_TASK="segmentation")
    return ["predict", ctx.trained, ctx.tmp / "scenes", "--quiet"]


@case("evaluate-out-is-the-run-folder", "evaluation/folders", code=0)
def _(ctx):  # the run's training metrics.csv was replaced by metric,value rows
    run = ctx.run_copy()
    im, lab = ctx.s1_pair()
    return ["evaluate", run, "--images", im, "--labels", lab, "-o", run, "--quiet"]


@case("evaluate-out-holds-other-files", "{tmp}/ev", "metrics.csv", "--out")
def _(ctx):
    im, lab = ctx.s1_pair()
    (ctx.tmp / "ev").mkdir()
    (ctx.tmp / "ev" / "metrics.csv").write_text("my,table\n")
    return ["evaluate", ctx.trained, "--images", im, "--labels", lab, "-o", ctx.tmp / "ev",
            "--quiet"]


@case("evaluate-images-is-a-file", "{tmp}/images/Ghana_53713.tif", "is a file")
def _(ctx):  # said "--images folder '…tif' does not exist"
    im, lab = ctx.s1_pair()
    return ["evaluate", ctx.trained, "--images", im / "Ghana_53713.tif", "--labels", lab,
            "--quiet"]


@case("evaluate-labels-without-a-labelled-pixel", "{tmp}/labels", "No labelled pixel")
def _(ctx):  # exit 0 with "miou": null and no message
    im, lab = ctx.s1_pair()
    for path in lab.iterdir():
        with rasterio.open(path, "r+") as ds:
            ds.write(np.full((ds.count, ds.height, ds.width), -1, dtype=ds.dtypes[0]))
    return ["evaluate", ctx.trained, "--images", im, "--labels", lab, "-o", ctx.tmp / "ev",
            "--quiet"]


@case("train-into-the-recipes-own-folder", "{tmp}/recipe.yaml", "output.dir")
def _(ctx):  # the hand-written recipe.yaml was replaced by the resolved one (comments lost)
    path = ctx.recipe({"output.dir": str(ctx.tmp)})
    path.write_text("# my notes, kept\n" + path.read_text())
    return ["train", path]


@case("train-output-dir-empty", "output.dir", "empty")
def _(ctx):  # trained into the working folder, rewriting ./recipe.yaml
    return ["train", ctx.recipe({"output.dir": ""})]


@case("train-over-a-hand-written-recipe-yaml", "{tmp}/out", "recipe.yaml", "did not write")
def _(ctx):
    (ctx.tmp / "out").mkdir()
    (ctx.tmp / "out" / "recipe.yaml").write_text("# mine\nname: mine\n")
    return ["train", ctx.recipe({"output.dir": str(ctx.tmp / "out")}, name="r.yaml")]


@case("train-resume-with-the-runs-own-recipe-yaml", "resumed from", code=0, may_change=RESUMED)
def _(ctx):  # the run's own recipe.yaml is never rewritten by a resume, so it may be the source
    run = ctx.run_copy()
    return ["train", run / "recipe.yaml", "--resume", f"output.dir={run}", "train.epochs=3"]


@case("train-after-a-run-killed-before-its-first-epoch", "done", code=0,
      may_change=("run/recipe.yaml",))
def _(ctx):  # the run's recipe.yaml (written by an older rsfm, without the header) is rsfm's
    run = ctx.tmp / "run"
    run.mkdir()
    text = (ctx.request.getfixturevalue("trained") / "recipe.yaml").read_text()
    (run / "recipe.yaml").write_text("".join(line for line in text.splitlines(keepends=True)
                                             if not line.startswith("# rsfm run recipe")))
    return ["train", ctx.run_recipe(run, {"train.epochs": 1, "train.max_steps": 1})]


def test_atomic_write_named_never_writes_through_a_hard_link(tmp_path):
    from rsfm.io import atomic_write_named

    target, other = tmp_path / "a.onnx", tmp_path / "weights.safetensors"
    other.write_bytes(b"weights")
    os.link(other, target)

    def write(tmp: Path) -> None:
        assert tmp.name == "a.onnx"  # suffix-sensitive writers see the real name
        tmp.write_bytes(b"model")
        tmp.with_name("a.onnx.data").write_bytes(b"external data")  # a sidecar

    atomic_write_named(target, write)
    assert target.read_bytes() == b"model" and other.read_bytes() == b"weights"
    assert (tmp_path / "a.onnx.data").read_bytes() == b"external data"

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_named(target, fail)
    assert target.read_bytes() == b"model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "a.onnx.data",
                                                         "weights.safetensors"]


def test_export_replaces_its_own_earlier_export_by_renaming(trained, tmp_path):
    """Exporting again over an rsfm export replaces it (a new file: a hard link to the old one
    keeps its bytes), with the default output next to the run too."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    out = run / "model.pt2"
    assert main(["export", str(run), "--format", "pt2"]) == 0 and out.is_file()
    os.link(out, tmp_path / "kept.pt2")
    before = (tmp_path / "kept.pt2").read_bytes()
    assert main(["export", str(run), "-o", str(out)]) == 0  # format from the suffix
    assert (tmp_path / "kept.pt2").read_bytes() == before
    assert not os.path.samefile(out, tmp_path / "kept.pt2")
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@case("evaluate-split-without-a-labelled-pixel", "No labelled pixel", "test split", code=0)
def _(ctx):  # a recipe split (what training scores at its end) is reported, not an error
    im, lab = ctx.s1_pair()
    for path in lab.iterdir():
        with rasterio.open(path, "r+") as ds:
            ds.write(np.full((ds.count, ds.height, ds.width), -1, dtype=ds.dtypes[0]))
    recipe = ctx.chip_recipe(im, lab, {"data.test": {"images": str(im), "labels": str(lab)}})
    return ["evaluate", ctx.trained, recipe, "--split", "test", "-o", ctx.tmp / "ev", "--quiet"]

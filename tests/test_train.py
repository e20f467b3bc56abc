"""The training loop on real Sen1Floods11 crops with a tiny DOFA ViT: outputs, resume
equivalence, NaN guard, progressive unfreezing, and the loop's building blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
S1 = ROOT / "tests" / "data" / "sen1floods11"


def tiny_recipe(out: Path, **sections) -> dict:
    """A recipe that trains a 2-block width-64 DOFA ViT on 64x64 tiles of the real S1 crops."""
    recipe = {
        "name": "tiny",
        "model": {"task": "segmentation", "backbone": "dofa_base", "head": "fcn",
                  "num_classes": 2, "bands": ["VV", "VH"],
                  "backbone_kwargs": {"depth": 2, "embed_dim": 64, "num_heads": 2},
                  "neck": {"out_channels": 32}},
        "data": {"kind": "scenes",
                 "train": {"images": str(S1 / "S1Hand"), "labels": str(S1 / "LabelHand")},
                 "image_suffix": "_S1Hand", "label_suffix": "_LabelHand",
                 "classes": ["dry", "water"], "label_ignore_values": [-1], "tile_size": 64,
                 "val_fraction": 0.25, "batch_size": 4,
                 "normalization": {"mode": "stats", "mean": [-10.0, -17.0], "std": [4.0, 5.0]}},
        "train": {"epochs": 2, "optimizer": {"lr": 1e-3}, "seed": 1, "progress": False},
        "output": {"dir": str(out), "plots": True},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    return recipe


@pytest.fixture
def train_log(caplog):
    """caplog for the training loggers (the CLI's status handler may stop their propagation)."""
    import logging

    logger = logging.getLogger("rsfm.train")
    logger.addHandler(caplog.handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_train_writes_run_directory(tmp_path):
    import rsfm
    from rsfm.hub import from_pretrained, load_config
    from rsfm.train.state import TrainResult

    run = tmp_path / "run"
    result = rsfm.train(tiny_recipe(run))
    assert isinstance(result, TrainResult)
    assert result.best_epoch in (1, 2) and result.global_step == 4 and result.run_dir == run
    assert result.metric == "miou" and result.num_processes == 1 and result.test_metrics is None
    for name in ("recipe.yaml", "config.json", "model.safetensors", "last_model.safetensors",
                 "metrics.jsonl", "metrics.csv", "plots/loss.png", "plots/metrics.png",
                 "plots/confusion_matrix.png", "plots/predictions.png", "checkpoints/latest",
                 "checkpoints/epoch-0002/config.json"):
        assert (run / name).exists(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "val_loss", "val_miou", "val_macro_f1", "val_accuracy",
                "val_iou_dry", "val_iou_water", "val_confusion_matrix", "lr", "val_samples"):
        assert key in rows[-1], key
    assert rows[-1]["val_samples"] == 3
    cfg = load_config(run)  # the SavedConfig inference relies on
    assert cfg.rsfm_version and cfg.model.backbone == "dofa_base" and cfg.card.name == "dofa_base"
    assert cfg.model.bands is None and cfg.input.band_names == ["VV", "VH"]
    assert all(b.wavelength_um is not None for b in cfg.input.bands)
    assert cfg.input.normalization.mean == (-10.0, -17.0)
    assert cfg.input.normalization.std == (4.0, 5.0)
    assert cfg.input.class_names == ["dry", "water"] and cfg.input.tile_size == 64
    assert cfg.input.ignore_index == -1 and cfg.lora is None
    assert cfg.metrics["epoch"] == result.best_epoch
    model = from_pretrained(run)
    assert not model.training and model.saved_config.model.task == "segmentation"
    best = load_weights(run / "model.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, best[k]), k
    last = from_pretrained(run, weights="last")  # a hard link to the checkpoint's weights
    ckpt_weights = run / "checkpoints" / "epoch-0002" / "model.safetensors"
    assert (run / "last_model.safetensors").stat().st_ino == ckpt_weights.stat().st_ino
    assert set(last.state_dict()) == set(best)
    with pytest.raises(Exception, match="already holds a run"):
        rsfm.train(tiny_recipe(run))


def test_non_finite_loss_stops_with_clear_message(tmp_path):
    from rsfm.train.loop import NonFiniteLossError, train

    with pytest.raises(NonFiniteLossError) as info:
        train(tiny_recipe(tmp_path / "nan", train={"optimizer": {"lr": 1e30},
                                                   "clip_grad_norm": None}))
    msg = str(info.value)
    assert "step" in msg and "learning rate" in msg and "nodata" in msg and "normalisation" in msg
    assert "last good checkpoint" in msg


def test_progressive_unfreeze_and_freeze(tmp_path):
    from rsfm.train.loop import train

    snapshots = {}

    def snap(event, state):
        if event == "epoch":
            snapshots[state.epoch] = {k: v.detach().clone()
                                      for k, v in state.model.state_dict().items()}

    recipe = tiny_recipe(tmp_path / "unfreeze", train={
        "epochs": 3, "freeze": {"backbone": True,
                                "unfreeze": [{"epoch": 2, "modules": ["blocks.1"]}]}})
    train(recipe, callbacks=[snap])
    b1 = "backbone.blocks.1.attn.qkv.weight"
    b0 = "backbone.blocks.0.attn.qkv.weight"
    head = next(k for k in snapshots[0] if k.startswith("head.") and k.endswith("weight"))
    assert torch.equal(snapshots[0][b1], snapshots[1][b1])  # frozen in epochs 1-2
    assert not torch.equal(snapshots[0][head], snapshots[1][head])  # head trains
    assert not torch.equal(snapshots[1][b1], snapshots[2][b1])  # unfrozen at epoch 3
    assert torch.equal(snapshots[1][b0], snapshots[2][b0])  # block 0 stays frozen


# ------------------------------------------------------------------------------ building blocks
def test_losses_ignore_index_and_all_ignored():
    from rsfm.train.losses import build_loss

    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0] = -1
    for name in ("ce", "dice", "focal", "ce+dice", "focal+dice"):
        loss = build_loss(name, ignore_index=-1, class_weights=[1.0, 2.0, 1.0])(logits, target)
        assert torch.isfinite(loss)
        loss.backward()
    empty = torch.full((2, 4, 4), -1)
    assert build_loss("ce")(logits, empty).item() == 0.0


def test_layer_decay_groups_and_schedule():
    from rsfm.config import ModelConfig
    from rsfm.factory import create_model
    from rsfm.schema import OptimizerConfig
    from rsfm.train.budget import Budget
    from rsfm.train.optim import build_optimizer, build_scheduler, lr_lambda, param_groups

    model = create_model(ModelConfig(task="segmentation", backbone="dofa_base", head="fcn",
                                     num_classes=2, bands=("VV", "VH"),
                                     backbone_kwargs={"depth": 2, "embed_dim": 64,
                                                      "num_heads": 2}))
    groups = param_groups(model, 1e-3, 0.05, layer_decay=0.5)
    scale = {n: g["lr_scale"] for g in groups for n in g["names"]}
    assert scale["backbone.blocks.1.attn.qkv.weight"] == pytest.approx(0.5)
    assert scale["backbone.blocks.0.attn.qkv.weight"] == pytest.approx(0.25)
    assert scale[next(n for n in scale if n.startswith("head."))] == 1.0
    decay = {n: g["weight_decay"] for g in groups for n in g["names"]}
    assert decay["backbone.blocks.0.attn.qkv.bias"] == 0.0
    assert decay["backbone.blocks.0.attn.qkv.weight"] == 0.05
    opt = build_optimizer(model, OptimizerConfig(lr=1e-3, layer_decay=0.5))
    sched = build_scheduler(opt, Budget(epochs=2, steps_per_epoch=5, warmup=2))
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0] / opt.param_groups[0]["lr_scale"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(1e-3)
    assert lrs[-1] < lrs[2] and lr_lambda(9, 10, 2) == pytest.approx(0.5 * (1 + torch.cos(
        torch.tensor(torch.pi * 7 / 8)).item()))
    sgd = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1))
    assert isinstance(sgd, torch.optim.SGD)


def test_unfreeze_specs():
    from rsfm.config import ModelConfig
    from rsfm.errors import ConfigError
    from rsfm.factory import create_model
    from rsfm.train.unfreeze import resolve_modules

    vit = create_model(ModelConfig(task="segmentation", backbone="dofa_base", head="fcn",
                                   num_classes=2, backbone_kwargs={"depth": 3, "embed_dim": 64,
                                                                   "num_heads": 2}))
    assert resolve_modules(vit, "blocks.1-2") == [vit.backbone.blocks[1], vit.backbone.blocks[2]]
    assert resolve_modules(vit, "last_blocks:1") == [vit.backbone.blocks[2]]
    assert resolve_modules(vit, "backbone") == [vit.backbone]
    with pytest.raises(ConfigError, match="names no module"):
        resolve_modules(vit, "blokcs.1")
    res = create_model(ModelConfig(task="classification", backbone="resnet18",
                                   head="classification", num_classes=3))
    assert resolve_modules(res, "layer4") == [res.backbone.layer4]
    assert resolve_modules(res, "last_stages:2") == [res.backbone.layer3, res.backbone.layer4]


def test_atomic_write_keeps_previous_file(tmp_path):
    from rsfm.io import atomic_write, atomic_write_text
    from rsfm.train.checkpoint import find_latest_checkpoint

    target = atomic_write_text(tmp_path / "f.txt", "old")

    def crash(tmp):
        Path(tmp).write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    ck = tmp_path / "run" / "checkpoints"
    (ck / "epoch-0001").mkdir(parents=True)
    (ck / "epoch-0001" / "trainer_state.json").write_text("{}")
    (ck / ".tmp-epoch-0002").mkdir()  # a checkpoint killed while being written
    (ck / "epoch-0003").mkdir()  # incomplete (no state file)
    assert find_latest_checkpoint(tmp_path / "run").name == "epoch-0001"


def test_detection_run_reports_map(tmp_path):
    from rsfm.train.loop import train

    df = ROOT / "tests" / "data" / "deepforest"
    src = {"images": str(df / "images"), "labels": str(df / "annotations")}
    recipe = {
        "name": "det",
        "model": {"task": "detection", "backbone": "dofa_base", "head": "faster_rcnn",
                  "num_classes": 3, "bands": ["RED", "GREEN", "BLUE"],
                  "backbone_kwargs": {"depth": 2, "embed_dim": 64, "num_heads": 2},
                  "neck": {"out_channels": 32}},
        "data": {"train": src, "val": src, "classes": ["Tree", "Dead", "Alive"],
                 "normalization": {"mode": "stats", "mean": [100.0] * 3, "std": [50.0] * 3},
                 "batch_size": 2},
        "train": {"epochs": 1, "optimizer": {"lr": 5e-4}, "progress": False},
        "output": {"dir": str(tmp_path / "det")},
    }
    result = train(recipe)
    row = result.history[-1]
    assert result.metric == "map" and 0.0 <= row["val_map"] <= row["val_map_50"] <= 1.0
    assert row["val_images"] == 2 and row["images_per_sec"] > 0
    # COCO metrics of rsfm.metrics (faster-coco-eval): recall and per-class AP/AR
    for key in ("val_map_75", "val_mar_100", "val_ap_Tree", "val_ap_Dead", "val_ar_100_Alive"):
        assert 0.0 <= row[key] <= 1.0, key


def test_classification_with_progressive_unfreeze(tmp_path):
    import shutil

    from rsfm.train.loop import train

    root = tmp_path / "scenes"
    for cls, stem in (("dry", "Ghana_53713"), ("dry", "Bolivia_312675"),
                      ("water", "Spain_7370579")):
        (root / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(S1 / "S1Hand" / f"{stem}_S1Hand.tif", root / cls / f"{stem}.tif")
    snaps = {}

    def snap(event, state):
        if event == "epoch":
            snaps[state.epoch] = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    recipe = {
        "name": "cls",
        "model": {"task": "classification", "backbone": "resnet18", "head": "classification",
                  "num_classes": 2, "bands": ["VV", "VH"]},
        "data": {"kind": "class_folders", "train": {"images": str(root)},
                 "val": {"images": str(root)}, "classes": ["dry", "water"],
                 "normalization": {"mode": "stats", "mean": [-10.0, -17.0], "std": [4.0, 5.0]},
                 "batch_size": 2},
        "train": {"epochs": 2, "progress": False, "optimizer": {"lr": 1e-3},
                  "freeze": {"backbone": True,
                             "unfreeze": [{"epoch": 1, "modules": ["last_stages:1"]}]}},
        "output": {"dir": str(tmp_path / "cls")},
    }
    result = train(recipe, callbacks=[snap])
    row = result.history[-1]
    assert result.metric == "accuracy" and row["val_samples"] == 3
    for key in ("val_accuracy", "val_macro_f1", "val_f1_dry", "val_recall_water",
                "val_precision_dry", "val_loss", "val_confusion_matrix"):
        assert key in row, key
    assert not [k for k in row if "miou" in k or "pixels" in k or "iou_" in k]
    l4, l3 = "backbone.layer4.0.conv1.weight", "backbone.layer3.0.conv1.weight"
    assert not torch.equal(snaps[0][l4], snaps[1][l4])  # layer4 unfrozen in epoch 2
    assert torch.equal(snaps[0][l3], snaps[1][l3])  # layer3 stays frozen


def test_early_stopping(tmp_path):
    from rsfm.train.loop import train

    result = train(tiny_recipe(tmp_path / "es", train={
        "epochs": 5, "early_stopping": {"patience": 1, "min_delta": 0.5}}))
    assert len(result.history) == 2 and result.best_epoch == 1
    assert result.stop_reason == "early_stopping"
    state = json.loads((tmp_path / "es" / "checkpoints" / "epoch-0002" /
                        "trainer_state.json").read_text())
    assert state["stopped_early"] is True


def test_demo_end_to_end_smoke(tmp_path):
    from rsfm.train.demo import run_demo

    res = run_demo(tmp_path / "demo", ["train.epochs=1", "train.max_steps=2"], progress=False)
    assert res.preview.stat().st_size > 0 and res.prediction.exists()
    assert 0 < res.majority_miou < 1 and res.miou is not None

"""What a run keeps (issue 10 items 1, 5 and 7): a non-finite validation score is never "best",
a non-finite loss names its step and the last good checkpoint, only the newest checkpoint keeps
the optimizer state, the run directory's size is reported, and ``data.test`` is scored with the
best checkpoint at the end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_train import S1, tiny_recipe, train_log  # noqa: F401  (fixture)


def test_improved_never_takes_a_non_finite_score():
    from rsfm.train.state import improved

    assert not improved(math.nan, None, "max") and not improved(math.inf, 0.5, "max")
    assert not improved(-math.inf, 0.5, "min") and not improved(None, None, "max")
    assert improved(0.1, None, "max") and improved(0.2, 0.5, "min")


def test_nan_validation_epoch_is_never_best(tmp_path, monkeypatch):
    from rsfm.hub import load_config
    from rsfm.train import loop

    real = loop.evaluate
    calls = []

    def nan_first(model, loader, task, accelerator=None):
        out = real(model, loader, task, accelerator)
        calls.append(1)
        if len(calls) == 1:  # epoch 1: the lr=1e12 symptom (val_loss nan, metric nan)
            out = {**out, "miou": math.nan, "loss": math.nan}
        return out

    monkeypatch.setattr(loop, "evaluate", nan_first)
    result = loop.train(tiny_recipe(tmp_path / "nan"))
    assert math.isnan(result.history[0]["val_miou"])
    assert result.best_epoch == 2 and math.isfinite(result.best_metric)
    assert load_config(tmp_path / "nan").metrics["epoch"] == 2


def test_non_finite_loss_names_step_and_last_good_checkpoint(tmp_path):
    from rsfm.train.loop import NonFiniteLossError, train

    def poison(event, state):
        if event == "step" and state.global_step == 3:  # epoch 2, after epoch 1's checkpoint
            with torch.no_grad():
                next(p for n, p in state.model.named_parameters() if n.startswith("head.")).fill_(
                    math.nan)

    with pytest.raises(NonFiniteLossError) as info:
        train(tiny_recipe(tmp_path / "poisoned"), callbacks=[poison])
    msg = str(info.value)
    assert "optimizer step 4" in msg and "epoch 2" in msg
    assert str(tmp_path / "poisoned" / "checkpoints" / "epoch-0001") in msg


@pytest.mark.usefixtures("train_log")
def test_only_newest_checkpoint_keeps_optimizer_state_and_size_is_reported(tmp_path, caplog):
    from rsfm.train.loop import train
    from rsfm.train.run_dir import RunDir

    run = tmp_path / "keep"
    train(tiny_recipe(run, train={"epochs": 3}, output={"dir": str(run), "plots": False,
                                                        "keep_checkpoints": 2}))
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("epoch-*"))
    assert ckpts == ["epoch-0002", "epoch-0003"]
    older, newest = run / "checkpoints" / "epoch-0002", run / "checkpoints" / "epoch-0003"
    assert sorted(p.name for p in older.iterdir()) == ["config.json", "model.safetensors",
                                                        "trainer_state.json"]
    assert (newest / "optimizer.bin").is_file() and (newest / "model.safetensors").is_file()
    # last_model.safetensors shares the newest checkpoint's weights file (no second copy)
    assert (run / "last_model.safetensors").samefile(newest / "model.safetensors")
    size = RunDir(run).size()
    assert f"run directory {run}: {size / 1e6:.1f} MB" in caplog.text


@pytest.mark.usefixtures("train_log")
def test_test_split_is_scored_with_the_best_checkpoint(tmp_path, caplog):
    import rsfm
    from rsfm.hub import load_config
    from rsfm.hub.card import model_card
    from rsfm.train.loop import train

    run = tmp_path / "tested"
    test_src = {"images": str(S1 / "S1Hand"), "labels": str(S1 / "LabelHand")}
    result = train(tiny_recipe(run, data={"test": test_src}))
    test = result.test_metrics
    assert test is not None and test["split"] == "test" and test["weights"] == "best"
    assert test["epoch"] == result.best_epoch
    for key in ("test_miou", "test_macro_f1", "test_accuracy", "test_iou_water", "test_f1_dry",
                "test_images", "test_confusion_matrix"):
        assert key in test, key
    assert test["test_images"] == 3  # whole scenes through predict's tiling (Paraguay: all NaN)
    assert not [k for k in test if k.startswith("val_")]  # reported apart from validation
    # the numbers of a later `rsfm evaluate RUN`: the same code on the same weights
    again = rsfm.evaluate(run, write=False, progress=False)
    assert again.metrics["confusion_matrix"] == test["test_confusion_matrix"]
    assert again.metrics["miou"] == test["test_miou"]
    saved = json.loads((run / "evaluation" / "test" / "metrics.json").read_text())
    assert saved["metrics"]["miou"] == test["test_miou"] and saved["split"] == "test"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == json.loads(json.dumps(test)) and len(rows) == 3
    assert "test_miou" not in (run / "metrics.csv").read_text()  # per-epoch table only
    config = load_config(run)
    assert config.metrics["test_miou"] == pytest.approx(test["test_miou"])
    assert config.metrics["val_miou"] == pytest.approx(result.best_metric)
    card = str(model_card(config, "org/tiny"))
    assert "dataset_split: test" in card or "split: test" in card
    assert f"{round(test['test_miou'], 4)}" in card
    assert "test (best weights, epoch" in caplog.text and "3 images" in caplog.text
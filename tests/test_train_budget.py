"""Run budgets (issue 10 item 2): epochs, max_steps and max_time, whichever ends first; the
warm-up + decay schedule is defined over the budget that applies, the warm-up is clamped to the
run, and a max_time run stops within one step of the budget with a final evaluation and
checkpoint."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from test_train import tiny_recipe, train_log  # noqa: F401  (fixture)


def test_step_schedule_is_the_pure_step_function():
    from rsfm.train.budget import Budget
    from rsfm.train.optim import lr_lambda

    b = Budget(epochs=3, steps_per_epoch=7, warmup=4, schedule="cosine", min_ratio=0.1)
    assert [b.lr_factor(s) for s in range(21)] == pytest.approx(
        [lr_lambda(s, 21, 4, "cosine", 0.1) for s in range(21)])
    assert b.lr_factor(21) == pytest.approx(0.1)  # the final value after the last step
    assert b.exhausted(21) is None  # epochs are the loop's business
    assert Budget(epochs=3, steps_per_epoch=7, max_steps=5).exhausted(5) == "max_steps"


@pytest.mark.usefixtures("train_log")
def test_warmup_in_epochs_counts_the_epoch_the_run_has(caplog):
    """max_steps shorter than an epoch: warm-up epochs are counted in the steps the run has, and
    a warm-up longer than half of the run is clamped with a warning."""
    from rsfm.recipe import load_recipe
    from rsfm.train.budget import Budget

    def budget(**train):
        recipe = load_recipe(tiny_recipe("/tmp/unused", train=train))
        return Budget.from_recipe(recipe, steps_per_epoch=50)

    b = budget(epochs=1, max_steps=36, scheduler={"warmup_epochs": 0.25})
    assert b.total_steps == 36 and b.warmup == 9  # not 12 (a quarter of 50)
    b = budget(epochs=1, max_steps=36, scheduler={"warmup_epochs": 0.5})
    assert b.warmup == 18 and "clamped" not in caplog.text  # 25 of 36 before the fix
    b = budget(epochs=1, max_steps=36, scheduler={"warmup_steps": 30})
    assert b.warmup == 18
    assert "clamped to 18 steps" in caplog.text and "30 steps" in caplog.text
    assert b.lr_factor(17) == pytest.approx(1.0) and b.lr_factor(36) == pytest.approx(0.0)


def test_time_schedule_decays_over_the_time_budget():
    from rsfm.train.budget import Budget

    b = Budget(epochs=1000, steps_per_epoch=100, max_time=10.0, warmup=2, min_ratio=0.0)
    b.elapsed = 0.1
    assert b.lr_factor(0) == pytest.approx(0.5) and b.lr_factor(1) == pytest.approx(1.0)
    b.elapsed = 1.0
    start = b.lr_factor(2)  # the warm-up ends at 1 s: the decay runs over the 9 s left
    assert start == pytest.approx(1.0)
    b.elapsed = 5.5
    assert b.lr_factor(3) == pytest.approx(0.5)  # half-way in time, not in steps
    b.elapsed = 10.0
    assert b.lr_factor(4) == pytest.approx(0.0) and b.exhausted(4) == "max_time"
    assert "10.0s of wall time" in b.describe()


@pytest.mark.usefixtures("train_log")
def test_time_budget_cuts_a_long_warmup(caplog):
    from rsfm.train.budget import Budget

    b = Budget(epochs=1000, steps_per_epoch=100, max_time=10.0, warmup=1000)
    b.elapsed = 4.0
    assert b.lr_factor(3) == pytest.approx(4 / 1000)
    b.elapsed = 5.0
    assert b.lr_factor(4) == pytest.approx(1.0)  # half of the time: warm-up ends
    assert "Warm-up ended at step 4" in caplog.text
    b.elapsed = 7.5
    assert b.lr_factor(5) == pytest.approx(0.5)


@pytest.mark.usefixtures("train_log")
def test_max_time_run_stops_within_one_step_with_final_eval_and_checkpoint(tmp_path, caplog):
    from rsfm.train.loop import train

    elapsed = []

    def clock(event, state):
        if event == "step":
            elapsed.append(state.elapsed)

    budget = 4.0
    result = train(tiny_recipe(tmp_path / "timed", train={"epochs": 1000,
                                                          "max_time": f"{budget}s"}),
                   callbacks=[clock])
    assert result.stop_reason == "max_time"
    assert elapsed[-1] >= budget and all(t < budget for t in elapsed[:-1])  # within one step
    assert len(elapsed) == result.global_step
    last = result.history[-1]
    assert last["lr"] == pytest.approx(0.0, abs=1e-12)  # the schedule reached its final value
    assert "val_miou" in last  # final evaluation
    ckpt = tmp_path / "timed" / "checkpoints" / f"epoch-{last['epoch']:04d}"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == result.global_step and state["stop_reason"] == "max_time"
    assert "of wall time" in caplog.text and "max_time reached" in caplog.text
    lrs = [h["lr"] for h in result.history]
    assert all(a >= b for a, b in itertools.pairwise(lrs)) and math.isfinite(lrs[0])
    # resuming a run that used up its time is a no-op
    again = train(tiny_recipe(tmp_path / "timed", train={"epochs": 1000,
                                                         "max_time": f"{budget}s"}),
                  resume="auto")
    assert again.global_step == result.global_step

"""``rsfm.train.engine.evaluate`` under accelerate: every sample scored once, whatever the batching."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from rsfm.bands import resolve_band
from rsfm.data.collate import collate_fn
from rsfm.spec import ClassInfo, InputSpec
from rsfm.train.engine import evaluate
from rsfm.train.tasks import build_task

SPEC = InputSpec(bands=(resolve_band("RED"),), classes=(ClassInfo("tree", (0, 128, 0)),))


class EchoDetector(torch.nn.Module):
    """Predicts each image's own box (carried in its first pixel) with score 1: perfect recall."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images):
        out = []
        for im in images:
            x = float(im[0, 0, 0])
            out.append({"boxes": torch.tensor([[x, x, x + 8, x + 8]]), "scores": torch.ones(1),
                        "labels": torch.ones(1, dtype=torch.long)})
        return out


def samples(n: int):
    out = []
    for i in range(n):
        image = torch.zeros(1, 32, 32)
        image[0, 0, 0] = float(i)
        out.append({"image": image, "boxes": torch.tensor([[float(i), float(i), i + 8.0, i + 8.0]]),
                    "labels": torch.zeros(1, dtype=torch.long)})
    return out


@pytest.mark.parametrize(("n", "batch"), [(3, 2), (1, 2), (5, 2), (4, 2)])
def test_detection_evaluation_with_a_short_last_batch(n, batch):
    """The last batch of 1 used to lose its targets (accelerate cut the (preds, targets) pair)."""
    accelerator = Accelerator(cpu=True)
    model = EchoDetector()
    loader = DataLoader(samples(n), batch_size=batch, collate_fn=collate_fn)
    model, loader = accelerator.prepare(model, loader)
    task = build_task("detection", SPEC, accelerator=accelerator)
    metrics = evaluate(model, loader, task, accelerator)
    assert metrics["map_50"] == pytest.approx(1.0)

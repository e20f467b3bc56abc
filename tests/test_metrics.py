"""rsfm.metrics: exact confusion matrices, segmentation/classification metrics, and detection mAP
against faster-coco-eval's own COCOeval (torchmetrics path) and the built-in fallback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from rsfm.errors import ConfigError
from rsfm.metrics import (
    ConfusionMatrix,
    DetectionMetrics,
    classification_metrics,
    coco_box_map,
    confusion_matrix,
    detection_backend,
    per_sample_confusion,
    plot_confusion,
    segmentation_metrics,
)


# ------------------------------------------------------------------------------ confusion
def test_confusion_matrix_ignores_labels_and_invalid_pixels():
    pred = np.array([[0, 1, 1], [2, 0, 1]])
    target = np.array([[0, 1, -1], [2, 1, 7]])  # -1 ignored, 7 outside the 3 classes
    valid = np.array([[True, True, True], [False, True, True]])
    cm = confusion_matrix(pred, target, 3, ignore_index=-1, valid=valid)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]  # (1,2) masked by valid
    # torch tensors give the same counts, and per-sample matrices sum to it
    t = per_sample_confusion(torch.tensor(pred)[None], torch.tensor(target)[None], 3, -1)
    assert t.shape == (1, 3, 3)
    assert t[0].tolist() == confusion_matrix(pred, target, 3, -1).tolist()


def test_confusion_matrix_rejects_predictions_outside_the_classes():
    with pytest.raises(ConfigError, match="outside the 2 classes"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 2)
    with pytest.raises(ConfigError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)


def test_segmentation_metrics_by_hand():
    pred = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [0, 0]]])
    target = torch.tensor([[[0, 1], [0, -1]], [[0, 0], [1, 1]]])
    acc = ConfusionMatrix(2, ["a", "b"])
    acc.add(per_sample_confusion(pred, target, 2, -1))
    out = acc.compute()
    # totals: tp0=3, fn0=1 (0->1), fp0=2 (1->0); tp1=1, fp1=1, fn1=2
    assert out["iou_a"] == pytest.approx(3 / 6) and out["iou_b"] == pytest.approx(1 / 4)
    assert out["miou"] == pytest.approx((0.5 + 0.25) / 2)
    assert out["f1_a"] == pytest.approx(6 / 9) and out["f1_b"] == pytest.approx(2 / 5)
    assert out["macro_f1"] == pytest.approx((6 / 9 + 2 / 5) / 2)
    assert out["accuracy"] == pytest.approx(4 / 7) and out["samples"] == 2
    assert out["pixels"] == 7 and out["majority_miou"] == pytest.approx((4 / 7) / 2)
    assert out["confusion_matrix"] == [[3, 1], [2, 1]]


def test_accumulation_is_exact_whatever_the_chunking():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 4, (6, 50, 40))
    target = rng.integers(-1, 4, (6, 50, 40))
    whole = confusion_matrix(pred, target, 4)
    acc = ConfusionMatrix(4)
    for i in range(6):  # per image, in row strips, numpy and torch mixed
        for r in range(0, 50, 7):
            if r % 2:
                acc.add(confusion_matrix(pred[i, r:r + 7], target[i, r:r + 7], 4))
            else:
                acc.add(per_sample_confusion(torch.tensor(pred[i, r:r + 7])[None],
                                             torch.tensor(target[i, r:r + 7])[None], 4))
    assert np.array_equal(acc.confusion, whole)
    assert acc.compute()["miou"] == segmentation_metrics(whole)["miou"]


def test_undefined_classes_are_none_and_left_out_of_means():
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # class 2 absent from truth and prediction
    out = segmentation_metrics(cm, ["a", "b", "c"])
    assert out["iou_c"] is None and out["f1_c"] is None
    assert out["miou"] == pytest.approx((5 / 8 + 3 / 6) / 2)
    empty = segmentation_metrics(np.zeros((2, 2), dtype=np.int64))
    assert empty["miou"] is None and empty["accuracy"] is None and empty["pixels"] == 0


def test_classification_metrics_by_hand():
    acc = ConfusionMatrix(3, ["x", "y", "z"], "classification")
    for p, t in [(0, 0), (0, 0), (1, 0), (1, 1), (2, 1), (2, 2)]:
        acc.update(np.array([p]), np.array([t]))
    out = acc.compute()
    assert out["accuracy"] == pytest.approx(4 / 6) and out["samples"] == 6
    assert out["precision_x"] == pytest.approx(1.0) and out["recall_x"] == pytest.approx(2 / 3)
    assert out["precision_y"] == pytest.approx(0.5) and out["recall_y"] == pytest.approx(0.5)
    assert out["precision_z"] == pytest.approx(0.5) and out["recall_z"] == pytest.approx(1.0)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert out["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert "miou" not in out and out["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert classification_metrics(np.array(out["confusion_matrix"]))["accuracy"] == out["accuracy"]


def test_plot_confusion(tmp_path):
    path = plot_confusion([[3, 1], [2, 1]], ["a", "b"], tmp_path / "sub" / "cm.png", title="t")
    assert path.stat().st_size > 1000


def test_segmentation_metrics_do_not_import_torchmetrics():
    code = ("import sys, numpy as np; import rsfm.metrics as m; "
            "c = m.ConfusionMatrix(2); c.update(np.array([0, 1]), np.array([0, 0])); c.compute(); "
            "print('torchmetrics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------ detection
def detection_fixture(n_images: int = 40, seed: int = 0):
    """Random ground truth of 3 classes and noisy, partly mislabelled detections."""
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(n_images):
        n = int(torch.randint(1, 8, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 200
        gt = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 80 + 4], 1)
        lab = torch.randint(0, 3, (n,), generator=g)
        m = int(torch.randint(0, 12, (1,), generator=g))
        idx = torch.randint(0, n, (m,), generator=g)
        pb = gt[idx] + torch.randn(m, 4, generator=g) * 4
        pb = torch.cat([torch.minimum(pb[:, :2], pb[:, 2:]), torch.maximum(pb[:, :2], pb[:, 2:])], 1)
        pl = torch.where(torch.rand(m, generator=g) < 0.85, lab[idx],
                         torch.randint(0, 3, (m,), generator=g))
        preds.append({"boxes": pb, "scores": torch.rand(m, generator=g), "labels": pl})
        targets.append({"boxes": gt, "labels": lab})
    return preds, targets


def faster_coco_eval_stats(preds, targets, iou_type="bbox"):
    """COCOeval of faster-coco-eval itself on the same data (COCO json built here)."""
    from faster_coco_eval import COCO, COCOeval_faster
    from faster_coco_eval.core import mask as mask_util

    def segm(mask):
        rle = mask_util.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        return rle

    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i, "width": 400, "height": 400})
        for j, (b, c) in enumerate(zip(t["boxes"].tolist(), t["labels"].tolist())):
            w, h = b[2] - b[0], b[3] - b[1]
            ann = {"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": [b[0], b[1], w, h],
                   "area": w * h, "iscrowd": 0}
            if iou_type == "segm":
                ann["segmentation"] = segm(t["masks"][j])
                ann["area"] = float(t["masks"][j].sum())
            anns.append(ann)
        for j, (b, s, c) in enumerate(zip(p["boxes"].tolist(), p["scores"].tolist(),
                                          p["labels"].tolist())):
            det = {"image_id": i, "category_id": c, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                   "score": s}
            if iou_type == "segm":
                det["segmentation"] = segm(p["masks"][j])
            dets.append(det)
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": c} for c in range(3)]}
    gt.createIndex()
    ev = COCOeval_faster(gt, gt.loadRes(dets), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats


STATS = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10",
         "mar_100", "mar_small", "mar_medium", "mar_large"]


def test_detection_backend_is_faster_coco_eval():
    assert detection_backend() == "faster_coco_eval"  # the `detection` extra is installed


def test_torchmetrics_path_equals_faster_coco_eval_cocoeval():
    preds, targets = detection_fixture()
    metric = DetectionMetrics(["a", "b", "c"])
    metric.update(preds, targets)
    out = metric.compute()
    stats = faster_coco_eval_stats(preds, targets)
    assert out["images"] == 40
    for name, value in zip(STATS, stats):
        expected = None if value < 0 else value
        if expected is None:
            assert out[name] is None, name
        else:
            assert out[name] == pytest.approx(expected, abs=1e-6), name
    assert 0.05 < out["map"] < out["map_50"] < 1  # a fixture that exercises the matching
    for c in "abc":
        assert out[f"ap_{c}"] is not None and out[f"ar_100_{c}"] is not None


def test_fallback_equals_faster_coco_eval_within_1e_3():
    preds, targets = detection_fixture(seed=1)
    ours = coco_box_map(preds, targets, ["a", "b", "c"])
    fallback = DetectionMetrics(["a", "b", "c"], backend="rsfm")
    fallback.update(preds, targets)
    assert fallback.compute()["map"] == ours["map"]
    stats = faster_coco_eval_stats(preds, targets)
    assert ours["map"] == pytest.approx(stats[0], abs=1e-3)
    assert ours["map_50"] == pytest.approx(stats[1], abs=1e-3)
    assert ours["map_75"] == pytest.approx(stats[2], abs=1e-3)
    full = DetectionMetrics(["a", "b", "c"])
    full.update(preds, targets)
    theirs = full.compute()
    for c in "abc":
        assert ours[f"ap_{c}"] == pytest.approx(theirs[f"ap_{c}"], abs=1e-3)


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools", "rsfm"])
def test_detection_exact_cases(backend):
    gt = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
          "labels": torch.tensor([0, 1])}
    perfect = {"boxes": gt["boxes"].clone(), "labels": gt["labels"].clone(),
               "scores": torch.tensor([0.9, 0.8])}
    m = DetectionMetrics(["a", "b"], backend=backend)
    m.update([perfect], [gt])
    assert m.compute()["map"] == pytest.approx(1.0)
    # IoU 10/14 = 0.71: a hit at 0.5..0.7 (5 of 10 thresholds), a miss above
    shifted = {"boxes": torch.tensor([[0.0, 0, 10, 14]]), "labels": torch.tensor([0]),
               "scores": torch.tensor([0.9])}
    m = DetectionMetrics(2, backend=backend)
    m.update([shifted], [{"boxes": gt["boxes"][:1], "labels": gt["labels"][:1]}])
    out = m.compute()
    assert out["map_50"] == pytest.approx(1.0) and out["map"] == pytest.approx(5 / 10)
    assert out["ap_1"] is None  # class 1 has no ground truth: undefined, not 0


def test_no_ground_truth_is_undefined_not_zero():
    m = DetectionMetrics(["a"])
    m.update([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
               "labels": torch.zeros(0, dtype=torch.long)}],
             [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}])
    out = m.compute()
    assert out["map"] is None and out["map_50"] is None and out["images"] == 1


def test_mask_map_for_instance_masks_equals_faster_coco_eval():
    preds, targets = detection_fixture(n_images=6, seed=2)
    for d in (*preds, *targets):  # a mask inside each box: an ellipse
        yy, xx = torch.meshgrid(torch.arange(400.0), torch.arange(400.0), indexing="ij")
        masks = []
        for x0, y0, x1, y1 in d["boxes"].tolist():
            cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 1), max((y1 - y0) / 2, 1)
            masks.append(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1)
        d["masks"] = torch.stack(masks) if masks else torch.zeros(0, 400, 400, dtype=torch.bool)
    metric = DetectionMetrics(["a", "b", "c"])
    metric.update(preds, targets)
    out = metric.compute()
    assert metric.masks is True and "segm_map" in out and "segm_ap_a" in out
    stats = faster_coco_eval_stats(preds, targets, "segm")
    assert out["segm_map"] == pytest.approx(stats[0], abs=1e-6)
    assert out["segm_map_50"] == pytest.approx(stats[1], abs=1e-6)
    assert out["map"] == pytest.approx(faster_coco_eval_stats(preds, targets)[0], abs=1e-6)


def test_unknown_or_missing_backend_is_an_error(monkeypatch):
    with pytest.raises(ConfigError, match="not one of"):
        DetectionMetrics(2, backend="detectron")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("faster_coco_eval", "pycocotools")
                        else real(name, *a))
    assert detection_backend() == "rsfm"
    with pytest.raises(ConfigError, match=r"rsfm\[detection\]"):
        DetectionMetrics(2, backend="faster_coco_eval")

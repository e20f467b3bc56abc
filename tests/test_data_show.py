"""show_batch writes a PNG picture for segmentation, detection, grey and loader inputs."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import (
    DUBAI,
    DUBAI_CLASSES,
    DUBAI_COLORS,
    S1,
    S1_KW,
    S1_LABELS,
    SPACENET,
    SPACENET_VEC,
    TREES,
)
from matplotlib.image import imread
from torch.utils.data import DataLoader

from rsfm.data import ChipDataset, SceneDataset, collate_fn, show_batch
from rsfm.errors import ConfigError


def _check_png(path):
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # not blank
    return img


def test_segmentation_rgb_with_legend(tmp_path):
    ds = ChipDataset(DUBAI / "images", DUBAI / "masks", classes=DUBAI_CLASSES,
                     color_map=DUBAI_COLORS, normalize="minmax")
    _check_png(show_batch(ds, n=2, path=tmp_path / "dubai.png"))


def test_detection_loader_and_grey_single_band(tmp_path):
    ds = SceneDataset(SPACENET, SPACENET_VEC, task="detection", classes=["building"],
                      tile_size=450)
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_fn)
    img = _check_png(show_batch(loader, n=3, path=tmp_path / "boxes.png"))
    # grey image: the channel spread is small away from the coloured boxes and legend
    assert np.median(np.abs(img[..., 0] - img[..., 2])) < 0.05


def test_two_band_sar_and_rgb_choice(tmp_path):
    ds = ChipDataset(S1, S1_LABELS, **S1_KW)
    _check_png(show_batch(ds, path=tmp_path / "s1.png", hide_classes=["dry"]))
    _check_png(show_batch(ds, path=tmp_path / "vh.png", rgb=["VH"]))
    with pytest.raises(ConfigError, match="not one of the dataset bands"):
        show_batch(ds, path=tmp_path / "x.png", rgb=["RED", "GREEN", "BLUE"])


def test_trees_voc(tmp_path):
    ds = ChipDataset([TREES / "images/OSBS_029.tif"], TREES / "annotations", task="detection",
                     classes=["Tree"])
    _check_png(show_batch(ds, path=tmp_path / "trees.png"))

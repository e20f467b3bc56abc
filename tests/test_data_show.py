"""show_batch writes a PNG picture for segmentation, detection, grey and loader inputs."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import (
    DUBAI,
    DUBAI_RULES,
    DUBAI_SPEC,
    S1,
    S1_KW,
    S1_LABELS,
    S1_SPEC,
    SPACENET,
    SPACENET_VEC,
    TREES,
    make_spec,
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
    ds = ChipDataset(DUBAI / "images", DUBAI / "masks", DUBAI_SPEC, label_rules=DUBAI_RULES)
    _check_png(show_batch(ds, n=2, path=tmp_path / "dubai.png"))


def test_detection_loader_and_grey_single_band(tmp_path):
    ds = SceneDataset(SPACENET, SPACENET_VEC, make_spec(SPACENET, ["building"]),
                      task="detection", tile_size=450)
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_fn)
    img = _check_png(show_batch(loader, n=3, path=tmp_path / "boxes.png"))
    # grey image: the channel spread is small away from the coloured boxes and legend
    assert np.median(np.abs(img[..., 0] - img[..., 2])) < 0.05


def test_two_band_sar_and_rgb_choice(tmp_path):
    ds = ChipDataset(S1, S1_LABELS, S1_SPEC, **S1_KW)
    _check_png(show_batch(ds, path=tmp_path / "s1.png", hide_classes=["dry"]))
    _check_png(show_batch(ds, path=tmp_path / "vh.png", rgb=["VH"]))
    with pytest.raises(ConfigError, match=r"not one of the image.s channels"):
        show_batch(ds, path=tmp_path / "x.png", rgb=["RED", "GREEN", "BLUE"])


def test_trees_voc(tmp_path):
    ds = ChipDataset([TREES / "images/OSBS_029.tif"], TREES / "annotations",
                     make_spec(["RED", "GREEN", "BLUE"], ["Tree"]), task="detection")
    _check_png(show_batch(ds, path=tmp_path / "trees.png"))


def test_mask_colours_are_the_specs_class_colours(tmp_path):
    from rsfm.spec import ClassInfo

    classes = tuple(ClassInfo(n, (255, 0, 255) if n == "water" else (0, 0, 0))
                    for n in ("dry", "water"))
    spec = make_spec(["VV", "VH"], ["dry", "water"])
    spec = type(spec)(spec.bands, classes=classes)
    ds = ChipDataset([S1 / "Spain_7370579_S1Hand.tif"], [S1_LABELS / "Spain_7370579_LabelHand.tif"],
                     spec)  # 1573 water pixels
    img = imread(show_batch(ds, n=1, path=tmp_path / "magenta.png", hide_classes=["dry"],
                            alpha=1.0))[..., :3]
    magenta = (img[..., 0] > 0.95) & (img[..., 1] < 0.05) & (img[..., 2] > 0.95)
    assert magenta.sum() > 100  # the water pixels, drawn in the spec's colour

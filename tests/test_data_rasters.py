"""Raster opening, band selection by name/description/configuration, grids, nodata."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import LANDSAT7, RGBN, S1, S1_LABELS, S2_CHIP, write_tif
from rasterio.windows import Window

from rsfm.bands import declared_band
from rsfm.data import rasters
from rsfm.data.rasters import (
    bands_of_file,
    check_same_grid,
    inspect_raster,
    invalid_mask,
    read_window,
    select_bands,
)
from rsfm.errors import BandError, DataError


def test_select_by_file_descriptions_and_common_names():
    info = inspect_raster(S2_CHIP)  # real S2 chip: descriptions B1..B12 incl. B8A
    sel = select_bands(info, ["B02", "NIR_NARROW", "B8", "SWIR_1"])
    assert sel.indexes == (2, 9, 8, 12)
    assert sel.names == ("B2", "NIR_NARROW", "B8", "SWIR_1")  # catalog names
    assert [b.common_name for b in sel.bands] == ["BLUE", "NIR_NARROW", "NIR_BROAD", "SWIR_1"]
    assert select_bands(info, ["B8A"]).indexes == (9,)  # exact name first
    # the one matcher uses each file band once
    with pytest.raises(BandError, match=r"select band 'B8A' of .*S2Hand.tif' twice"):
        select_bands(info, ["NIR_NARROW", "B8A"])
    assert [b.name for b in bands_of_file(S2_CHIP)][7:10] == ["B8", "B8A", "B9"]


def test_select_without_descriptions_needs_order(tmp_path):
    info = inspect_raster(RGBN)  # 4 bands, no descriptions: order known only by configuration
    with pytest.raises(BandError, match="file_bands"):
        select_bands(info, ["NIR"])
    sel = select_bands(info, ["NIR", "RED"], file_bands=["RED", "GREEN", "BLUE", "NIR"])
    assert sel.indexes == (4, 1)
    assert select_bands(info, [4, "band1"]).indexes == (4, 1)
    assert select_bands(info, [declared_band("band2")]).indexes == (2,)
    assert [b.name for b in bands_of_file(RGBN)] == ["band1", "band2", "band3", "band4"]
    with pytest.raises(BandError, match="out of range"):
        select_bands(info, [5])
    with pytest.raises(BandError, match="out of range"):
        select_bands(info, ["band5"])
    # sensor order: 4-band NAIP is R, G, B, N
    assert select_bands(info, ["NIR_BROAD"], sensor="naip").indexes == (4,)


def test_rgb_colour_interpretation_names_bands():
    info = inspect_raster(LANDSAT7)
    assert select_bands(info).names == ("RED", "GREEN", "BLUE")
    assert select_bands(info, ["BLUE"]).indexes == (3,)


def test_sen1floods11_label_grid_matches_within_float_noise():
    # the label's pixel size differs from the image's in the 13th digit: same grid
    img = inspect_raster(S1 / "Bolivia_312675_S1Hand.tif")
    lab = inspect_raster(S1_LABELS / "Bolivia_312675_LabelHand.tif")
    assert img.transform != lab.transform
    check_same_grid(img, lab)


def test_read_window_pads_outside_with_nodata(tmp_path):
    p = write_tif(tmp_path / "a.tif", np.arange(1, 17, dtype=np.uint16).reshape(1, 4, 4), nodata=0)
    out = read_window(p, Window(2, 2, 4, 4), [1])
    assert out.shape == (1, 4, 4)
    assert out[0, 0, 0] == 11 and out[0, 3, 3] == 0


def test_invalid_mask_rules():
    data = np.array([[[0, 5], [np.nan, 1]], [[0, 0], [2, 1]]], dtype=np.float32)
    bad_values, bad = invalid_mask(data, nodata=0)
    # pixel (0,0): all bands nodata; (1,0): NaN in one band; (0,1): only one band is 0 -> valid
    assert bad.tolist() == [[True, False], [True, False]]
    assert bad_values[:, 0, 0].all() and not bad_values[1, 0, 1]


def test_handles_reopen_after_fork(monkeypatch):
    ds1 = rasters.get_handle(S2_CHIP)
    assert rasters.get_handle(S2_CHIP) is ds1
    monkeypatch.setattr(rasters, "_handles_pid", -1)  # as seen from a forked worker
    ds2 = rasters.get_handle(S2_CHIP)
    assert ds2 is not ds1 and not ds2.closed


def test_missing_and_directory_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        inspect_raster(tmp_path / "nope.tif")
    with pytest.raises(DataError, match="directory"):
        inspect_raster(tmp_path)


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, rsfm.data; print('torch' in sys.modules, 'rasterio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

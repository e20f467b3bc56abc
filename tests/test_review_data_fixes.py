"""Review fixes of the data layer: spread label checks, bounded size checks, one text reader,
one disk-full message."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from data_fixtures import S1_SPEC, write_tif

from rsfm.data.labels import LabelRules
from rsfm.errors import DataError


def _scene(tmp_path, labelled_rows: slice):
    """A 4096 x 512 scene (64 tiles of 64 px in row order) labelled in ``labelled_rows``."""
    image = np.ones((2, 4096, 512), np.float32)
    label = np.full((4096, 512), 255, np.uint8)  # 255 = no label
    label[labelled_rows] = 1
    return (write_tif(tmp_path / "scene.tif", image, descriptions=["VV", "VH"]),
            write_tif(tmp_path / "label.tif", label))


def _check(tmp_path, labelled_rows: slice, tile: int = 64) -> list[str]:
    from rsfm.data.scenes import SceneDataset
    from rsfm.datasets import Datasets, check_datasets

    image, label = _scene(tmp_path, labelled_rows)
    ds = SceneDataset(image, label, S1_SPEC, tile_size=tile, skip_nodata=False,
                      label_rules=LabelRules(ignore_values=(255,)))
    return check_datasets(Datasets(train=ds))


def test_a_scene_labelled_only_in_its_lower_half_passes(tmp_path):
    lines = _check(tmp_path, slice(2048, None))
    assert "pixels with a class" in lines[0]


def test_an_unlabelled_scene_read_whole_is_an_error(tmp_path):
    with pytest.raises(DataError, match="nothing to learn"):
        _check(tmp_path, slice(0, 0), tile=512)  # 8 tiles: all read


def test_labels_missed_by_the_sample_only_warn(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rsfm.datasets"):
        _check(tmp_path, slice(4000, 4001), tile=16)  # 8,192 tiles, one labelled row
    assert "No label pixel" in caplog.text


def test_class_folder_sizes_are_checked_on_a_spread_sample(tmp_path):
    from rsfm.data.class_folders import ClassFolderDataset

    for name in ("dry", "water"):
        (tmp_path / name).mkdir()
        for i in range(10):
            size = 8 if (name, i) == ("water", 9) else 32  # the last file of the last class
            write_tif(tmp_path / name / f"{i}.tif", np.ones((2, size, size), np.float32),
                      descriptions=["VV", "VH"])
    ds = ClassFolderDataset(tmp_path, S1_SPEC)
    opened = []
    plan = ds.reader.plan
    ds.reader.plan = lambda path: opened.append(path) or plan(path)  # type: ignore[method-assign]
    with pytest.raises(DataError, match=r"9\.tif' is 8x8 pixels, smaller than data.tile_size"):
        ds.check_sizes(16, per_class=4)
    assert len(opened) == 8  # 4 per class folder, first and last included


# ------------------------------------------------------------------------ one text reader
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_read_text_takes_utf8_and_utf16_with_a_bom(tmp_path, encoding):
    from rsfm.io import read_text

    path = tmp_path / "f.txt"
    path.write_bytes("España: 1\n".encode(encoding))
    assert read_text(path, "Recipe file") == "España: 1\n"


def test_read_text_names_the_file_it_refuses(tmp_path):
    from rsfm.errors import ConfigError
    from rsfm.io import read_text

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("Espa\xf1a\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"Recipe file '.*latin\.yaml' is not UTF-8 or UTF-16"):
        read_text(latin, "Recipe file")
    tif = write_tif(tmp_path / "x.tif", np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"'.*x\.tif' is a binary file \(a TIFF image\?\)"):
        read_text(tif, "ArcGIS map file", error=DataError)
    assert read_text(latin, "map", errors="replace") == "Espa\ufffda\n"


def test_a_recipe_saved_as_utf16_loads(tmp_path):
    from rsfm.recipe import read_text_file

    path = tmp_path / "r.yaml"
    path.write_bytes("name: t\n".encode("utf-16"))
    assert read_text_file(path) == "name: t\n"


# ------------------------------------------------------------------------ disk full
def test_only_write_errors_count_as_a_full_disk():
    import errno

    from safetensors import SafetensorError

    from rsfm.io import disk_full_message, disk_full_reason

    assert disk_full_reason(OSError(errno.ENOSPC, "No space left on device")) is not None
    assert disk_full_reason(SafetensorError("Error while serializing: File too large"))
    assert disk_full_reason(RuntimeError("write failed: No space left on device"))

    class HubError(OSError):  # huggingface_hub's HTTP errors are OSErrors without errno
        pass

    assert disk_full_reason(HubError("413: file too large for this repository")) is None
    assert disk_full_reason(ValueError("file too large")) is None
    text = disk_full_message("'o.tif'", "File too large")
    assert text.startswith("Cannot write 'o.tif': disk full") and "another disk" in text


def test_cli_reports_a_full_disk_only_for_write_errors(capsys, tmp_path, monkeypatch):
    import errno

    monkeypatch.setenv("RSFM_TRACEBACK_DIR", str(tmp_path))

    from rsfm.cli import run_guarded

    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/x/out.tif")

    assert run_guarded("t", full) == 2
    assert "Cannot write '/x/out.tif': disk full" in capsys.readouterr().err

    class HubError(OSError):
        pass

    def hub() -> None:
        raise HubError("413 Client Error: file too large")

    assert run_guarded("t", hub) == 1  # not a full disk: an unexpected error
    assert "disk full" not in capsys.readouterr().err

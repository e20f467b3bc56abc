"""One composite rule and one class-map rule for every picture (rsfm.display)."""

from __future__ import annotations

import numpy as np
import pytest

from rsfm.bands import declared_band, resolve_bands
from rsfm.display import class_rgb, composite_image, rgb_composite
from rsfm.errors import ConfigError


@pytest.mark.parametrize(("names", "label", "picked"), [
    (["B1", "B2", "B3", "B4", "B8", "B11", "B12"], "true colour", ["B4", "B3", "B2"]),
    (["GREEN", "RED", "NIR_NARROW"], "colour infrared", ["NIR_NARROW", "RED", "GREEN"]),
    (["RED", "NIR_NARROW", "SWIR_1", "SWIR_2"], "SWIR false colour", ["SWIR_2", "NIR_NARROW", "RED"]),
    (["VV", "VH"], "SAR", ["VV", "VH"]),
])
def test_composite_from_named_bands(names, label, picked):
    """12-band data used to be shown as bands 1-3 (coastal, blue, green)."""
    bands = resolve_bands(names)
    comp = rgb_composite(bands)
    assert comp.label.startswith(label)
    assert [bands[i].name for i in comp.indexes] == picked


def test_unknown_bands_are_grey_and_user_choice_wins():
    bands = [declared_band("DEM"), declared_band("QA")]
    assert rgb_composite(bands).indexes == (0,)
    assert rgb_composite(bands, rgb=["QA"]).indexes == (1,)
    with pytest.raises(ConfigError, match="'RED' is not one of the image's channels"):
        rgb_composite(bands, rgb=["RED", "GREEN", "BLUE"])


def test_sar_composite_adds_the_difference_channel():
    img = np.stack([np.linspace(-20, 0, 100).reshape(10, 10), np.full((10, 10), -25.0)])
    pic = composite_image(img, rgb_composite(resolve_bands(["VV", "VH"])))
    assert pic.shape == (10, 10, 3) and pic.min() >= 0 and pic.max() <= 1
    assert np.allclose(pic[..., 0], pic[..., 2], atol=1e-6)  # VV - VH follows VV when VH is flat


def test_ignored_pixels_are_striped_not_a_class_colour():
    colors = [(60, 60, 60), (0, 0, 0), (255, 255, 255)]  # even black and white are classes
    mask = np.full((8, 8), -1)
    mask[:, :4] = 1
    pic = class_rgb(mask, colors, ignore_index=-1)
    assert np.allclose(pic[:, :4], 0)
    ignored = pic[:, 4:].reshape(-1, 3)
    assert {tuple(v) for v in ignored} == {(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)}  # both: a pattern


def test_training_prediction_plot_uses_named_rgb_bands(tmp_path, monkeypatch):
    """plots/predictions.png showed bands 1-3 (coastal, blue, green) of 12-band data."""
    from rsfm.spec import ClassInfo, InputSpec
    from rsfm.train import plots

    bands = resolve_bands(["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"])
    spec = InputSpec(bands=tuple(bands), classes=(ClassInfo("dry", (60, 60, 60)),
                                                  ClassInfo("water", (0, 114, 178))))
    titles = []
    real = plots._fig

    def spy():
        plt = real()
        orig = plt.Axes.set_title

        def set_title(self, label, *a, **k):
            titles.append(label)
            return orig(self, label, *a, **k)

        monkeypatch.setattr(plt.Axes, "set_title", set_title)
        return plt

    monkeypatch.setattr(plots, "_fig", spy)
    rng = np.random.default_rng(0)
    mask = rng.integers(-1, 2, (16, 16))
    out = plots.plot_predictions([rng.normal(size=(12, 16, 16))], [mask], [mask.clip(0)], spec,
                                 tmp_path / "p.png")
    assert out.exists() and titles[0] == "true colour: B4, B3, B2"

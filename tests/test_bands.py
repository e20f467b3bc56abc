import pytest

from rsfm.bands import get_band, list_sensors, resolve_bands, sensor_bands, wavelengths
from rsfm.errors import BandError


@pytest.mark.parametrize(
    ("name", "common", "wavelength"),
    [
        ("B02", "BLUE", 0.490), ("B2", "BLUE", 0.490), ("BLUE", "BLUE", 0.490),
        ("B8A", "NIR_NARROW", 0.865), ("b8a", "NIR_NARROW", 0.865), ("B08", "NIR_BROAD", 0.842),
        ("landsat8:B5", "NIR_NARROW", 0.865), ("L8:B10", "THERMAL_INFRARED_1", 10.895),
        ("VV", "VV", 5.405), ("sentinel1:VH", "VH", 5.405), ("NIR", "NIR_BROAD", 0.842),
        ("hls:B8A", "NIR_NARROW", 0.865), ("SR_B4", "RED", 0.655),
    ],
)
def test_names_and_aliases_resolve(name, common, wavelength):
    band = get_band(name)
    assert band.common_name == common
    assert band.wavelength_um == pytest.approx(wavelength, abs=1e-3)


def test_sensor_context_and_priority():
    assert get_band("B5").common_name == "RED_EDGE_1"  # bare names: Sentinel-2 first
    assert get_band("B5", sensor="landsat8").common_name == "NIR_NARROW"
    assert get_band("RED", sensor="landsat8").name == "B4"  # common names work on any sensor


def test_catalog_covers_the_sensors():
    assert len(sensor_bands("sentinel2")) == 13
    assert {b.name for b in sensor_bands("hls")} == {"BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"}
    assert {"sentinel2", "landsat8", "landsat9", "hls", "sentinel1", "naip", "rgb"} <= set(list_sensors())
    assert all(b.wavelength_um > 0 for s in list_sensors() for b in sensor_bands(s))


def test_unknown_band_suggests_close_names():
    with pytest.raises(BandError, match=r"Unknown band 'B8AA'.*Did you mean"):
        get_band("B8AA")
    with pytest.raises(BandError, match="not a landsat8 band"):
        get_band("B8A", sensor="landsat8")
    with pytest.raises(BandError, match="Unknown sensor"):
        get_band("B1", sensor="sentinal2")


def test_duplicates_are_rejected_and_wavelengths_follow_order():
    with pytest.raises(BandError, match="listed twice"):
        resolve_bands(["B02", "B2"])
    assert wavelengths(["B04", "B03", "B02"]) == [0.665, 0.56, 0.49]


def test_pretrained_filters_are_matched_by_the_one_band_matcher():
    from rsfm.bands import declared_band, match_bands
    from rsfm.cards import get_card
    from rsfm.models.weights import map_bands

    card = get_card("prithvi_eo_v2_300m").catalog_bands()  # HLS: BLUE GREEN RED NIR_NARROW SWIR_1 SWIR_2
    wanted = [*resolve_bands(["landsat8:B5", "B04"]), declared_band("DEM")]
    index, report = map_bands(card, wanted)
    assert index == match_bands(wanted, card) == [3, 2, None]
    assert report.kept == ["B5<-NIR_NARROW", "B4<-RED"] and report.initialized == ["DEM"]
    assert report.scale == 2.0

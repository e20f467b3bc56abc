"""Sensor band catalog: names, aliases, central wavelengths and bandwidths.

Every band has a *common name* that says what it measures (``BLUE``, ``NIR_NARROW``, ``VV``...).
Pretrained input layers are matched on common names, so ``B8A`` (Sentinel-2), ``B5`` (Landsat 8)
and ``NIR_NARROW`` (HLS) all reach Prithvi's NIR filter. Wavelengths are in micrometres.

Names resolve in this order:

1. ``"sensor:name"`` (e.g. ``"landsat8:B5"``) picks that sensor's band;
2. a common name (``"RED"``) gives the generic band of that name;
3. a sensor-specific name or alias (``"B8A"``, ``"B02"``) is looked up in the ``sensor`` argument
   when given, else in every sensor in this order: Sentinel-2, Landsat 8, HLS, Sentinel-1, NAIP,
   RGB. So bare ``"B5"`` is Sentinel-2's red edge; Landsat users write ``"landsat8:B5"``, pass
   ``sensor="landsat8"``, or use the common name ``"NIR_NARROW"``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from rsfm.config import is_wavelength
from rsfm.errors import BandError

__all__ = [
    "SENSORS",
    "SPECTRAL_INDICES",
    "Band",
    "band_names",
    "custom_band",
    "declared_band",
    "get_band",
    "list_sensors",
    "match_bands",
    "resolve_band",
    "resolve_bands",
    "sensor_bands",
    "wavelengths",
]


@dataclass(frozen=True)
class Band:
    """One input band: a catalog band, or a band the user declared (DEM, QA, a land-cover layer).

    Attributes:
        name: The band's name on its sensor (``"B8A"``), its common name for generic bands, or
            the declared name.
        common_name: What the band measures (``"NIR_NARROW"``); used to match pretrained filters.
            ``None`` for declared bands that are not spectral (they match by exact name only).
        wavelength_um: Central wavelength in micrometres (C-band SAR: 5.405); ``None`` when
            the band has none (an elevation model, a mask).
        bandwidth_um: Full width at half maximum in micrometres (0 when not meaningful).
        sensor: Catalog sensor key, ``"generic"``, or ``"custom"`` for declared bands.
        description: Free text for declared bands (shown in reports and model cards).
        aliases: Other spellings that resolve to this band (``"B08"``, ``"B8"``).
    """

    name: str
    common_name: str | None
    wavelength_um: float | None
    bandwidth_um: float = 0.0
    sensor: str = "generic"
    description: str = field(default="", compare=False)
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def qualified_name(self) -> str:
        """``sensor:name``, unambiguous anywhere."""
        return f"{self.sensor}:{self.name}"


def _b(name: str, common: str, wl: float, bw: float, *aliases: str) -> tuple:
    return (name, common, wl, bw, aliases)


# Generic bands: one per common name. Wavelengths follow Sentinel-2 where it has the band, the
# conventions DOFA and TerraTorch use (BLUE 0.49, GREEN 0.56, RED 0.665, NIR_NARROW 0.865).
_GENERIC = [
    _b("COASTAL_AEROSOL", "COASTAL_AEROSOL", 0.443, 0.021, "COASTAL", "AEROSOL"),
    _b("BLUE", "BLUE", 0.490, 0.066, "B"),
    _b("GREEN", "GREEN", 0.560, 0.036, "G"),
    _b("RED", "RED", 0.665, 0.031, "R"),
    _b("RED_EDGE_1", "RED_EDGE_1", 0.705, 0.015, "REDEDGE1", "RE1"),
    _b("RED_EDGE_2", "RED_EDGE_2", 0.740, 0.015, "REDEDGE2", "RE2"),
    _b("RED_EDGE_3", "RED_EDGE_3", 0.783, 0.020, "REDEDGE3", "RE3"),
    _b("NIR_BROAD", "NIR_BROAD", 0.842, 0.106, "NIR", "N"),
    _b("NIR_NARROW", "NIR_NARROW", 0.865, 0.021, "NIR08", "NARROW_NIR"),
    _b("WATER_VAPOR", "WATER_VAPOR", 0.945, 0.020, "WATER_VAPOUR", "WV"),
    _b("CIRRUS", "CIRRUS", 1.375, 0.030),
    _b("SWIR_1", "SWIR_1", 1.610, 0.094, "SWIR1", "SWIR16"),
    _b("SWIR_2", "SWIR_2", 2.190, 0.185, "SWIR2", "SWIR22"),
    _b("PANCHROMATIC", "PANCHROMATIC", 0.590, 0.180, "PAN"),
    _b("THERMAL_INFRARED_1", "THERMAL_INFRARED_1", 10.895, 0.590, "TIR1", "LWIR11", "THERMAL"),
    _b("THERMAL_INFRARED_2", "THERMAL_INFRARED_2", 12.005, 1.010, "TIR2", "LWIR12"),
    # C-band SAR (Sentinel-1): polarisations share the radar wavelength.
    _b("VV", "VV", 55.465 / 10.262, 0.0),
    _b("VH", "VH", 55.465 / 10.262, 0.0),
    _b("HH", "HH", 55.465 / 10.262, 0.0),
    _b("HV", "HV", 55.465 / 10.262, 0.0),
]

_SENTINEL2 = [
    _b("B1", "COASTAL_AEROSOL", 0.443, 0.021, "B01"),
    _b("B2", "BLUE", 0.490, 0.066, "B02"),
    _b("B3", "GREEN", 0.560, 0.036, "B03"),
    _b("B4", "RED", 0.665, 0.031, "B04"),
    _b("B5", "RED_EDGE_1", 0.705, 0.015, "B05"),
    _b("B6", "RED_EDGE_2", 0.740, 0.015, "B06"),
    _b("B7", "RED_EDGE_3", 0.783, 0.020, "B07"),
    _b("B8", "NIR_BROAD", 0.842, 0.106, "B08"),
    _b("B8A", "NIR_NARROW", 0.865, 0.021, "B08A", "B8a"),
    _b("B9", "WATER_VAPOR", 0.945, 0.020, "B09"),
    _b("B10", "CIRRUS", 1.375, 0.030),  # L1C only: L2A products drop the cirrus band
    _b("B11", "SWIR_1", 1.610, 0.094),
    _b("B12", "SWIR_2", 2.190, 0.185),
]

# Landsat 8/9 OLI + TIRS (Collection 2 band numbers; also "SR_B4", "ST_B10" product names).
_LANDSAT89 = [
    _b("B1", "COASTAL_AEROSOL", 0.443, 0.016, "SR_B1", "B01"),
    _b("B2", "BLUE", 0.482, 0.060, "SR_B2", "B02"),
    _b("B3", "GREEN", 0.561, 0.057, "SR_B3", "B03"),
    _b("B4", "RED", 0.655, 0.037, "SR_B4", "B04"),
    _b("B5", "NIR_NARROW", 0.865, 0.028, "SR_B5", "B05"),
    _b("B6", "SWIR_1", 1.609, 0.085, "SR_B6", "B06"),
    _b("B7", "SWIR_2", 2.201, 0.187, "SR_B7", "B07"),
    _b("B8", "PANCHROMATIC", 0.590, 0.172, "B08"),
    _b("B9", "CIRRUS", 1.373, 0.020, "B09"),
    _b("B10", "THERMAL_INFRARED_1", 10.895, 0.590, "ST_B10"),
    _b("B11", "THERMAL_INFRARED_2", 12.005, 1.010),
]

# Harmonized Landsat Sentinel-2: the six bands Prithvi was pretrained on, with HLS L30 names
# ("B02".."B07") and the S30 spellings as aliases where they do not clash with L30.
_HLS = [
    _b("BLUE", "BLUE", 0.490, 0.066, "HLS_BLUE"),
    _b("GREEN", "GREEN", 0.560, 0.036, "HLS_GREEN"),
    _b("RED", "RED", 0.665, 0.031, "HLS_RED"),
    _b("NIR_NARROW", "NIR_NARROW", 0.865, 0.021, "HLS_NIR", "B8A"),
    _b("SWIR_1", "SWIR_1", 1.610, 0.094, "HLS_SWIR1", "B11"),
    _b("SWIR_2", "SWIR_2", 2.190, 0.185, "HLS_SWIR2", "B12"),
]

_SENTINEL1 = [
    _b("VV", "VV", 55.465 / 10.262, 0.0),
    _b("VH", "VH", 55.465 / 10.262, 0.0),
]

_NAIP = [
    _b("R", "RED", 0.635, 0.070, "RED"),
    _b("G", "GREEN", 0.555, 0.070, "GREEN"),
    _b("B", "BLUE", 0.470, 0.070, "BLUE"),
    _b("N", "NIR_BROAD", 0.830, 0.100, "NIR"),
]

_RGB = [
    _b("R", "RED", 0.665, 0.0, "RED"),
    _b("G", "GREEN", 0.560, 0.0, "GREEN"),
    _b("B", "BLUE", 0.490, 0.0, "BLUE"),
]


_NIR = ("NIR_BROAD", "NIR_NARROW")

# Spectral indices that can be appended as input channels (computed in rsfm.data.indices).
# name -> (first band roles, second band roles, description); index = (a - b) / (a + b).
SPECTRAL_INDICES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "NDVI": (_NIR, ("RED",), "vegetation: (NIR - RED) / (NIR + RED)"),
    "NDWI": (("GREEN",), _NIR, "open water (McFeeters): (GREEN - NIR) / (GREEN + NIR)"),
    "MNDWI": (("GREEN",), ("SWIR_1",), "water, modified: (GREEN - SWIR1) / (GREEN + SWIR1)"),
    "NDMI": (_NIR, ("SWIR_1",), "moisture: (NIR - SWIR1) / (NIR + SWIR1)"),
    "NBR": (_NIR, ("SWIR_2",), "burn ratio: (NIR - SWIR2) / (NIR + SWIR2)"),
    "NDBI": (("SWIR_1",), _NIR, "built-up: (SWIR1 - NIR) / (SWIR1 + NIR)"),
    "NDRE": (_NIR, ("RED_EDGE_1",), "red edge: (NIR - RE1) / (NIR + RE1)"),
    "NDSI": (("GREEN",), ("SWIR_1",), "snow: (GREEN - SWIR1) / (GREEN + SWIR1)"),
}


def _make(sensor: str, rows: list[tuple]) -> tuple[Band, ...]:
    return tuple(Band(n, c, wl, bw, sensor, aliases=tuple(a)) for n, c, wl, bw, a in rows)


SENSORS: dict[str, tuple[Band, ...]] = {
    "generic": _make("generic", _GENERIC),
    "sentinel2": _make("sentinel2", _SENTINEL2),
    "landsat8": _make("landsat8", _LANDSAT89),
    "landsat9": _make("landsat9", _LANDSAT89),
    "hls": _make("hls", _HLS),
    "sentinel1": _make("sentinel1", _SENTINEL1),
    "naip": _make("naip", _NAIP),
    "rgb": _make("rgb", _RGB),
}

# Short names people type for sensors in "sensor:band" strings.
_SENSOR_ALIASES = {
    "s2": "sentinel2", "sentinel-2": "sentinel2", "s2_l1c": "sentinel2", "s2_l2a": "sentinel2",
    "l8": "landsat8", "landsat-8": "landsat8", "l9": "landsat9", "landsat-9": "landsat9",
    "s1": "sentinel1", "sentinel-1": "sentinel1",
}

# Lookup order for bare sensor-specific names when the sensors agree on the common name.
_PRIORITY = ("sentinel2", "landsat8", "hls", "sentinel1", "naip", "rgb", "landsat9")


def _key(name: str) -> str:
    return name.strip().upper().replace("-", "_").replace(" ", "_")


def list_sensors() -> list[str]:
    """Return the sensor keys of the catalog."""
    return [s for s in SENSORS if s != "generic"]


def _sensor_key(sensor: str) -> str:
    key = sensor.strip().lower()
    key = _SENSOR_ALIASES.get(key, key)
    if key not in SENSORS:
        close = difflib.get_close_matches(key, list(SENSORS) + list(_SENSOR_ALIASES), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise BandError(f"Unknown sensor {sensor!r}.{hint} Known sensors: {list_sensors()}.")
    return key


def sensor_bands(sensor: str) -> list[Band]:
    """Return all bands of ``sensor`` in the sensor's native order."""
    return list(SENSORS[_sensor_key(sensor)])


def _match(band: Band, key: str) -> bool:
    return key == _key(band.name) or key in (_key(a) for a in band.aliases)


def get_band(name: str | Band, sensor: str | None = None) -> Band:
    """Resolve one band name (see the module docstring for the rules).

    Args:
        name: ``"B8A"``, ``"NIR_NARROW"``, ``"sentinel2:B8A"``, or a :class:`Band` (returned as is).
        sensor: Context sensor for bare names (``"landsat8"`` makes ``"B5"`` mean NIR).

    Returns:
        The catalog band.

    Raises:
        BandError: Unknown or ambiguous name; the message lists close matches or the candidates.
    """
    if isinstance(name, Band):
        return name
    if not isinstance(name, str) or not name.strip():
        raise BandError(f"Band names must be non-empty strings, got {name!r}.")
    if ":" in name:
        sensor, name = name.split(":", 1)
    key = _key(name)
    if sensor is not None:
        skey = _sensor_key(sensor)
        for band in SENSORS[skey]:
            if _match(band, key):
                return band
        for band in SENSORS[skey]:  # a common name picks that sensor's band ("RED" -> landsat8 B4)
            if key == _key(band.common_name):
                return band
        for band in SENSORS["generic"]:
            if _match(band, key):
                return band
        names = [b.name for b in SENSORS[skey]]
        raise BandError(f"Band {name!r} is not a {skey} band. {skey} bands: {names}.")
    for band in SENSORS["generic"]:
        if key == _key(band.name):
            return band
    candidates = [b for b in SENSORS["generic"] if _match(b, key)]
    candidates += [b for s in _PRIORITY for b in SENSORS[s] if _match(b, key)]
    if not candidates:
        known = {b.name for bands in SENSORS.values() for b in bands}
        close = difflib.get_close_matches(name.upper(), sorted(known), n=4)
        hint = f" Did you mean {close}?" if close else ""
        raise BandError(
            f"Unknown band {name!r}.{hint} Use a common name (BLUE, NIR_NARROW, SWIR_1, VV...), "
            f"a sensor band (B8A), or 'sensor:band' (landsat8:B5)."
        )
    return candidates[0]


def resolve_bands(names: Iterable[str | Band], sensor: str | None = None) -> list[Band]:
    """Resolve a list of band names; duplicate bands are an error."""
    names = list(names)
    bands = [resolve_band(n, sensor) for n in names]
    seen: dict[str, str] = {}
    for raw, band in zip(names, bands):
        label = raw if isinstance(raw, str) else raw.name
        if band.qualified_name in seen:
            raise BandError(f"Band {label!r} is listed twice (also as {seen[band.qualified_name]!r}).")
        seen[band.qualified_name] = label
    return bands


def band_names(bands: Iterable[Band]) -> list[str]:
    """Return the names of ``bands``."""
    return [b.name for b in bands]


def wavelengths(names: Iterable[str | Band], sensor: str | None = None) -> list[float | None]:
    """Central wavelengths (micrometres) of the named bands, in order."""
    return [b.wavelength_um for b in resolve_bands(names, sensor)]


def _wavelength(name: str, value: float) -> float:
    if not is_wavelength(value):
        raise BandError(f"Band {name!r}: wavelength {value!r} is not a finite number > 0 "
                        "(micrometres).")
    return float(value)


def custom_band(name: str, wavelength_um: float, common_name: str | None = None) -> Band:
    """A band the catalog does not know (e.g. a hyperspectral channel), usable with DOFA.

    Raises:
        BandError: A wavelength that is not a finite number > 0.
    """
    return replace(
        Band(name, common_name or _key(name), _wavelength(name, wavelength_um)), sensor="custom"
    )


def declared_band(name: str, wavelength_um: float | None = None, description: str = "",
                  sensor: str | None = None) -> Band:
    """A band the user declared: ``{name: DEM, wavelength: null}`` or ``{name: B4, wavelength: 0.66}``.

    A declared name that the catalog knows keeps its common name (so pretrained filters still
    match) and takes the declared wavelength when one is given. Any other name becomes a
    ``custom`` band without a common name: it matches only a band of the same name, so a DEM
    never borrows a spectral filter.
    """
    if not isinstance(name, str) or not name.strip():
        raise BandError(f"Band names must be non-empty strings, got {name!r}.")
    if sensor is not None:
        _sensor_key(sensor)  # a misspelt sensor is an error, not a reason to declare the band
    try:
        known = get_band(name, sensor)
    except BandError:
        known = None
    if known is not None:
        if wavelength_um is not None:
            known = replace(known, wavelength_um=_wavelength(name, wavelength_um))
        return replace(known, description=description) if description else known
    wave = None if wavelength_um is None else _wavelength(name, wavelength_um)
    return Band(name.strip(), None, wave, sensor="custom", description=description)


def resolve_band(spec: str | Band, sensor: str | None = None) -> Band:
    """The one band resolver: a catalog name, or a declared band, into a :class:`Band`.

    Args:
        spec: A band name (``"B8A"``, ``"landsat8:B5"``, ``"NIR_NARROW"``), a position
            (``"band3"``: the third band of files without band descriptions), or a :class:`Band`
            (returned as is). Declarations (``{name, wavelength, description}``) are turned
            into bands by :func:`declared_band`.
        sensor: Sensor of the data, for bare sensor-specific names.

    Raises:
        BandError: An unknown name; the message shows how to declare a band the catalog lacks.
    """
    if isinstance(spec, Band):
        return spec
    if isinstance(spec, str) and re.fullmatch(r"(?i)band\d+", spec.strip()):
        return declared_band(spec.strip())  # "band3": the file's third band, read by position
    try:
        return get_band(spec, sensor)
    except BandError as err:
        if not isinstance(spec, str) or ":" in spec:
            raise
        raise BandError(
            f"{err} For a layer that is not a catalog band (elevation, QA, land cover...), "
            f"declare it: {{name: {spec}, wavelength: null}} (wavelength in micrometres, or null)."
        ) from None


def _same_band(a: Band, b: Band) -> bool:
    if a.sensor != "custom" and b.sensor != "custom":  # two catalog bands: the same entry
        return (a.sensor, a.name) == (b.sensor, b.name)
    keys = {_key(b.name), *(_key(x) for x in b.aliases)}
    return _key(a.name) in keys or any(_key(x) in keys for x in a.aliases)


def match_bands(wanted: Iterable[Band], available: Iterable[Band]) -> list[int | None]:
    """The one band matcher: for each wanted band, the index of the available band it is.

    Used everywhere bands meet: a file's bands, a checkpoint's pretraining bands, a card's
    normalisation statistics. Rules, per wanted band in order: the same name (case and ``-``/
    ``_`` insensitive, aliases included; two catalog bands must be the same catalog entry, so
    Landsat's ``B5`` is not Sentinel-2's ``B5``), then the same common name (``B8A`` is
    ``NIR_NARROW`` is Landsat's ``B5``). Each available band is used at most once; bands without a common name
    (declared layers such as ``DEM``) match by name only.

    Returns:
        One index into ``available`` (or ``None`` when nothing matches) per wanted band.
    """
    wanted, available = list(wanted), list(available)
    used: set[int] = set()
    out: list[int | None] = []
    for band in wanted:
        hit = next((i for i, a in enumerate(available)
                    if i not in used and _same_band(band, a)), None)
        if hit is None and band.common_name is not None:
            hit = next((i for i, a in enumerate(available)
                        if i not in used and a.common_name == band.common_name), None)
        if hit is not None:
            used.add(hit)
        out.append(hit)
    return out

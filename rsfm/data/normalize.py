"""Normalisation of raw pixel values to model input, as an :class:`~rsfm.spec.Normalization` says.

Four modes (the spec's vocabulary), all of which set invalid (nodata / NaN) values to 0 *after*
normalising, i.e. to the band mean for ``"stats"``:

- ``"stats"``: ``(raw * value_scale - mean) / std`` per band, with mean/std from the backbone's
  adapter card (pretraining statistics) or from ``rsfm stats`` over the training set.
  ``value_scale`` converts the file's values to the units of the statistics, e.g. ``1e-4`` when
  the file stores reflectance x 10000 but the statistics are in reflectance (and 1 when both use
  the same scale).
- ``"per_tile"``: per tile and band, valid values to zero mean / unit variance.
- ``"minmax"``: per tile and band, valid values mapped to [0, 1] (simple RGB workflows).
- ``"none"``: ``raw * value_scale`` only.
"""

from __future__ import annotations

import warnings

import numpy as np

from rsfm.spec import Normalization

__all__ = ["Normalizer"]


class Normalizer:
    """Turn raw band values into normalised float32 model input.

    The statistics were checked when the :class:`~rsfm.spec.Normalization` was built (one per
    band, ``std > 0``), so this class only computes.

    Args:
        normalization: Mode, mean/std and value scale (default: none).
        eps: Guards divisions by zero for flat bands.
    """

    def __init__(self, normalization: Normalization | None = None, eps: float = 1e-6) -> None:
        self.normalization = normalization if normalization is not None else Normalization()
        n = self.normalization
        self.mode = n.mode
        self.mean = None if n.mean is None else np.asarray(n.mean, dtype=np.float32)
        self.std = None if n.std is None else np.asarray(n.std, dtype=np.float32)
        self.value_scale = float(n.value_scale)
        self.eps = eps

    def __call__(self, raw: np.ndarray, bad: np.ndarray | None = None, inplace: bool = False,
                 finite: bool = False) -> np.ndarray:
        """Normalise ``raw`` ``(C, ...)``.

        Args:
            raw: Raw values.
            bad: Boolean, same shape: invalid values (set to 0 in the output).
            inplace: ``raw`` is a float32 array the caller owns: normalise it in place (saves
                an allocation per tile, which is what costs most in a VM).
            finite: ``raw`` cannot hold NaN/inf (integer file read as float).
        """
        own = inplace and raw.dtype == np.float32
        x = raw if own else raw.astype(np.float32, copy=True)
        # NaN can only come from float input or from marking invalid values; skipping the final
        # clean-up otherwise keeps integer tiles (the common case) cheap.
        dirty = raw.dtype.kind == "f" and not finite
        if bad is not None and bad.any():
            x[bad] = np.nan  # excluded from per-tile statistics, set to 0 at the end
            dirty = True
        if self.value_scale != 1.0:
            x *= np.float32(self.value_scale)
        shape = (-1,) + (1,) * (x.ndim - 1)
        if self.mode == "stats":
            x -= self.mean.reshape(shape)
            x /= self.std.reshape(shape)
        elif self.mode in ("minmax", "per_tile"):
            flat = x.reshape(x.shape[0], -1)
            with np.errstate(all="ignore"), _quiet_nan():
                if self.mode == "minmax":
                    lo = np.nanmin(flat, axis=1)
                    span = np.nanmax(flat, axis=1) - lo
                    x -= np.nan_to_num(lo).reshape(shape)
                    x /= np.maximum(np.nan_to_num(span), self.eps).reshape(shape)
                else:
                    mu = np.nanmean(flat, axis=1)
                    sd = np.nanstd(flat, axis=1)
                    x -= np.nan_to_num(mu).reshape(shape)
                    x /= np.maximum(np.nan_to_num(sd), self.eps).reshape(shape)
        if dirty:
            x[~np.isfinite(x)] = 0.0
        return x


class _quiet_nan:
    """Silence numpy's 'All-NaN slice' warnings for all-nodata bands (handled: they become 0)."""

    def __enter__(self) -> None:
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)

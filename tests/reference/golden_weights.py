"""Exact synthetic tensors for the golden parity cases (weights and inputs).

Shared by ``make_golden.py`` (run in a throwaway venv with the reference packages) and
``tests/test_parity_golden.py`` (run in the project venv). It needs only NumPy and torch, and it
gives bit-identical values on any platform: a 32-bit integer hash of (seed, element index) is
turned into a float64 in [-1, 1) that is a multiple of 2**-23, then ``offset + scale * u`` is
rounded once to float32. NumPy's uint32 arithmetic wraps modulo 2**32 and its float64 arithmetic
is IEEE, so nothing depends on the BLAS, the thread count or the torch version's RNG.

Why weights are synthesised instead of stored: the reference architectures cannot all be made
small. ResNet-18 is the smallest ResNet the cards allow (11.2M parameters) and DOFA's weight
generator has a fixed 128-d transformer with a 2048-wide MLP and a ``128 -> 16*16*D`` head that no
constructor argument shrinks. Storing those would take tens of MB; the rule per tensor (in each
case's JSON) plus a SHA-256 of the regenerated state dict takes a few bytes.

A tensor rule is one of ``{"uniform": [offset, scale]}`` (``offset + scale * u``,
``u ~ U[-1, 1)``) or ``{"const": value}``.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterable, Mapping

import numpy as np
import torch

__all__ = ["make_input", "make_state", "make_tensor", "state_digest", "uniform"]

_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)


def _mix(x: np.ndarray) -> np.ndarray:
    """``lowbias32`` integer hash (C. Wellons) on a uint32 array; arithmetic wraps mod 2**32."""
    x = x ^ (x >> np.uint32(16))
    x = x * _M1
    x = x ^ (x >> np.uint32(15))
    x = x * _M2
    return x ^ (x >> np.uint32(16))


def uniform(shape: Iterable[int], seed: str) -> np.ndarray:
    """Float64 array of ``shape`` in [-1, 1), multiples of 2**-23, fixed by ``seed``."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    s = np.uint32(zlib.crc32(seed.encode("utf-8")))
    key = _mix(np.array([s], dtype=np.uint32))[0]
    h = _mix(_mix(np.arange(n, dtype=np.uint32) ^ key) + s)
    return ((h >> np.uint32(8)).astype(np.float64) / 2.0**23 - 1.0).reshape(shape)


def make_tensor(shape: Iterable[int], dtype: str, rule: Mapping[str, object], seed: str) -> torch.Tensor:
    """One tensor from its rule (see the module docstring)."""
    shape = tuple(int(s) for s in shape)
    if "const" in rule:
        return torch.full(shape, rule["const"], dtype=getattr(torch, dtype))
    offset, scale = rule["uniform"]
    values = float(offset) + float(scale) * uniform(shape, seed)
    if dtype != "float32":
        raise ValueError(f"uniform rule for a {dtype} tensor; only float32 is synthesised")
    return torch.from_numpy(values.astype(np.float32))


def make_state(weights: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The state dict described by a case's ``weights`` entry (keys in file order)."""
    seed = str(weights["seed"])
    return {
        spec["key"]: make_tensor(spec["shape"], spec["dtype"], spec["init"], f"{seed}/{spec['key']}")
        for spec in weights["layout"]
    }


def make_input(spec: Mapping[str, object]) -> torch.Tensor:
    """A run's input tensor from ``{"shape", "seed", "init"}``."""
    return make_tensor(spec["shape"], "float32", spec["init"], str(spec["seed"]))


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over keys, dtypes, shapes and raw bytes, in the dict's order."""
    digest = hashlib.sha256()
    for key, value in state.items():
        digest.update(f"{key}|{str(value.dtype).removeprefix('torch.')}|{list(value.shape)}|".encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()

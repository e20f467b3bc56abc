"""Global vs windowed (ViTDet) attention: a ViT-B/16 training pass at 1024 px, time and peak memory.

Backbone: the Prithvi-100M layout (``prithvi_eo_v1_100m``: embed 768, depth 12, heads 12, patch
16, 6 bands), random weights, batch 1, training mode, one pass = forward + backward of
``mean(last feature map)`` (no optimizer: the gradients are in the memory, optimizer state is
not). Windowed = ``--window`` tokens (default 14) in every block except the global blocks
(2, 5, 8, 11).

Configurations (each in fresh subprocesses, interleaved; see ``bench/_harness.py``):

* ``terratorch-global``: TerraTorch's ``terratorch_prithvi_eo_v1_100`` (timm blocks), when an
  interpreter with TerraTorch is found (``--peer-python``, ``RSFM_BENCH_PEER_PYTHON``, or this
  one); the named time baseline. Importing TerraTorch's registry sets
  ``torch.set_float32_matmul_precision("medium")`` for the whole process (bf16 matmuls on CPUs
  with AVX512-BF16, about 1.6x faster and not fp32); this configuration restores ``"highest"``;
* ``terratorch-global-as-imported``: the same with the precision TerraTorch's import leaves;
* ``timm-vit-b-global``: timm's ``vit_base_patch16_224`` at 1024 px with 6 input channels, the
  time baseline when TerraTorch is missing;
  (only when TerraTorch is missing, to keep ``make bench`` short);
* ``rsfm-global``: rsfm's global attention, the memory baseline;
* ``rsfm-window``: rsfm's windowed attention in the default ``window_mode="cls"`` (every window
  also holds the cls token; rsfm 0.1 semantics);
* ``rsfm-window-vitdet``: ``window_mode="vitdet"`` (ViTDet's windowed blocks exactly: no cls
  keys in the windows, no mask when the grid divides);
* ``rsfm-window-ws16``: 16-token windows, which tile the 64 x 64 grid of 1024 px without padding;
* ``rsfm-window-2global`` / ``rsfm-window-0global``: global blocks (5, 11) / none. These are
  *other models* (fewer global blocks than ViTDet's four), shown because they are the only way
  below the time floor that four global blocks set (see the FLOP column).

The ``fwd_GFLOP`` column counts the forward pass analytically (:func:`forward_gflop`: the block
matrix products plus the attention products over the keys each query sees, padding included).
A training step costs about 3x its forward, so the GFLOP ratio between two rows is the floor of
their time ratio: with ViTDet's four global blocks at 1024 px it is ~0.70x global attention.

Memory: peak RSS increase over the pass (allocator slack included) and the peak of live tensor
memory in the warm-up pass (torch profiler; allocator-independent).

    .venv/bin/python bench/bench_attention.py [--sizes 1024] [--window 14] [--reps 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from _harness import Config, add_arguments, machine_header, measure, serve, table, write_section

PEER_ENV = "RSFM_BENCH_PEER_PYTHON"


def forward_gflop(size: int, window: int = 0, global_blocks: tuple[int, ...] | None = None,
                  mode: str = "cls", *, patch: int = 16, dim: int = 768, depth: int = 12) -> float:
    """Forward GFLOP of the ViT-B blocks at ``size`` px (2 FLOP per multiply-add; patch embedding,
    norms and softmax left out: they are the same in every row or negligible).

    Per token a block does 12 dim^2 multiply-adds in its four Linear layers (qkv 3, proj 1, MLP 8)
    and 2 * keys * dim in attention (q k^T and attention x v), where ``keys`` is every token for
    global attention and the (padded) window, plus the cls key in ``"cls"`` mode, for windows.
    """
    side = size // patch
    tokens = side * side + 1  # + cls
    glob = (2, 5, 8, 11) if global_blocks is None else global_blocks
    linear = tokens * 12 * dim * dim
    padded_side = -(-side // window) * window if window else side
    total = 0.0
    for block in range(depth):
        if not window or block in glob:
            attn = tokens * tokens * 2 * dim
        else:  # padded windows of window^2 queries; cls keys in "cls" mode; the cls query is global
            keys = window * window + (1 if mode == "cls" else 0)
            attn = padded_side * padded_side * keys * 2 * dim + (tokens if mode == "cls" else 1) * 2 * dim
        total += linear + attn
    return 2 * total / 1e9


def build(p: dict[str, Any]) -> Any:
    """One forward + backward pass of the configured backbone (the harness times ``step``)."""
    import torch

    torch.manual_seed(0)
    size, kind = p["size"], p["kind"]
    x = torch.randn(1, 6, size, size)
    if kind == "terratorch":
        from terratorch.registry import BACKBONE_REGISTRY

        # Importing the registry runs torch.set_float32_matmul_precision("medium") (TerraTorch's
        # clay_v15 module), which makes every fp32 matmul in the process a bf16 one on CPUs with
        # AVX512-BF16. Restore true fp32 unless the configuration asks for TerraTorch as imported.
        torch.set_float32_matmul_precision(p.get("matmul_precision", "highest"))

        model = BACKBONE_REGISTRY.build("terratorch_prithvi_eo_v1_100", pretrained=False, num_frames=1,
                                        img_size=size)
    elif kind == "timm":
        import timm

        model = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=size, in_chans=6,
                                  num_classes=0)
        model.forward = model.forward_features  # tokens of the last block (no pooling)
    else:
        import rsfm

        model = rsfm.create_backbone("prithvi_eo_v1_100m", window_size=p.get("window") or None)
        if p.get("mode") or p.get("global_blocks") is not None:
            model.set_window_attention(p["window"], p.get("global_blocks"), window_mode=p.get("mode"))
    model.train()

    def step() -> None:
        out = model(x)
        out = out[-1] if isinstance(out, (list, tuple)) else out
        out.float().mean().backward()
        model.zero_grad(set_to_none=True)

    params = sum(t.numel() for t in model.parameters())
    glob = p.get("global_blocks")
    gflop = forward_gflop(size, p.get("window") or 0, None if glob is None else tuple(glob), p.get("mode") or "cls")
    return step, {"params_M": params / 1e6, "fwd_GFLOP": round(gflop)}


def peer_python(arg: str | None) -> str | None:
    """An interpreter that imports terratorch: ``arg``, ``$RSFM_BENCH_PEER_PYTHON``, or this one."""
    for cand in (arg, os.environ.get(PEER_ENV), sys.executable):
        if not cand:
            continue
        ok = subprocess.run([cand, "-c", "import terratorch.registry"], capture_output=True, check=False).returncode == 0
        if ok:
            return cand
    return None


def configs(size: int, window: int, peer: str | None) -> list[Config]:
    """The configurations at one size (TerraTorch first when available)."""
    out = []
    if peer:
        out.append(Config("terratorch-global", {"kind": "terratorch", "size": size}, python=peer,
                          note="TerraTorch Prithvi-100M layout (timm blocks), fp32 matmuls"))
        out.append(Config("terratorch-global-as-imported",
                          {"kind": "terratorch", "size": size, "matmul_precision": "medium"}, python=peer,
                          note="as `import terratorch.registry` leaves torch: matmul precision "
                               "'medium' (bf16 matmuls on this CPU)"))
    else:
        out.append(Config("timm-vit-b-global", {"kind": "timm", "size": size},
                          note="timm vit_base_patch16, 6 bands"))
    out += [
        Config("rsfm-global", {"kind": "rsfm", "size": size}, note="memory baseline"),
        Config("rsfm-window", {"kind": "rsfm", "size": size, "window": window},
               note=f"ws={window}, global blocks 2,5,8,11, window_mode=cls (default)"),
        Config("rsfm-window-vitdet", {"kind": "rsfm", "size": size, "window": window, "mode": "vitdet"},
               note="window_mode=vitdet"),
        Config("rsfm-window-ws16", {"kind": "rsfm", "size": size, "window": 16},
               note="ws=16 (no padding at 1024 px), global blocks 2,5,8,11"),
        Config("rsfm-window-2global", {"kind": "rsfm", "size": size, "window": window, "global_blocks": [5, 11]},
               note=f"ws={window}, global blocks 5,11 only: another model"),
        Config("rsfm-window-0global", {"kind": "rsfm", "size": size, "window": window, "global_blocks": []},
               note=f"ws={window}, no global block: another model"),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024])
    parser.add_argument("--window", type=int, default=14, help="window size in tokens")
    parser.add_argument("--only", nargs="+", default=None, help="run only these configurations")
    add_arguments(parser, reps=2, warmup=1, steps=1, timeout=1800)
    args = parser.parse_args()
    peer = peer_python(args.peer_python)
    header = machine_header(args.threads, args.jobs)
    print(header)
    sections = []
    for size in args.sizes:
        cfgs = [c for c in configs(size, args.window, peer) if not args.only or c.name in args.only]
        print(f"\n{size} px ({(size // 16) ** 2} tokens), forward + backward, batch 1:")
        res = measure(__file__, cfgs, reps=args.reps, warmup=args.warmup, steps=args.steps,
                      threads=args.threads, jobs=args.jobs, timeout=args.timeout, live_memory=True)
        names = {c.name for c in cfgs}
        tbase = next((n for n in ("terratorch-global", "timm-vit-b-global") if n in names), None)
        mbase = "rsfm-global" if "rsfm-global" in names else None
        md = table(res, time_baseline=tbase, memory_baseline=mbase, info_keys=["params_M", "fwd_GFLOP"])
        print(md)
        sections.append(f"### {size} px, ViT-B/16, forward + backward, batch 1\n\n{md}")
    note = "" if peer else ("\nTerraTorch was not found (pass `--peer-python` or set "
                            f"`{PEER_ENV}`); timm's ViT-B is the time baseline.\n")
    write_section(args.markdown, "Window attention (`bench_attention.py`)",
                  f"{header}\n{note}\n" + "\n\n".join(sections))


if __name__ == "__main__":
    if not serve(build):
        main()

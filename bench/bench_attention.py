"""Global vs windowed (ViTDet) attention: forward+backward time and peak memory of a ViT-B backbone.

Backbone: ``prithvi_eo_v1_100m`` (ViT-B/16, 12 blocks, width 768, random init, 6 bands), batch 1,
training mode, loss = mean of the last feature map. Windowed = ``window_size`` tokens (default 14)
in every block except the default global blocks (2, 5, 8, 11).

Each (size, mode) runs in a fresh subprocess so memory numbers do not mix:

* time: median wall-clock of ``--iters`` forward+backward passes after one warm-up pass;
* memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the allocation before the pass;
  on CPU the peak resident-set increase during the passes (Linux ``VmHWM`` - ``VmRSS`` measured
  just before the first pass, with model and input already built), i.e. activations, attention
  buffers and gradients, as the OS sees them.

    .venv/bin/python bench/bench_attention.py [--sizes 224 512 1024] [--iters 2] [--window 14]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def _proc_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(size: int, window: int, iters: int, device: str) -> dict[str, float]:
    import torch

    import rsfm

    torch.manual_seed(0)
    model = rsfm.create_backbone("prithvi_eo_v1_100m", window_size=window or None).to(device).train()
    x = torch.randn(1, model.in_chans, size, size, device=device)
    cuda = device.startswith("cuda")

    def step() -> None:
        model(x)[-1].mean().backward()
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _proc_kb("VmRSS") * 1024
    step()  # warm-up (also the first memory peak)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() if cuda else _proc_kb("VmHWM") * 1024
    return {"time_s": statistics.median(times), "peak_mib": (peak - base) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 512, 1024])
    parser.add_argument("--iters", type=int, default=2, help="timed passes after one warm-up")
    parser.add_argument("--window", type=int, default=14, help="window size in tokens")
    parser.add_argument("--device", default="cuda" if _has_cuda() else "cpu")
    parser.add_argument("--worker", nargs=2, type=int, metavar=("SIZE", "WINDOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.iters, args.device)))
        return
    import torch

    print(f"ViT-B/16 (prithvi_eo_v1_100m, random init), batch 1, fwd+bwd, device={args.device}, "
          f"threads={torch.get_num_threads()}, window={args.window} tokens, global blocks (2, 5, 8, 11)")
    mem_kind = "CUDA max allocated" if args.device.startswith("cuda") else "peak RSS increase"
    print(f"memory = {mem_kind}; time = median of {args.iters} passes after 1 warm-up\n")
    header = f"{'size':>5} {'tokens':>6} | {'global s':>9} {'window s':>9} {'speed-up':>8} | " \
             f"{'global MiB':>10} {'window MiB':>10} {'mem ratio':>9}"
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        res = {}
        for name, window in (("global", 0), ("window", args.window)):
            cmd = [sys.executable, __file__, "--worker", str(size), str(window), "--iters", str(args.iters),
                   "--device", args.device]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res[name] = json.loads(out.strip().splitlines()[-1])
        g, w = res["global"], res["window"]
        print(f"{size:>5} {(size // 16) ** 2:>6} | {g['time_s']:>9.2f} {w['time_s']:>9.2f} "
              f"{g['time_s'] / w['time_s']:>7.2f}x | {g['peak_mib']:>10.0f} {w['peak_mib']:>10.0f} "
              f"{g['peak_mib'] / max(w['peak_mib'], 1e-9):>8.2f}x", flush=True)


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    main()

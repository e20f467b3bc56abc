"""Quality against a plain loop: rsfm's recipe vs ``segmentation_models_pytorch`` in a plain loop.

For each dataset (Sen1Floods11 chips, Dubai aerial tiles; files, fixed splits and provenance in
``_quality_data.py``) both sides train a ResNet-18 UNet from random init on the same 128-px
tiles, normalisation, augmentation (flips, quarter turns), AdamW 3e-3, warmup + cosine, CE +
Dice, batch 16, keep the best epoch on the validation split and are scored on the test split by
the same code (``rsfm.predict`` sliding windows over the whole test images, pooled confusion,
mIoU). rsfm trains through its public path (recipe, ``rsfm.train``, ``rsfm.from_pretrained``);
the plain side is ``_quality_plain.py``.

Protocol. Every run is a fresh subprocess; rsfm and plain runs alternate (the order flips every
seed) so slow phases of a shared machine hit both sides. With ``--budget-seconds B`` (default)
each side first runs one probe of ``B`` seconds to learn how many optimizer steps it completes
in ``B`` seconds, then every seed trains for that many steps, so the schedule ends at about
``B`` (a run that overshoots ``1.25 B`` is stopped). ``--steps N`` instead gives both sides the
same N steps (for comparisons on a busy machine). The table reports test mIoU mean ± std over
seeds, steps, training wall and CPU seconds (the process's CPU time: all threads) and ratios.
Wall-clock numbers are only meaningful on an otherwise idle machine.

Why not rsfm's own ``train.max_time``: it stops rsfm at ``B`` and decays the schedule by time,
but the plain loop has no such schedule, so the two sides would decay differently, and each seed
would get a different step count from the load of that moment. Probing once per side, then
training every seed for the probed number of steps with the same step-based warmup + cosine,
compares equal budgets with one schedule shape and leaves the load only in the probe.

    .venv/bin/python bench/bench_quality.py [--budget-seconds 187] [--seeds 3]
        [--datasets sen1floods11,dubai] [--steps N] [--jobs 1] [--threads T]
        [--set train.clip_grad_norm=null ...] [--plain-model smp|rsfm] [--plain-loss smp|rsfm]

Needs ``pip install segmentation-models-pytorch`` and the shared data folder
(``RSFM_BENCH_DATA``, default ``../shared/data``). Writes ``bench/RESULTS_quality.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _harness import run_logged

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# ----------------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> None:
    """One training run in this process; writes its result JSON."""
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*not georeferenced.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="rasterio")
    if args.threads:
        torch.set_num_threads(args.threads)
    from _quality_data import band_stats, load_dataset

    import rsfm

    ds = load_dataset(args.dataset)
    mean, std = band_stats(ds)
    workdir = Path(args.workdir)
    load0 = os.getloadavg()[0]
    budget = args.budget
    if args.side == "rsfm":
        import _quality_rsfm

        out = _quality_rsfm.run(ds, mean, std, seed=args.seed, max_steps=args.max_steps,
                                budget=budget, workdir=workdir, overrides=args.set,
                                backbone=args.encoder)
    else:
        import _quality_plain

        out = _quality_plain.run(ds, mean, std, seed=args.seed, max_steps=args.max_steps,
                                 budget=budget, workdir=workdir, model_kind=args.plain_model,
                                 loss_kind=args.plain_loss, encoder=args.encoder)
    out.update(dataset=args.dataset, seed=args.seed, max_steps=args.max_steps,
               torch_threads=torch.get_num_threads(), rsfm_file=rsfm.__file__,
               load_before=load0, load_after=os.getloadavg()[0], mean=mean, std=std,
               overrides=list(args.set), plain_model=args.plain_model,
               plain_loss=args.plain_loss, encoder=args.encoder)
    Path(args.out).write_text(json.dumps(out, indent=1))


# ----------------------------------------------------------------------------- driver
def _launch(args: argparse.Namespace, side: str, dataset: str, seed: int, max_steps: int,
            budget: float | None, tag: str) -> dict[str, Any]:
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"{tag}.json"
    if args.reuse and out.exists():
        return json.loads(out.read_text())
    work = Path(tempfile.mkdtemp(prefix=f"rsfm_bq_{tag}_"))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", "--side", side,
           "--dataset", dataset, "--seed", str(seed), "--max-steps", str(max_steps),
           "--workdir", str(work), "--out", str(out), "--plain-model", args.plain_model,
           "--plain-loss", args.plain_loss, "--encoder", args.encoder]
    if budget is not None:
        cmd += ["--budget", str(budget)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    for s in args.set:
        cmd += ["--set", s]
    log = results / f"{tag}.log"
    t = time.perf_counter()
    res = run_logged(cmd, tag=tag, log=log, out=out, cwd=work)
    print(f"  {tag}: test mIoU {res['test_miou']:.4f}, {res['steps']} steps, "
          f"{res['wall_seconds']:.0f} s wall, {res['cpu_seconds']:.0f} CPU s "
          f"(process {time.perf_counter() - t:.0f} s)", flush=True)
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return res


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def _step_cpu(res: dict[str, Any]) -> float:
    """Median CPU seconds between consecutive optimizer steps (per-step cost, no epoch work)."""
    marks = [c for _, c in res["step_marks"]]
    diffs = sorted(b - a for a, b in itertools.pairwise(marks))
    return diffs[len(diffs) // 2] if diffs else float("nan")


def table(rows: dict[str, dict[str, list[dict[str, Any]]]], mode: str) -> str:
    head = ("| dataset | rsfm test mIoU | plain test mIoU | rsfm - plain | steps rsfm / plain "
            "| wall s rsfm / plain | CPU s rsfm / plain | CPU s per step (median) rsfm / plain "
            "| ratio rsfm/plain: steps, CPU per step |")
    lines = [f"Mode: {mode}.", "", head, "|" + "---|" * 9]
    for dataset, sides in rows.items():
        r, p = sides.get("rsfm", []), sides.get("plain", [])
        rm = [x["test_miou"] for x in r]
        pm = [x["test_miou"] for x in p]
        diff = (f"{statistics.mean(rm) - statistics.mean(pm):+.3f}" if rm and pm else "-")

        def avg(xs: list[dict[str, Any]], key: str) -> float:
            return statistics.mean(x[key] for x in xs) if xs else float("nan")

        rs, ps = avg(r, "steps"), avg(p, "steps")
        rc = statistics.mean(_step_cpu(x) for x in r) if r else float("nan")
        pc = statistics.mean(_step_cpu(x) for x in p) if p else float("nan")
        lines.append(
            f"| {dataset} | {_fmt(rm)} | {_fmt(pm)} | {diff} | {rs:.0f} / {ps:.0f} "
            f"| {avg(r, 'wall_seconds'):.0f} / {avg(p, 'wall_seconds'):.0f} "
            f"| {avg(r, 'cpu_seconds'):.0f} / {avg(p, 'cpu_seconds'):.0f} "
            f"| {rc:.2f} / {pc:.2f} | {rs / ps:.2f}, {rc / pc:.2f} |")
    lines.append("")
    lines.append("Per run (seed: rsfm / plain test mIoU, steps):")
    for dataset, sides in rows.items():
        pairs = zip(sides.get("rsfm", []), sides.get("plain", []))
        cells = [f"{a['seed']}: {a['test_miou']:.3f} / {b['test_miou']:.3f} "
                 f"({a['steps']} / {b['steps']})" for a, b in pairs]
        lines.append(f"- {dataset}: " + "; ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-seconds", type=float, default=187.0,
                    help="wall-clock training budget per run (default 187)")
    ap.add_argument("--steps", type=int, default=None,
                    help="equal optimizer steps for both sides instead of a time budget")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--datasets", default="sen1floods11,dubai")
    ap.add_argument("--sides", default="rsfm,plain")
    ap.add_argument("--jobs", type=int, default=1,
                    help="parallel runs (only with --steps; timings are then not comparable)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0: default)")
    ap.add_argument("--encoder", default="resnet18", help="resnet18 or resnet34")
    ap.add_argument("--set", action="append", default=[], help="rsfm recipe override key=value")
    ap.add_argument("--plain-model", default="smp",
                    help="smp (default), rsfm (rsfm's model in the plain loop) or file.py:function")
    ap.add_argument("--plain-loss", default="smp", choices=["smp", "rsfm"])
    ap.add_argument("--results-dir", default=str(Path(tempfile.gettempdir()) / "rsfm_bench_quality"))
    ap.add_argument("--tag", default="", help="prefix of the result files")
    ap.add_argument("--reuse", action="store_true", help="reuse result files of the same tag")
    ap.add_argument("--keep", action="store_true", help="keep run folders")
    ap.add_argument("--output", default=str(HERE / "RESULTS_quality.md"))
    # worker arguments
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--max-steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        worker(args)
        return
    try:
        import segmentation_models_pytorch  # noqa: F401
    except ImportError:
        sys.exit("bench_quality needs segmentation-models-pytorch: pip install segmentation-models-pytorch")
    sides = args.sides.split(",")
    datasets = args.datasets.split(",")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    prefix = args.tag + "_" if args.tag else ""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    from _quality_data import load_dataset

    for dataset in datasets:
        print(f"[{dataset}]", flush=True)
        load_dataset(dataset)  # fail early; converts the Dubai masks once, before the workers
        if args.steps is not None:
            mode = f"equal steps ({args.steps} optimizer steps per run)"
            steps = {s: args.steps for s in sides}
            budget: float | None = None
        else:
            mode = f"equal wall-clock budget ({args.budget_seconds:.0f} s of training per run)"
            steps = {}
            for side in sides:  # probe: how many steps fit in the budget
                probe = _launch(args, side, dataset, 1000, 1_000_000, args.budget_seconds,
                                f"{prefix}{dataset}_{side}_probe")
                steps[side] = probe["steps"]
            budget = 1.25 * args.budget_seconds
        jobs = []
        for i, seed in enumerate(seeds):
            order = sides if i % 2 == 0 else sides[::-1]
            jobs += [(side, seed) for side in order]

        def one(job: tuple[str, int], dataset: str = dataset, steps: dict = steps,
                budget: float | None = budget) -> tuple[str, dict[str, Any]]:
            side, seed = job
            return side, _launch(args, side, dataset, seed, steps[side], budget,
                                 f"{prefix}{dataset}_{side}_s{seed}")

        with ThreadPoolExecutor(max_workers=args.jobs if args.steps is not None else 1) as pool:
            done = list(pool.map(one, jobs))
        rows[dataset] = {s: [r for side, r in done if side == s] for s in sides}
        for s in sides:
            rows[dataset][s].sort(key=lambda r: r["seed"])
    text = table(rows, mode)
    print()
    print(text)
    if args.steps is None and sides == ["rsfm", "plain"]:
        header = ("# bench_quality results\n\n`.venv/bin/python bench/bench_quality.py "
                  + " ".join(sys.argv[1:]) + "`\n\n")
        Path(args.output).write_text(header + text + "\n")


if __name__ == "__main__":
    main()

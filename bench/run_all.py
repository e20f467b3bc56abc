"""Run the benchmarks and write ``bench/RESULTS.md`` (``make bench``; under 20 minutes on 2 cores).

Scripts built on ``bench/_harness.py`` (fresh subprocesses, interleaved configurations, CPU and
wall seconds per step, peak memory, ratios against a named baseline) write their own markdown
section. Other scripts run with a time limit and their printed output is kept verbatim.
``bench_quality.py`` (training budgets of minutes per seed and dataset) is not part of this run.

    .venv/bin/python bench/run_all.py [--only attention train_step lora] [--jobs 2] [--out bench/RESULTS.md]

Peers: TerraTorch and TorchGeo are not rsfm dependencies; point ``RSFM_BENCH_PEER_PYTHON`` (or
``--peer-python``) at an interpreter that has them (e.g. a throwaway venv) to include them;
smp is the ``bench`` extra (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import machine_header

HERE = Path(__file__).resolve().parent

# name -> (script, extra arguments); harness scripts get --markdown/--jobs/--peer-python
HARNESS = {
    "attention": ("bench_attention.py", ["--reps", "1"]),
    "train_step": ("bench_train_step.py", ["--reps", "2"]),
    "lora": ("bench_lora.py", ["--reps", "2"]),
    "predict": ("bench_predict.py", ["--reps", "2"]),
    "ddp": ("bench_ddp.py", ["--reps", "2"]),
}
OTHERS = {
    "data": ("bench_data.py", ["--size", "4096", "--tiles", "256", "--repeats", "2"]),
}


def run_harness(name: str, jobs: int, peer: str | None, timeout: float) -> str:
    script, extra = HARNESS[name]
    with tempfile.TemporaryDirectory() as tmp:
        md = Path(tmp) / "section.md"
        cmd = [sys.executable, str(HERE / script), "--markdown", str(md), "--jobs", str(jobs), *extra]
        if peer:
            cmd += ["--peer-python", peer]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return f"## {script}\n\n**timed out after {timeout:.0f} s**\n"
        took = time.perf_counter() - t0
        print(proc.stdout[-3000:], flush=True)
        if proc.returncode != 0 or not md.exists():
            err = (proc.stderr or proc.stdout).strip().splitlines()[-10:]
            return f"## {script}\n\n**failed (exit {proc.returncode})**\n\n```\n" + "\n".join(err) + "\n```\n"
        return md.read_text() + f"\n_{script}: {took:.0f} s wall._\n"


def run_other(name: str, timeout: float) -> str:
    script, extra = OTHERS[name]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(HERE / script), *extra], capture_output=True, text=True, check=False,
                              timeout=timeout)
        out, status = proc.stdout.strip(), f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as e:
        out = (e.output.decode() if isinstance(e.output, bytes) else (e.output or "")).strip()
        status = f"timed out after {timeout:.0f} s"
    took = time.perf_counter() - t0
    print(out[-2000:], flush=True)
    return (f"## {script} (its own protocol, output verbatim; {status}, {took:.0f} s wall)\n\n"
            f"```\n{out[-6000:]}\n```\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=[*HARNESS, *OTHERS], default=None)
    ap.add_argument("--jobs", type=int, default=2, help="subprocesses at a time (2 = one per core)")
    ap.add_argument("--peer-python", default=os.environ.get("RSFM_BENCH_PEER_PYTHON"))
    ap.add_argument("--timeout", type=float, default=900, help="seconds per script")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args()
    names = args.only or [*HARNESS, *OTHERS]
    started = time.perf_counter()
    header = machine_header(1, args.jobs)
    sections = []
    for name in names:
        print(f"== {name}", flush=True)
        if name in HARNESS:
            sections.append(run_harness(name, args.jobs, args.peer_python, args.timeout))
        else:
            sections.append(run_other(name, min(args.timeout, 300)))
    total = time.perf_counter() - started
    today = datetime.date.today().isoformat()
    text = (f"# Benchmark results\n\nWritten by `make bench` (`bench/run_all.py`) on {today} in "
            f"{total / 60:.1f} min. {header}.\n\n"
            "Protocol (`bench/_harness.py`): every configuration runs in a fresh subprocess with one "
            "torch thread; configurations are interleaved; **CPU s/step** is the process's CPU time "
            "per timed step (robust on a shared machine), wall s/step is only meaningful on an idle "
            "one; **peak RSS +MiB** is the peak resident-set increase over the step(s) (allocator "
            "slack included) and **live tensors peak** the peak of allocated tensor memory in the "
            "warm-up step (torch profiler); ratios divide by the baseline named in each table's "
            "header, measured in the same run.\n\n" + "\n\n".join(s.rstrip() for s in sections) + "\n")
    args.out.write_text(text)
    print(f"wrote {args.out} ({total / 60:.1f} min)")


if __name__ == "__main__":
    main()

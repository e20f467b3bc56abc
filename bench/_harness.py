"""Shared benchmark harness: fresh subprocesses, interleaved configurations, CPU seconds, peak RSS.

The machine is 2 shared cores, so wall time alone says little. Every ``bench/bench_*.py`` script
uses this module to follow one protocol:

* each configuration runs in a **fresh subprocess** (memory numbers never mix, allocator state
  never carries over), with ``threads`` torch/OpenMP threads (default 1: single-thread CPU
  seconds are the most robust number on a shared machine);
* configurations are **interleaved**: repetition ``r`` runs every configuration once, in forward
  order on even and reverse order on odd repetitions (ABBA), so slow phases of the machine hit
  every configuration alike; ``jobs=2`` runs two subprocesses at once (one per core);
* each subprocess builds its workload, runs ``warmup`` untimed steps, then ``steps`` timed ones,
  and reports per step the **wall** seconds (``time.perf_counter``) and the **CPU seconds of the
  process** (``time.process_time``: all threads), plus the **peak RSS increase** over the
  resident size just before the first step (Linux ``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``; ``ru_maxrss`` when that is not possible): activations, gradients,
  optimizer state and allocator slack, as the OS sees them; with ``live_memory=True`` also the
  **peak of live tensor memory** during the first warm-up step (torch profiler memory events:
  independent of the allocator's slack, so the most repeatable memory number; the RSS peak is
  then taken over the later steps, still against the resident size before the first step);
* a configuration may run under another interpreter (``Config.python``: e.g. a throwaway venv
  with TerraTorch) and may time out (``timeout``: a hung kernel is reported, not waited for);
* the summary prints medians and **ratios against a named baseline** measured in the same run.

A benchmark script defines ``build(params) -> step`` (or ``(step, info)``), a list of
:class:`Config`, and ends with::

    if __name__ == "__main__":
        if not serve(build):  # the child side: runs one configuration and prints its JSON
            main()

``main`` calls :func:`measure` and :func:`table`.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Config",
    "Measurement",
    "Summary",
    "machine_header",
    "measure",
    "serve",
    "summarize",
    "table",
]

_WORKER_FLAG = "--harness-worker"
_RESULT = "@@HARNESS-RESULT "
_STEP = "@@HARNESS-STEP "


@dataclass(frozen=True)
class Config:
    """One configuration: a name, the JSON parameters ``build`` receives, optionally an interpreter.

    Attributes:
        name: Row label (unique within a run).
        params: JSON-serialisable parameters passed to the script's ``build``.
        python: Interpreter to run it with (default: this one), e.g. a venv holding a peer library.
        note: Shown in the table's last column.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    python: str | None = None
    note: str = ""


@dataclass
class Measurement:
    """What one subprocess reported (or why it failed)."""

    config: str
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    peak_mib: float | None = None
    base_mib: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when every requested step finished."""
        return not self.error and not self.timed_out


@dataclass
class Summary:
    """Medians over all timed steps of all repetitions of one configuration."""

    config: Config
    runs: list[Measurement]
    cpu_s: float | None
    wall_s: float | None
    peak_mib: float | None
    steps: int

    @property
    def ok(self) -> bool:
        """True when at least one repetition finished."""
        return self.cpu_s is not None

    @property
    def status(self) -> str:
        """``ok``, ``timeout after ...`` or the first error line."""
        if self.ok:
            return "ok"
        bad = self.runs[0] if self.runs else None
        if bad is None:
            return "not run"
        return bad.error.splitlines()[-1][:120] if bad.error else "failed"


# ----------------------------------------------------------------------------------------------
# child side


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (``VmHWM``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_mib() -> float:
    kib = _proc_status_kib("VmRSS")
    if kib is None:  # not Linux: ru_maxrss is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


def _peak_mib(reset_ok: bool) -> float:
    kib = _proc_status_kib("VmHWM") if reset_ok else None
    if kib is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


def _emit(prefix: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(prefix + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _live_peak_mib(step: Callable[[], Any]) -> float:
    """Run ``step`` under the torch profiler; the peak of allocated-minus-freed CPU tensor bytes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    cur = peak = 0
    for _, nbytes in sorted(events):
        cur += nbytes
        peak = max(peak, cur)
    return peak / 2**20


def serve(build: Callable[[dict[str, Any]], Any]) -> bool:
    """Run one configuration when this process is a harness worker; return False otherwise.

    ``build(params)`` returns ``step`` (a callable running one step) or ``(step, info)`` where
    ``info`` is a JSON-serialisable dict shown in the results (parameter counts, FLOPs...).
    """
    if _WORKER_FLAG not in sys.argv:
        return False
    spec = json.loads(sys.argv[sys.argv.index(_WORKER_FLAG) + 1])
    threads, warmup, steps = spec["threads"], spec["warmup"], spec["steps"]
    live = spec.get("live_memory", False)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # a script that does not use torch
        pass
    built = build(spec["params"])
    step, info = built if isinstance(built, tuple) else (built, {})
    gc.collect()
    reset_ok = _reset_peak_rss()
    base = _rss_mib()
    walls, cpus = [], []
    live_peak = None
    for i in range(warmup + steps):
        w0, c0 = time.perf_counter(), time.process_time()
        if live and i == 0:
            live_peak = _live_peak_mib(step)
            if warmup + steps > 1:  # keep the profiler's own allocations out of the RSS peak
                reset_ok = _reset_peak_rss() and reset_ok
        else:
            step()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        _emit(_STEP, {"i": i, "wall": wall, "cpu": cpu, "warmup": i < warmup})
        if i >= warmup:
            walls.append(wall)
            cpus.append(cpu)
    peak = _peak_mib(reset_ok)
    if live_peak is not None:
        info["live_peak_mib"] = round(live_peak)
    _emit(_RESULT, {"wall_s": walls, "cpu_s": cpus, "peak_mib": peak - base, "base_mib": base,
                    "info": info, "peak_source": "VmHWM" if reset_ok else "ru_maxrss"})
    return True


# ----------------------------------------------------------------------------------------------
# parent side


def _run_one(script: Path, cfg: Config, *, threads: int, warmup: int, steps: int,
             timeout: float | None, live_memory: bool = False) -> Measurement:
    spec = {"params": cfg.params, "threads": threads, "warmup": warmup, "steps": steps,
            "live_memory": live_memory and warmup > 0}
    cmd = [cfg.python or sys.executable, str(script), _WORKER_FLAG, json.dumps(spec)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONUNBUFFERED="1")
    m = Measurement(cfg.name)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired as e:
        out = e.output.decode() if isinstance(e.output, bytes) else (e.output or "")
        done = [json.loads(line[len(_STEP):]) for line in out.splitlines() if line.startswith(_STEP)]
        m.timed_out = True
        m.error = f"timeout after {timeout:.0f} s ({len(done)} of {warmup + steps} steps finished)"
        return m
    results = [line for line in proc.stdout.splitlines() if line.startswith(_RESULT)]
    if proc.returncode != 0 or not results:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        m.error = f"exit {proc.returncode}: " + "\n".join(tail)
        return m
    data = json.loads(results[-1][len(_RESULT):])
    m.wall_s, m.cpu_s = data["wall_s"], data["cpu_s"]
    m.peak_mib, m.base_mib, m.info = data["peak_mib"], data["base_mib"], data["info"]
    m.info.setdefault("peak_source", data.get("peak_source"))
    return m


def measure(script: str | Path, configs: Sequence[Config], *, reps: int = 2, warmup: int = 1,
            steps: int = 2, threads: int = 1, jobs: int = 1, timeout: float | None = None,
            live_memory: bool = False, log: Callable[[str], None] | None = print) -> list[Summary]:
    """Run every configuration ``reps`` times, interleaved, each run in a fresh subprocess.

    Args:
        script: The benchmark script (it must call :func:`serve` at start-up).
        configs: Configurations, in table order.
        reps: Repetitions (ABBA order).
        warmup: Untimed steps per run (they still count for peak memory).
        steps: Timed steps per run.
        threads: torch / OpenMP threads per subprocess.
        jobs: Subprocesses at a time (2 = one per core on this machine).
        timeout: Seconds before a run is killed and reported as timed out.
        live_memory: Also record the peak of live tensor memory in the first warm-up step
            (``info["live_peak_mib"]``; needs ``warmup >= 1``).
        log: Progress printer (None: quiet).

    Returns:
        One :class:`Summary` per configuration, in ``configs`` order.
    """
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configuration names must be unique, got {names}")
    order = []
    for r in range(reps):
        order += [(r, c) for c in (configs if r % 2 == 0 else list(reversed(configs)))]
    runs: dict[str, list[Measurement]] = {c.name: [] for c in configs}

    def one(item: tuple[int, Config]) -> Measurement:
        r, cfg = item
        m = _run_one(Path(script), cfg, threads=threads, warmup=warmup, steps=steps, timeout=timeout,
                     live_memory=live_memory)
        if log:
            if m.ok:
                log(f"  [{r + 1}/{reps}] {cfg.name}: CPU {statistics.median(m.cpu_s):.2f} s/step, "
                    f"wall {statistics.median(m.wall_s):.2f} s/step, peak +{m.peak_mib:.0f} MiB"
                    + (f", live {m.info['live_peak_mib']} MiB" if "live_peak_mib" in m.info else ""), flush=True)
            else:
                log(f"  [{r + 1}/{reps}] {cfg.name}: {m.error.splitlines()[-1] if m.error else 'failed'}",
                    flush=True)
        return m

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for (_, cfg), m in zip(order, pool.map(one, order), strict=True):
            runs[cfg.name].append(m)
    return [summarize(c, runs[c.name]) for c in configs]


def summarize(cfg: Config, runs: list[Measurement]) -> Summary:
    """Medians over the timed steps of the finished runs (peak: median over runs)."""
    good = [m for m in runs if m.ok]
    cpu = [s for m in good for s in m.cpu_s]
    wall = [s for m in good for s in m.wall_s]
    peaks = [m.peak_mib for m in good if m.peak_mib is not None]
    return Summary(cfg, runs, statistics.median(cpu) if cpu else None,
                   statistics.median(wall) if wall else None,
                   statistics.median(peaks) if peaks else None, len(cpu))


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "—"
    return f"{a / b:.2f}x"


def table(summaries: Sequence[Summary], *, time_baseline: str | None = None,
          memory_baseline: str | None = None, info_keys: Sequence[str] = (),
          memory: bool = True) -> str:
    """A markdown table: CPU and wall seconds per step, peak RSS increase, ratios vs baselines.

    Args:
        summaries: From :func:`measure`.
        time_baseline: Configuration name the time ratios divide by.
        memory_baseline: Configuration name the memory ratio divides by (default: time_baseline).
        info_keys: ``info`` entries to show as extra columns (first finished run's value).
        memory: Show the peak-memory columns.
    """
    by_name = {s.config.name: s for s in summaries}
    memory_baseline = memory_baseline or time_baseline
    for base in (time_baseline, memory_baseline):
        if base is not None and base not in by_name:
            raise ValueError(f"baseline {base!r} is not a configuration: {sorted(by_name)}")
    tb = by_name[time_baseline] if time_baseline else None
    mb = by_name[memory_baseline] if memory_baseline else None
    def live(s: Summary) -> float | None:
        vals = [m.info["live_peak_mib"] for m in s.runs if m.ok and "live_peak_mib" in m.info]
        return statistics.median(vals) if vals else None

    show_live = memory and any(live(s) is not None for s in summaries)
    head = ["configuration", "CPU s/step", "wall s/step"]
    if tb:
        head += [f"CPU vs {time_baseline}", f"wall vs {time_baseline}"]
    if memory:
        head.append("peak RSS +MiB")
        if mb:
            head.append(f"RSS vs {memory_baseline}")
    if show_live:
        head.append("live tensors peak MiB")
        if mb:
            head.append(f"live vs {memory_baseline}")
    head += [*info_keys, "steps", "note"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [f"`{s.config.name}`"]
        if not s.ok:
            cells += ["—", "—"] + (["—", "—"] if tb else []) + (["—"] + (["—"] if mb else []) if memory else [])
            cells += (["—"] + (["—"] if mb else [])) if show_live else []
            first = next((m.info for m in s.runs if m.info), {})
            cells += [_fmt(first.get(k)) for k in info_keys]
            cells += ["0", f"**{s.status}** {s.config.note}".strip()]
        else:
            cells += [f"{s.cpu_s:.2f}", f"{s.wall_s:.2f}"]
            if tb:
                cells += [_ratio(s.cpu_s, tb.cpu_s), _ratio(s.wall_s, tb.wall_s)]
            if memory:
                cells.append(f"{s.peak_mib:.0f}" if s.peak_mib is not None else "—")
                if mb:
                    cells.append(_ratio(s.peak_mib, mb.peak_mib))
            if show_live:
                lv = live(s)
                cells.append(f"{lv:.0f}" if lv is not None else "—")
                if mb:
                    cells.append(_ratio(lv, live(mb)))
            first = next(m.info for m in s.runs if m.ok)
            cells += [_fmt(first.get(k)) for k in info_keys]
            cells += [str(s.steps), s.config.note]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def machine_header(threads: int, jobs: int) -> str:
    """One line naming the machine and the protocol (for the top of a results section)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        import torch

        tv = torch.__version__
    except ImportError:  # pragma: no cover
        tv = "not installed"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, torch {tv}, {threads} thread(s) per subprocess, "
            f"{jobs} subprocess(es) at a time, load average {load} at start")


def add_arguments(parser: Any, *, reps: int = 2, warmup: int = 1, steps: int = 2, threads: int = 1,
                  jobs: int = 1, timeout: float | None = None) -> None:
    """The protocol options every script shares (``--reps --warmup --steps --threads --jobs ...``)."""
    parser.add_argument("--reps", type=int, default=reps, help="interleaved repetitions (ABBA)")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps per run")
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per run")
    parser.add_argument("--threads", type=int, default=threads, help="torch threads per subprocess")
    parser.add_argument("--jobs", type=int, default=jobs, help="subprocesses at a time")
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds before a run is killed")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the results section (markdown) to this file")
    parser.add_argument("--peer-python", default=None,
                        help="interpreter with the peer libraries (TerraTorch, TorchGeo), for the "
                             "scripts that compare with them (bench/run_all.py passes it to all)")


def write_section(path: Path | None, title: str, body: str) -> None:
    """Write ``## title`` + ``body`` to ``path`` (used by ``bench/run_all.py``)."""
    if path is not None:
        path.write_text(f"## {title}\n\n{body.rstrip()}\n")


def run_logged(cmd: Sequence[str], *, tag: str, log: Path, out: Path, cwd: Path) -> dict[str, Any]:
    """Run one training run's subprocess (the quality benches) with its output in ``log`` and
    return the JSON it wrote to ``out``; a failed run raises, naming the log."""
    with log.open("w") as fh:
        proc = subprocess.run(list(cmd), stdout=fh, stderr=subprocess.STDOUT, cwd=str(cwd),
                              check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}); see {log}")
    return json.loads(out.read_text())

"""``make bench``: every benchmark under benchmarks/, then one table and one JSON line.

    .venv/bin/python benchmarks/run_all.py              # full run (~5-8 min on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick      # small sizes, a smoke run (~15 s)
    .venv/bin/python benchmarks/run_all.py --only-pipeline

First the per-area benchmarks (ingest, config, schedule, selection, render, compose,
SMTP), each in its own process with its own baseline, their output shown as they print
it; a failing one is reported and the run goes on. Then ``bench_pipeline.py``, the
end-to-end figures of issue 8. The last line printed is one JSON object with at least
``compose_per_s``, ``select_10k_x_1k_s``, ``send_per_s``, ``raw_per_s``,
``ratio_vs_raw`` and ``peak_rss_mb_100k`` (plus the sizes, the machine, and which area
benchmarks ran). With ``--quick`` the area benchmarks are skipped and the sizes are
small, so the keys carry smoke-run values, not the figures the targets are about.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_pipeline  # noqa: E402

# (script, arguments, time limit in seconds): sizes chosen to keep `make bench` short.
AREA_BENCHMARKS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("bench_ingest.py", ("--repeat", "3"), 120),
    ("bench_config.py", ("--subscribers", "1000", "10000", "--repeat", "2"), 120),
    ("bench_schedule.py", ("--subscribers", "10000"), 120),
    ("bench_select.py", ("--subscribers", "10000", "--sample", "100"), 180),
    ("bench_render.py", ("--n", "1000"), 120),
    ("bench_compose.py", ("--n", "2000"), 120),
    ("bench_ledger.py", ("--n", "3000"), 120),
    ("bench_smtp.py", ("--n", "1000"), 180),
)


def run_area(script: str, args: tuple[str, ...], limit: int) -> tuple[str, float]:
    """Run one area benchmark, echoing its output; return (status, seconds)."""
    path = HERE / script
    print(f"\n## {script} {' '.join(args)}", flush=True)
    if not path.is_file():
        print("   (not present; skipped)")
        return "missing", 0.0
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args],
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"   timed out after {limit} s (skipped)")
        return "timeout", time.perf_counter() - started
    elapsed = time.perf_counter() - started
    for line in done.stdout.rstrip().splitlines():
        print(f"   {line}")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        print(f"   failed (exit {done.returncode}): {tail}")
        return f"failed: {tail[:200]}", elapsed
    return "ok", elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, no area benchmarks")
    ap.add_argument("--only-pipeline", action="store_true", help="skip the area benchmarks")
    ap.add_argument("--subscribers", type=int, help="compose, select and send size")
    ap.add_argument("--rss-subscribers", type=int, help="dry-run size for peak RSS")
    ap.add_argument("--connections", type=int, help="SMTP connections (default 8)")
    ap.add_argument("--data", type=Path, default=bench_pipeline.DATA, help="shared data folder")
    args = ap.parse_args(argv)
    bench_pipeline.check_data(args.data)
    started = time.perf_counter()

    areas: dict[str, str] = {}
    if not (args.quick or args.only_pipeline):
        print("# Per-area benchmarks (each with its own baseline, same run)")
        for script, extra, limit in AREA_BENCHMARKS:
            areas[script], _ = run_area(script, extra, limit)

    sizes = bench_pipeline.sizes_from(args)
    print(
        f"\n# End-to-end (bench_pipeline.py): compose {sizes.compose:,}, select {sizes.select:,}"
        f", send {sizes.send:,}, dry run {sizes.rss:,} subscribers",
        flush=True,
    )
    res = bench_pipeline.run(sizes, args.data, step=lambda line: print(f"   {line}", flush=True))
    print()
    print(bench_pipeline.table(res))
    elapsed = time.perf_counter() - started
    print(f"total time: {elapsed:.0f} s")
    line = bench_pipeline.summary(res)
    line["quick"] = bool(args.quick)
    line["area_benchmarks"] = areas
    line["total_s"] = round(elapsed, 1)
    print(json.dumps(line), flush=True)
    failed = [name for name, status in areas.items() if status.startswith("failed")]
    if failed:
        print(f"Error: area benchmark(s) failed: {', '.join(failed)} (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmarks must not rot: ``run_all.py --quick`` with tiny sizes still runs end to
end (real arXiv day, real SQLite, a real aiosmtpd sink in a child process) and its last
line is the JSON object ``make bench`` promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = (
    "compose_per_s",
    "select_10k_x_1k_s",
    "send_per_s",
    "raw_per_s",
    "ratio_vs_raw",
    "peak_rss_mb_100k",
)


def test_run_all_quick_prints_the_table_then_the_json_line(shared_data: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run_all.py"),
            "--quick",
            "--subscribers",
            "60",
            "--rss-subscribers",
            "60",
            "--connections",
            "2",
            "--data",
            str(shared_data),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    for key in KEYS:
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
    # the ratio is computed from unrounded rates; the printed rates are rounded
    assert abs(result["ratio_vs_raw"] - result["send_per_s"] / result["raw_per_s"]) < 0.005
    assert result["sizes"] == {"compose": 60, "select": 60, "send": 60, "rss": 60}
    assert result["papers"] == 1504  # the whole arXiv day went through newsletter.sources
    assert result["quick"] is True
    table = "\n".join(lines[:-1])
    for key in KEYS:
        assert key in table
    assert "machine: " in table


def test_missing_data_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip() == (
        f"Error: no feed data at {tmp_path} (pass --data PATH to ../shared/data)"
    )


def test_bench_render_checks_its_two_variants_render_the_same() -> None:
    """bench_render compares the templates with and without their cache blocks; a
    template change that makes them differ must fail it (it did once, unnoticed)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_render.py"), "--n", "20"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "without cache blocks:" in done.stdout and "(same output)" in done.stdout

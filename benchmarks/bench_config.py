"""Config loading speed: ``load_config`` against plain ``yaml.safe_load``, same run.

Usage:  .venv/bin/python benchmarks/bench_config.py [--subscribers 1000 10000] [--repeat 3]

Writes a config with N subscribers (each with a time zone, a schedule and two
interests of keywords, categories and an author) to a temporary folder, then times:
- baseline: ``yaml.safe_load`` of the same file (parsing only, no validation);
- baseline C: ``yaml.load(..., CSafeLoader)`` when libyaml is available;
- load_config: parse with marks + full validation + building the typed Config.
Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import load_config  # noqa: E402

ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Europe/Berlin"]
SCHEDULES = ["daily 07:00", "weekdays 07:30", "weekly mon 09:00", "30 6 * * 1-5"]


def make_config(n: int) -> str:
    lines = [
        "state: var/newsletter.db",
        "sources:",
        "  - {name: sample, type: arxiv, url: samples/arxiv-sample.xml}",
        "  - {name: arxiv-cs-lg, type: arxiv, url: 'https://rss.arxiv.org/rss/cs.LG'}",
        "delivery: {from: 'Digest <digest@example.org>', transport: outbox, outbox: outbox/}",
        "subscribers:",
    ]
    for i in range(n):
        lines += [
            f"  - email: user{i}@example.org",
            f"    name: User {i}",
            f"    timezone: {ZONES[i % len(ZONES)]}",
            f"    schedule: '{SCHEDULES[i % len(SCHEDULES)]}'",
            f"    max_papers: {5 + i % 10}",
            "    interests:",
            "      - name: Time series",
            "        description: Deep learning for time series forecasting",
            "        keywords: [time series, forecasting]",
            "        categories: [cs.LG, stat.ML]",
            "        authors: [Ada Example]",
            "      - name: Language models",
            "        keywords: [large language models, retrieval]",
            "        exclude: [survey]",
        ]
    return "\n".join(lines) + "\n"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    c_loader = getattr(yaml, "CSafeLoader", None)
    print(
        f"{'subscribers':>11} {'safe_load':>10} {'CSafeLoader':>12} {'load_config':>12} "
        f"{'vs safe_load':>12} {'per subscriber':>15}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subscribers.yaml"
        for n in args.subscribers:
            path.write_text(make_config(n), encoding="utf-8")
            base = best(lambda: yaml.safe_load(path.read_text(encoding="utf-8")), args.repeat)
            cbase = (
                best(
                    lambda: yaml.load(path.read_text(encoding="utf-8"), Loader=c_loader),
                    args.repeat,
                )
                if c_loader
                else float("nan")
            )
            ours = best(lambda: load_config(path, environ={}), args.repeat)
            config = load_config(path, environ={})
            assert len(config.subscribers) == n
            print(
                f"{n:>11,} {base:>9.3f}s {cbase:>11.3f}s {ours:>11.3f}s {ours / base:>11.2f}x "
                f"{ours / n * 1e6:>12.0f} us"
            )


if __name__ == "__main__":
    main()

"""Parse + store time of the 1,504-item arXiv day, with feedparser alone as the baseline.

    .venv/bin/python benchmarks/bench_ingest.py [--repeat 5] [--feed PATH]

Every figure is measured in the same run, on the same bytes (read once, in memory),
each into a fresh SQLite state file. Prints the median and the best of N runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from newsletter.config import SourceConfig
from newsletter.sources import arxiv_rss, parse_bytes
from newsletter.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FEED = ROOT.parent / "shared" / "data" / "feeds" / "arxiv_rss_all-archives_2024-11-28.xml"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--feed", type=Path, default=DEFAULT_FEED)
    args = parser.parse_args()
    if not args.feed.is_file():
        print(f"feed not found: {args.feed} (the real data ships in ../shared/data)")
        return 1
    body = args.feed.read_bytes()
    source = SourceConfig(name="bench", type="arxiv", url=str(args.feed))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    counter = iter(range(10**6))

    def store_all(via_feedparser: bool) -> None:
        fast = arxiv_rss._fast_entries
        if via_feedparser:
            arxiv_rss._fast_entries = lambda body: None  # force the feedparser path
        try:
            result = parse_bytes(source, body)
        finally:
            arxiv_rss._fast_entries = fast
        with Store(tmp / f"state-{next(counter)}.db") as store:
            new, _ = store.upsert_papers(result.papers)
        assert new == 935, new

    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "baseline: feedparser.parse alone (no normalising, no storing)",
            lambda: feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False),
        ),
        ("parse_bytes (ElementTree fast path + normalise)", lambda: parse_bytes(source, body)),
        ("parse_bytes + store 935 papers in a fresh SQLite file", lambda: store_all(False)),
        ("same, forcing the feedparser path (fallback)", lambda: store_all(True)),
    ]
    entries = len(feedparser.parse(body).entries)
    print(f"feed: {args.feed.name}, {len(body) / 1e6:.1f} MB, {entries} items; {args.repeat} runs")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"python {sys.version.split()[0]}, feedparser {feedparser.__version__}, "
        f"{os.cpu_count()} CPUs, load average {load:.2f}"
    )
    for label, fn in cases:
        fn()  # warm up (imports, regex compilation)
        runs = timed(fn, args.repeat)
        median, best = statistics.median(runs) * 1000, min(runs) * 1000
        print(f"  {median:7.0f} ms median  {best:7.0f} ms best  {label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

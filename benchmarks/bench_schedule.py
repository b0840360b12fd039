"""How long the scheduler's own work takes: next fire times and ``Pipeline.due``.

    .venv/bin/python benchmarks/bench_schedule.py [--subscribers 10000]

Baseline, measured in the same run: APScheduler's ``CronTrigger.get_next_fire_time``
for the same daily schedule (the trigger the daemon does *not* use, because it fires
twice on a DST fall-back day). ``Pipeline.due`` is timed over N subscribers in a mix of
time zones and schedules against a real SQLite state where half the editions are sent.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from newsletter.config import Config
from newsletter.models import Subscriber
from newsletter.pipeline import Pipeline
from newsletter.schedule import parse_schedule
from newsletter.store import Store

ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
SCHEDULES = ("daily 07:00", "weekdays 07:30", "weekly mon 09:00", "30 6 * * 1-5")


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=10_000)
    args = ap.parse_args()
    tz = ZoneInfo("Europe/London")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)

    ours = parse_schedule("daily 07:00")
    cron = CronTrigger(hour=7, minute=0, timezone=tz)
    t_ours = per_call(lambda: ours.next(now, tz), 5_000)
    t_cron = per_call(lambda: cron.get_next_fire_time(None, now), 5_000)
    print(
        f"next fire time, daily 07:00 Europe/London: Schedule.next {t_ours * 1e6:.1f} us, "
        f"APScheduler CronTrigger (baseline) {t_cron * 1e6:.1f} us"
    )
    weekly = parse_schedule("weekly mon 09:00")
    t_weekly = per_call(lambda: weekly.next(now, tz), 2_000)
    print(f"next fire time, weekly mon 09:00: Schedule.next {t_weekly * 1e6:.1f} us")

    n = args.subscribers
    subs = [
        Subscriber(
            email=f"s{i}@example.org",
            timezone=ZONES[i % len(ZONES)],
            schedule=SCHEDULES[i % len(SCHEDULES)],
        )
        for i in range(n)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            path=Path(tmp) / "cfg.yaml",
            state=str(Path(tmp) / "s.db"),
            sources=(),
            subscribers=tuple(subs),
        )
        with Store(config.state) as store:
            pipe = Pipeline(config, store)
            at = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)  # Tokyo and Sydney mornings
            refs, _ = pipe.due(subs, at)
            for ref in refs[: len(refs) // 2]:  # half already sent
                store.prepare_delivery(
                    ref.subscriber.email, ref.edition, message_id="m", paper_ids=[], cutoff=at
                )
                store.claim(ref.subscriber.email, ref.edition, worker="bench")
                store.mark_sent(ref.subscriber.email, ref.edition)
            start = time.perf_counter()
            refs2, missed2 = pipe.due(subs, at + timedelta(minutes=5))
            took = time.perf_counter() - start
    print(
        f"Pipeline.due over {n:,} subscribers ({len(refs2):,} due, {len(missed2):,} "
        f"skipped lines): {took:.2f} s ({took / n * 1e6:.0f} us per subscriber)"
    )


if __name__ == "__main__":
    main()

"""Edition windows and replays in the pipeline, on a real SQLite state and outbox."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import NewsletterError
from newsletter.models import Paper
from newsletter.pipeline import O_EMPTY, O_SENT, Pipeline
from newsletter.store import Store

CONFIG = """\
state: state.db
sources:
  - {name: local, type: arxiv, url: feed.xml}
delivery: {from: "Digest <digest@example.org>", transport: outbox, outbox: outbox}
web: {base_url: https://digest.example.org}
subscribers:
  - email: ada@example.org
    timezone: UTC
    schedule: "{schedule}"
    interests:
      - name: Forecasting
        keywords: [time series forecasting]
"""


def forecasting_paper(n: int) -> Paper:
    return Paper(
        id=f"2611.{n:05d}",
        title=f"Time series forecasting with model {n}",
        abstract="We study time series forecasting for energy demand with transformers.",
        url=f"https://arxiv.org/abs/2611.{n:05d}",
        categories=("cs.LG",),
    )


def make(tmp_path: Path, schedule: str = "daily 07:00") -> tuple[Pipeline, Store]:
    cfg = tmp_path / "subscribers.yaml"
    cfg.write_text(CONFIG.replace("{schedule}", schedule), encoding="utf-8")
    config = load_config(cfg)
    store = Store(config.state)
    return Pipeline(config, store), store


def test_a_paper_committed_late_by_a_concurrent_fetch_is_in_the_next_edition(
    tmp_path: Path,
) -> None:
    pipe, store = make(tmp_path)
    t0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    store.upsert_papers([forecasting_paper(1)], now=t0)
    sub = pipe.subscribers()[0]
    first = pipe.send([pipe.edition_ref(sub, now=t0 + timedelta(hours=1))], now=t0)
    assert [o.state for o in first] == [O_SENT]
    # A fetch that started before that edition's cutoff (so its first_seen is earlier)
    # but committed after it: its papers must not fall between two editions.
    store.upsert_papers([forecasting_paper(2)], now=t0 + timedelta(minutes=30))
    nxt = pipe.edition_ref(sub, now=t0 + timedelta(days=1))
    second = pipe.send([nxt], now=t0 + timedelta(days=1))
    assert [o.state for o in second] == [O_SENT]
    assert store.sent_paper_ids("ada@example.org") == {"2611.00001", "2611.00002"}
    store.close()


def test_nothing_new_gives_an_empty_edition_with_its_reason(tmp_path: Path) -> None:
    pipe, store = make(tmp_path)
    t0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    store.upsert_papers([forecasting_paper(1)], now=t0)
    sub = pipe.subscribers()[0]
    pipe.send([pipe.edition_ref(sub, now=t0)], now=t0)
    later = t0 + timedelta(days=1)
    outcome = pipe.send([pipe.edition_ref(sub, now=later)], now=later)
    assert outcome[0].state == O_EMPTY
    assert "no new papers" in outcome[0].detail
    store.close()


def test_a_future_date_is_refused(tmp_path: Path) -> None:
    pipe, store = make(tmp_path)
    sub = pipe.subscribers()[0]
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    with pytest.raises(NewsletterError, match="in the future"):
        pipe.edition_ref(sub, now=now, on_date=date(2026, 12, 5))
    store.close()


def test_date_replay_of_a_multi_daily_cron_uses_that_days_real_edition(tmp_path: Path) -> None:
    pipe, store = make(tmp_path, schedule="0 7,19 * * *")
    sub = pipe.subscribers()[0]
    now = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    ref = pipe.edition_ref(sub, now=now, on_date=date(2026, 11, 28))
    assert ref.edition == "2026-11-28T19:00"
    store.close()


# --------------------------------------------------------------------------- ahead


@pytest.mark.parametrize("batch", [1, 3, 32])
def test_ahead_hands_over_every_item_in_order_in_batches(batch: int) -> None:
    from newsletter.pipeline import ahead

    assert list(ahead(iter(range(100)), depth=8, batch=batch)) == list(range(100))
    assert list(ahead(iter([]), depth=8, batch=batch)) == []


def test_ahead_raises_the_producers_error_after_the_items_made_before_it() -> None:
    from newsletter.pipeline import ahead

    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("feed broke")

    got: list[int] = []
    with pytest.raises(ValueError, match="feed broke"):
        for item in ahead(items(), depth=4, batch=3):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_closing_ahead_early_stops_the_producer_and_closes_its_source() -> None:
    import itertools

    from newsletter.pipeline import ahead

    closed: list[bool] = []

    def items() -> Iterator[int]:
        try:
            yield from itertools.count()
        finally:
            closed.append(True)

    it = ahead(items(), depth=8, batch=4)
    assert [next(it) for _ in range(10)] == list(range(10))
    assert isinstance(it, Generator)
    it.close()
    assert closed == [True]


def test_ahead_hands_over_a_ready_item_without_waiting_for_a_full_batch() -> None:
    """A slow source (the next items take long to make) does not hold back the ones
    already made: a shorter list goes when the consumer has nothing queued."""
    import time

    from newsletter.pipeline import ahead

    def items() -> Iterator[int]:
        yield 1
        time.sleep(1.0)
        yield 2

    started = time.perf_counter()
    it = ahead(items(), depth=64, batch=32)
    assert next(it) == 1
    assert time.perf_counter() - started < 0.5
    assert list(it) == [2]

"""The daemon never hides a send that stopped early and retries it within the grace period
(a real aiosmtpd relay that refuses connections, then recovers); and a fire time that
passes while the catch-up pass runs still fires (a real running APScheduler)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from smtp_support import Faults, SmtpServer
from test_scheduler import _daemon, _outbox, make_config, sub, utc, write_feed

from newsletter.config import DeliveryConfig, SmtpConfig, SourceConfig
from newsletter.pipeline import O_SENT, Pipeline
from newsletter.schedule import parse_schedule
from newsletter.store import PENDING, SENT, Store

KEY = ("daily 07:00", "UTC")


def _smtp(daemon, server: SmtpServer) -> None:
    """Point the daemon at ``server`` (as a config reload would)."""
    smtp = SmtpConfig(
        host=server.host, port=server.port, security="none", timeout=3.0, retries=1, backoff=0.01
    )
    daemon.config = replace(daemon.config, delivery=DeliveryConfig(transport="smtp", smtp=smtp))
    daemon.pipeline = Pipeline(daemon.config, daemon.store)


def test_relay_down_is_an_error_then_the_retry_job_sends_once(tmp_path: Path, store: Store, caplog):
    subs = [sub("a@x.org"), sub("b@x.org")]
    daemon, clock = _daemon(tmp_path, store, subs, utc(2026, 6, 1, 7, 0, 1))
    with SmtpServer(faults=Faults(reject_connections=1000)) as server:
        _smtp(daemon, server)
        with caplog.at_level(logging.INFO, logger="newsletter"):
            result = daemon.edition_job(KEY)
        # Not "ok" and not hidden: the job's own ERROR line says the send stopped early.
        assert not result.ok
        assert any(e.startswith("sending stopped early: ") for e in result.errors)
        assert "421" in result.line and "retried every 5 min" in result.line
        errors = [r.message for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and errors[0].startswith("edition [daily 07:00 UTC]: ")
        assert store.last_job("edition [daily 07:00 UTC]")["outcome"] == "error"  # type: ignore[index]
        assert server.received == []
        assert {d.state for d in store.deliveries()} <= {PENDING}

        # The relay is back; five minutes later the retry job sends each edition once.
        server.faults.reject_connections = 0
        clock.now = utc(2026, 6, 1, 7, 5, 1)
        retry = daemon.retry_job()
        assert retry is not None and retry.ok, retry and retry.line
        assert sorted((o.subscriber, o.state) for o in retry.outcomes) == [
            ("a@x.org", O_SENT),
            ("b@x.org", O_SENT),
        ]
        assert retry.line.startswith("retry: 2 edition(s): 2 sent")
        assert store.last_job("retry")["outcome"] == "ok"  # type: ignore[index]
        assert sorted(r.rcpt_tos[0] for r in server.received) == ["a@x.org", "b@x.org"]
        # Nothing left: the next pass does nothing and records nothing.
        clock.now = utc(2026, 6, 1, 7, 10, 1)
        assert daemon.retry_job() is None
        assert len(server.received) == 2
        assert {d.state for d in store.deliveries()} == {SENT}


def test_retry_job_stops_at_the_grace_period(tmp_path: Path, store: Store):
    daemon, clock = _daemon(tmp_path, store, [sub("a@x.org")], utc(2026, 6, 1, 7, 0, 1))
    with SmtpServer(faults=Faults(reject_connections=1000)) as server:
        _smtp(daemon, server)
        assert not daemon.edition_job(KEY).ok
        clock.now = utc(2026, 6, 1, 9)  # still down two hours later: an error again
        again = daemon.retry_job()
        assert again is not None and not again.ok and "sending stopped early" in again.line
        server.faults.reject_connections = 0
        clock.now = utc(2026, 6, 1, 13, 1)  # 6 h 1 after 07:00: outside the grace
        assert daemon.retry_job() is None
        assert server.received == []
        assert store.delivery("a@x.org", "2026-06-01").state == PENDING  # type: ignore[union-attr]


def test_retry_job_picks_up_a_job_that_failed_before_any_ledger_row(tmp_path: Path, store: Store):
    daemon, clock = _daemon(tmp_path, store, [sub("a@x.org")], utc(2026, 6, 1, 7, 0, 1))
    good = daemon.config
    daemon.config = replace(good, templates=tmp_path / "no-such-templates")
    daemon.pipeline = Pipeline(daemon.config, store)
    failed = daemon.edition_job(KEY)
    assert not failed.ok and store.deliveries() == []  # nothing recorded: no row to retry
    # The operator fixes the config (a reload); the next retry pass sends the edition.
    daemon.config, daemon.pipeline = good, Pipeline(good, store)
    clock.now = utc(2026, 6, 1, 7, 5)
    retry = daemon.retry_job()
    assert retry is not None and [(o.subscriber, o.state) for o in retry.outcomes] == [
        ("a@x.org", O_SENT)
    ]
    assert len(_outbox(tmp_path)) == 1
    assert daemon.retry_job() is None  # done: the group is no longer flagged


def test_retry_job_with_nothing_to_do_sends_nothing_new(tmp_path: Path, store: Store):
    # b's 08:00 edition is due (its time has passed) but no job was cut short and no row
    # is pending: the retry job leaves it to its own edition job.
    subs = [sub("a@x.org"), sub("b@x.org", "daily 08:00")]
    daemon, _ = _daemon(tmp_path, store, subs, utc(2026, 6, 1, 8, 0, 1))
    assert [o.state for o in daemon.edition_job(KEY).outcomes] == [O_SENT]
    assert daemon.retry_job() is None
    assert len(_outbox(tmp_path)) == 1


# -- the first fire time starts at the daemon's start, not after the catch-up ----------------


def test_trigger_first_fire_is_looked_for_from_the_start():
    from newsletter.scheduler import EditionTrigger

    sched = parse_schedule("daily 07:00")
    catch_up_began, now = utc(2026, 11, 30, 6, 59, 50), utc(2026, 11, 30, 7, 0, 30)
    late = EditionTrigger(sched, ZoneInfo("UTC"))
    assert late.get_next_fire_time(None, now) == utc(2026, 12, 1, 7)  # the old behaviour
    trig = EditionTrigger(sched, ZoneInfo("UTC"), start=catch_up_began)
    assert trig.get_next_fire_time(None, now) == utc(2026, 11, 30, 7)
    # After that first fire, it carries on as before: tomorrow.
    assert trig.get_next_fire_time(utc(2026, 11, 30, 7), now) == utc(2026, 12, 1, 7)
    # A start further back than the lookback is bounded by it: with one day of lookback,
    # 29 Nov 07:00 (30 s outside it) is not offered, only today's fire.
    old = EditionTrigger(sched, ZoneInfo("UTC"), start=utc(2026, 11, 20), lookback=timedelta(1))
    assert old.get_next_fire_time(None, now) == utc(2026, 11, 30, 7)
    short = EditionTrigger(
        sched, ZoneInfo("UTC"), start=utc(2026, 11, 20), lookback=timedelta(seconds=10)
    )
    assert short.get_next_fire_time(None, now) == utc(2026, 12, 1, 7)


def test_a_fire_time_passed_during_catch_up_fires_at_once(tmp_path: Path, store: Store):
    """A real running scheduler: the group's fire time (a minute ago) passed after the
    daemon started (two minutes ago) but before the jobs were added."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    from newsletter.scheduler import Daemon

    now = datetime.now(UTC)
    fire = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
    schedule = f"daily {fire:%H:%M}"
    feed = write_feed(tmp_path / "feed.xml", [("2606.99001", "Time series forecasting", "x")])
    source = SourceConfig(name="sample", type="arxiv", url=str(feed))
    config = make_config(tmp_path, [sub("a@x.org", schedule)], sources=(source,))
    daemon = Daemon(config, store)  # the real clock
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)}, timezone=UTC
    )
    daemon.schedule_jobs(scheduler, since=fire - timedelta(minutes=1))
    job = scheduler.get_job(f"edition:{schedule}|UTC")
    scheduler.start()
    try:
        assert job is not None
        deadline = time.monotonic() + 10
        while not _outbox(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(_outbox(tmp_path)) == 1, "the passed fire time did not fire"
    row = store.delivery("a@x.org", fire.date().isoformat())
    assert row is not None and row.state == SENT
    # Without ``since`` (a reschedule after a reload) the first fire is tomorrow.
    paused = BackgroundScheduler(timezone=UTC)
    paused.start(paused=True)
    try:
        Daemon(config, store).schedule_jobs(paused)
        later = paused.get_job(f"edition:{schedule}|UTC").next_run_time
        assert later == fire + timedelta(days=1)
    finally:
        paused.shutdown(wait=False)


def test_a_schedule_changed_to_a_passed_time_is_sent_by_the_running_scheduler(
    tmp_path: Path, store: Store
):
    """A real running APScheduler: the subscriber saves a time a minute ago on the web page;
    the reschedule's new job would first fire tomorrow, the regroup job sends it now, once."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    from newsletter.scheduler import Daemon

    now = datetime.now(UTC)
    fire = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
    feed = write_feed(tmp_path / "feed.xml", [("2606.99001", "Time series forecasting", "x")])
    source = SourceConfig(name="sample", type="arxiv", url=str(feed))
    config = make_config(
        tmp_path, [sub("a@x.org", f"daily {now + timedelta(hours=3):%H:%M}")], sources=(source,)
    )
    daemon = Daemon(config, store)  # the real clock
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)}, timezone=UTC
    )
    daemon.schedule_jobs(scheduler, since=now)
    scheduler.start()
    try:
        store.set_prefs("a@x.org", {"version": 1, "schedule": f"daily {fire:%H:%M}"})
        assert daemon.regrouped()
        daemon.schedule_jobs(scheduler)  # what the daemon's minute check does
        job = scheduler.get_job(f"edition:daily {fire:%H:%M}|UTC")
        assert job is not None and job.next_run_time == fire + timedelta(days=1)
        deadline = time.monotonic() + 10
        while not _outbox(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon.schedule_jobs(scheduler)  # nothing moved since: nothing queued
        daemon.catch_up()  # and a full pass finds it sent
        time.sleep(0.3)
    finally:
        scheduler.shutdown(wait=True)
    assert len(_outbox(tmp_path)) == 1, "the edition due after the schedule change was not sent"
    row = store.delivery("a@x.org", fire.date().isoformat())
    assert row is not None and row.state == SENT
    assert store.last_job("regroup [1 subscriber(s)]") is not None

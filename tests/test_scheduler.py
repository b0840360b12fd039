"""Scheduling with an injected clock: Pipeline.due over time zones and DST days, catch-up
inside and outside the grace period, coalescing, the custom APScheduler trigger, and the
daemon's jobs (fetch, editions, stop, reload) against a real SQLite state and an outbox."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.config import Config, DeliveryConfig, SchedulerConfig, SourceConfig
from newsletter.errors import ConfigError
from newsletter.models import Interest, Subscriber
from newsletter.pipeline import O_SENT, Pipeline
from newsletter.schedule import parse_schedule
from newsletter.store import Store

LONDON = ZoneInfo("Europe/London")

FEED_HEAD = """<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
 version="2.0"><channel><title>test feed (invented papers)</title>
<link>https://example.org/feed</link><description>test</description>
"""
ITEM = """<item><title>{title}</title><link>https://arxiv.org/abs/{aid}</link>
<description>arXiv:{aid}v1 Announce Type: new
Abstract: {abstract}</description>
<guid isPermaLink="false">oai:arXiv.org:{aid}v1</guid><category>cs.LG</category>
<pubDate>Mon, 01 Jun 2026 00:00:00 -0400</pubDate><arxiv:announce_type>new</arxiv:announce_type>
<dc:creator>Alice Sample, Bob Example</dc:creator></item>
"""


def write_feed(path: Path, items: list[tuple[str, str, str]]) -> Path:
    body = "".join(ITEM.format(aid=a, title=t, abstract=ab) for a, t, ab in items)
    path.write_text(FEED_HEAD + body + "</channel></rss>\n", encoding="utf-8")
    return path


FORECAST = [
    ("2606.99001", "Transformers for time series forecasting", "Forecasting time series."),
    ("2606.99002", "Diffusion models for demand forecasting", "Time series forecasting."),
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def sub(email: str, schedule: str = "daily 07:00", tz: str = "UTC") -> Subscriber:
    return Subscriber(
        email=email,
        schedule=schedule,
        timezone=tz,
        interests=(Interest(name="Forecasting", keywords=("time series", "forecasting")),),
    )


def make_config(
    tmp_path: Path,
    subs: list[Subscriber],
    *,
    grace: float = 6.0,
    sources: tuple[SourceConfig, ...] = (),
    **scheduler: object,
) -> Config:
    return Config(
        path=tmp_path / "cfg.yaml",
        state=str(tmp_path / "state.db"),
        sources=sources,
        subscribers=tuple(subs),
        delivery=DeliveryConfig(transport="outbox", outbox=tmp_path / "outbox"),
        scheduler=SchedulerConfig(grace_hours=grace, **scheduler),  # type: ignore[arg-type]
    )


def mark_sent(store: Store, email: str, edition: str, cutoff: datetime) -> None:
    """Record an edition as sent through the real ledger transitions."""
    store.prepare_delivery(email, edition, message_id=f"{edition}@t", paper_ids=[], cutoff=cutoff)
    assert store.claim(email, edition, worker="test") is not None
    store.mark_sent(email, edition, reply="250 ok")


def editions(refs: list) -> list[tuple[str, str]]:
    return [(r.subscriber.email, r.edition) for r in refs]


# -- Pipeline.due: time zones, grace, coalescing ---------------------------------------


def test_due_in_each_subscribers_time_zone(tmp_path: Path, store: Store):
    tokyo, ny = sub("t@x.org", tz="Asia/Tokyo"), sub("n@x.org", tz="America/New_York")
    pipe = Pipeline(make_config(tmp_path, [tokyo, ny]), store)
    # 22:30 UTC on 1 June: 07:30 on 2 June in Tokyo; 18:30 on 1 June in New York.
    refs, missed = pipe.due([tokyo, ny], utc(2026, 6, 1, 22, 30))
    assert editions(refs) == [("t@x.org", "2026-06-02")]
    assert refs[0].edition_date.isoformat() == "2026-06-02"
    # New York's 07:00 (11:00 UTC) is 11.5 h back: outside the 6 h grace, and it says so.
    assert missed == [
        "n@x.org: edition 2026-06-01 skipped: its time 2026-06-01 07:00 EDT is more than "
        "6 h ago (scheduler.grace_hours)"
    ]


def test_catch_up_inside_grace(tmp_path: Path, store: Store):
    s = sub("a@x.org")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    refs, missed = pipe.due([s], utc(2026, 6, 1, 12, 59))  # 5 h 59 after 07:00
    assert editions(refs) == [("a@x.org", "2026-06-01")]
    assert missed == []


def test_catch_up_outside_grace_is_skipped_with_a_line(tmp_path: Path, store: Store):
    s = sub("a@x.org")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    refs, missed = pipe.due([s], utc(2026, 6, 1, 13, 1))  # 6 h 1 after 07:00
    assert refs == []
    assert len(missed) == 1
    assert "edition 2026-06-01 skipped" in missed[0]
    assert "more than 6 h ago (scheduler.grace_hours)" in missed[0]
    # A longer grace sends it.
    pipe12 = Pipeline(make_config(tmp_path, [s], grace=12), store)
    refs, missed = pipe12.due([s], utc(2026, 6, 1, 13, 1))
    assert editions(refs) == [("a@x.org", "2026-06-01")]


def test_many_skipped_editions_are_listed_up_to_ten_then_counted(tmp_path: Path, store: Store):
    from newsletter.pipeline import summarise_missed

    subs = [sub(f"r{i}@x.org") for i in range(25)]
    pipe = Pipeline(make_config(tmp_path, subs), store)
    _, missed = pipe.due(subs, utc(2026, 6, 1, 13, 1))
    assert len(missed) == 25
    shown = summarise_missed(missed)
    assert shown[:10] == missed[:10]
    assert len(shown) == 11
    assert shown[10].startswith("... and 15 more editions skipped")
    assert summarise_missed(missed[:11]) == missed[:11]  # one more line is just listed


def test_skipped_line_not_repeated_once_the_edition_is_recorded(tmp_path: Path, store: Store):
    s = sub("a@x.org")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    mark_sent(store, "a@x.org", "2026-06-01", utc(2026, 6, 1, 7))
    refs, missed = pipe.due([s], utc(2026, 6, 1, 20))
    assert (refs, missed) == ([], [])


def test_several_missed_days_coalesce_into_one_edition(tmp_path: Path, store: Store):
    s = sub("a@x.org")
    pipe = Pipeline(make_config(tmp_path, [s], grace=72), store)
    last_cutoff = utc(2026, 6, 1, 7, 0, 5)
    mark_sent(store, "a@x.org", "2026-06-01", last_cutoff)
    # Down from 1 June until 4 June 08:00: 2, 3 and 4 June were all missed, all in grace.
    now = utc(2026, 6, 4, 8)
    refs, missed = pipe.due([s], now)
    assert editions(refs) == [("a@x.org", "2026-06-04")]  # one edition, the latest
    assert missed == []
    # ... and it covers every paper since the last sent edition, so none is lost.
    assert refs[0].since == last_cutoff
    assert refs[0].cutoff == now


def test_several_missed_runs_in_a_day_coalesce(tmp_path: Path, store: Store):
    s = sub("a@x.org", schedule="0 */2 * * *")  # every two hours, keyed by time
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    mark_sent(store, "a@x.org", "2026-06-01T06:00", utc(2026, 6, 1, 6))
    refs, _ = pipe.due([s], utc(2026, 6, 1, 13, 30))  # 08, 10 and 12 o'clock missed
    assert editions(refs) == [("a@x.org", "2026-06-01T12:00")]
    assert refs[0].since == utc(2026, 6, 1, 6)


def test_sent_edition_is_not_due_again_but_an_interrupted_one_is(tmp_path: Path, store: Store):
    a, b, c = sub("a@x.org"), sub("b@x.org"), sub("c@x.org")
    pipe = Pipeline(make_config(tmp_path, [a, b, c]), store)
    now = utc(2026, 6, 1, 8)
    mark_sent(store, "a@x.org", "2026-06-01", now)
    # b: claimed and then the process died (state 'sending'): still due.
    store.prepare_delivery("b@x.org", "2026-06-01", message_id="m@t", paper_ids=[], cutoff=now)
    store.claim("b@x.org", "2026-06-01", worker="dead")
    # c: failed permanently: not retried by the scheduler.
    store.prepare_delivery("c@x.org", "2026-06-01", message_id="c@t", paper_ids=[], cutoff=now)
    store.mark_failed("c@x.org", "2026-06-01", reason="550 no such user", permanent=True)
    refs, _ = pipe.due([a, b, c], now + timedelta(minutes=5))
    assert editions(refs) == [("b@x.org", "2026-06-01")]
    assert refs[0].cutoff == now  # the interrupted edition keeps its recorded window


def _tick(pipe: Pipeline, store: Store, s: Subscriber, start: datetime, end: datetime):
    """Ask what is due every 5 minutes, recording what is 'sent'; return (time, edition)s."""
    sent, now = [], start
    while now <= end:
        refs, _ = pipe.due([s], now)
        for ref in refs:
            mark_sent(store, s.email, ref.edition, now)
            sent.append((now, ref.edition))
        now += timedelta(minutes=5)
    return sent


def test_dst_fall_back_daily_0130_sends_once(tmp_path: Path, store: Store):
    """Europe/London 2026-10-25: 01:00-02:00 happens twice; the 01:30 edition goes once."""
    s = sub("a@x.org", schedule="daily 01:30", tz="Europe/London")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    mark_sent(store, s.email, "2026-10-24", utc(2026, 10, 24, 0, 30))
    sent = _tick(pipe, store, s, utc(2026, 10, 24, 22), utc(2026, 10, 25, 4))
    assert sent == [(utc(2026, 10, 25, 0, 30), "2026-10-25")]  # the first 01:30 (BST)


def test_dst_spring_forward_daily_0130_is_moved_not_skipped(tmp_path: Path, store: Store):
    """Europe/London 2026-03-29: 01:30 does not exist; the edition goes at 02:30 BST."""
    s = sub("a@x.org", schedule="daily 01:30", tz="Europe/London")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    mark_sent(store, s.email, "2026-03-28", utc(2026, 3, 28, 1, 30))
    sent = _tick(pipe, store, s, utc(2026, 3, 28, 22), utc(2026, 3, 29, 6))
    assert sent == [(utc(2026, 3, 29, 1, 30), "2026-03-29")]  # 02:30 BST
    assert sent[0][0].astimezone(LONDON).hour == 2


def test_weekly_schedule_is_keyed_by_iso_week(tmp_path: Path, store: Store):
    s = sub("a@x.org", schedule="weekly mon 09:00", tz="Europe/London")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    # Monday 30 Nov 2026 is in ISO week 49; tick through two weeks.
    sent = _tick(pipe, store, s, utc(2026, 11, 29, 12), utc(2026, 12, 8, 12))
    assert [e for _, e in sent] == ["2026-W49", "2026-W50"]
    assert [t for t, _ in sent] == [utc(2026, 11, 30, 9), utc(2026, 12, 7, 9)]


# -- the custom trigger -----------------------------------------------------------------


def _fires(trigger, start: datetime, n: int) -> list[datetime]:
    out, prev = [], None
    now = start
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, now)
        out.append(nxt)
        prev, now = nxt, nxt  # as APScheduler does after each run
    return out


def test_trigger_fires_once_on_fall_back_day():
    from newsletter.scheduler import EditionTrigger

    trig = EditionTrigger(parse_schedule("daily 01:30"), LONDON)
    got = _fires(trig, utc(2026, 10, 24, 12), 3)
    assert [f.astimezone(UTC) for f in got] == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
        utc(2026, 10, 27, 1, 30),
    ]


def test_trigger_moves_spring_forward_fire():
    from newsletter.scheduler import EditionTrigger

    trig = EditionTrigger(parse_schedule("daily 01:30"), LONDON)
    got = _fires(trig, utc(2026, 3, 28, 12), 2)
    assert [(f.hour, f.minute) for f in got] == [(2, 30), (1, 30)]
    assert [f.astimezone(UTC) for f in got] == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_trigger_weekly_and_weekdays():
    from newsletter.scheduler import EditionTrigger

    weekly = EditionTrigger(parse_schedule("weekly mon 09:00"), LONDON)
    assert _fires(weekly, utc(2026, 11, 25), 2) == [
        datetime(2026, 11, 30, 9, tzinfo=LONDON),
        datetime(2026, 12, 7, 9, tzinfo=LONDON),
    ]
    weekdays = EditionTrigger(parse_schedule("weekdays 07:30"), ZoneInfo("Asia/Tokyo"))
    got = _fires(weekdays, utc(2026, 11, 27), 3)  # Fri 27 Nov 09:00 Tokyo
    assert [f.strftime("%a %H:%M") for f in got] == ["Mon 07:30", "Tue 07:30", "Wed 07:30"]


def test_trigger_bounds_missed_fire_times_by_lookback():
    from newsletter.scheduler import EditionTrigger

    trig = EditionTrigger(parse_schedule("daily 07:00"), LONDON, lookback=timedelta(hours=6))
    # Last run a week ago; APScheduler is only told about the latest fire in the lookback.
    nxt = trig.get_next_fire_time(utc(2026, 6, 1, 6), utc(2026, 6, 8, 9))
    assert nxt == datetime(2026, 6, 8, 7, tzinfo=LONDON)
    assert str(trig) == "schedule[daily 07:00 Europe/London]"


# -- the daemon's jobs, with an injected clock --------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _daemon(tmp_path: Path, store: Store, subs: list[Subscriber], now: datetime, **kw):
    from newsletter.scheduler import Daemon

    feed = write_feed(tmp_path / "feed.xml", FORECAST)
    source = SourceConfig(name="sample", type="arxiv", url=str(feed))
    config = make_config(tmp_path, subs, sources=(source,), **kw)
    clock = Clock(now)
    return Daemon(config, store, clock=clock), clock


def _outbox(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outbox").rglob("*.eml"))


def test_edition_job_fetches_then_sends_once(tmp_path: Path, store: Store):
    s = sub("a@x.org", schedule="daily 07:00", tz="Europe/London")
    daemon, clock = _daemon(tmp_path, store, [s], utc(2026, 6, 1, 6, 0, 1))  # 07:00:01 BST
    key = ("daily 07:00", "Europe/London")
    assert list(daemon.groups()) == [key]
    result = daemon.edition_job(key)
    assert result.sources == 1 and result.new_papers == 2  # never fetched: fetched first
    assert [(o.subscriber, o.edition, o.state, o.papers) for o in result.outcomes] == [
        ("a@x.org", "2026-06-01", O_SENT, 2)
    ]
    assert len(_outbox(tmp_path)) == 1
    assert result.line.startswith("edition [daily 07:00 Europe/London]: 1 source(s) fetched")
    assert "1 edition(s): 1 sent, 0 already sent" in result.line
    # Later the same day (a restart, a catch-up pass, a second fire): nothing again,
    # and the source is fresh so it is not fetched again either.
    clock.now = utc(2026, 6, 1, 6, 30)
    again = daemon.edition_job(key)
    assert (again.outcomes, again.sources) == ((), 0)
    assert daemon.catch_up().outcomes == ()
    assert len(_outbox(tmp_path)) == 1
    assert store.delivery("a@x.org", "2026-06-01").state == "sent"  # type: ignore[union-attr]
    assert store.last_job("catch-up") is not None  # job runs are recorded for status


def test_edition_job_woken_a_hair_early_still_sends(tmp_path: Path, store: Store):
    s = sub("a@x.org")
    daemon, _ = _daemon(tmp_path, store, [s], utc(2026, 6, 1, 6, 59, 59, 900000))
    result = daemon.edition_job(("daily 07:00", "UTC"))
    assert [(o.edition, o.state) for o in result.outcomes] == [("2026-06-01", O_SENT)]


def test_edition_job_only_sends_its_own_group(tmp_path: Path, store: Store):
    a, b = sub("a@x.org", "daily 07:00"), sub("b@x.org", "daily 08:00")
    daemon, _ = _daemon(tmp_path, store, [a, b], utc(2026, 6, 1, 8, 0, 1))
    assert set(daemon.groups()) == {("daily 07:00", "UTC"), ("daily 08:00", "UTC")}
    result = daemon.edition_job(("daily 08:00", "UTC"))
    assert [o.subscriber for o in result.outcomes] == ["b@x.org"]
    # The catch-up pass (run_once semantics) sends a's, still within the grace.
    catch = daemon.catch_up()
    assert [(o.subscriber, o.state) for o in catch.outcomes] == [("a@x.org", O_SENT)]
    assert len(_outbox(tmp_path)) == 2


def test_catch_up_sends_inside_grace_and_logs_skips(tmp_path: Path, store: Store, caplog):
    inside = sub("in@x.org", "daily 04:00")  # 5 h ago
    outside = sub("out@x.org", "daily 02:00")  # 7 h ago
    daemon, _ = _daemon(tmp_path, store, [inside, outside], utc(2026, 6, 1, 9))
    with caplog.at_level(logging.INFO, logger="newsletter"):
        result = daemon.catch_up()
    assert [(o.subscriber, o.state) for o in result.outcomes] == [("in@x.org", O_SENT)]
    assert len(result.missed) == 1 and result.missed[0].startswith("out@x.org: edition")
    assert "1 skipped (outside the grace period)" in result.line
    assert any("out@x.org: edition 2026-06-01 skipped" in r.message for r in caplog.records)
    assert any(r.message.startswith("catch-up: 1 source(s)") for r in caplog.records)


def test_stop_request_is_honoured_between_batches(tmp_path: Path, store: Store):
    subs = [sub(f"s{i}@x.org") for i in range(3)]
    daemon, _ = _daemon(tmp_path, store, subs, utc(2026, 6, 1, 7, 1))
    daemon.batch = 1
    daemon.stopping.set()
    result = daemon.catch_up()
    assert result.stopped and result.outcomes == ()
    assert "stopped early on request" in result.line
    assert _outbox(tmp_path) == [] and store.deliveries() == []  # nothing half-recorded
    daemon.stopping.clear()  # the next start sends them, once each
    again = daemon.catch_up()
    assert sorted(o.subscriber for o in again.outcomes if o.state == O_SENT) == [
        s.email for s in subs
    ]


def test_a_failing_job_is_one_error_line_and_the_daemon_carries_on(
    tmp_path: Path, store: Store, caplog
):
    s = sub("a@x.org")
    daemon, _ = _daemon(tmp_path, store, [s], utc(2026, 6, 1, 7, 1))
    daemon.config = replace(daemon.config, templates=tmp_path / "no-such-templates")
    daemon.pipeline = Pipeline(daemon.config, store)
    with caplog.at_level(logging.INFO, logger="newsletter"):
        result = daemon.catch_up()
    assert not result.ok and len(result.errors) == 1
    assert "no-such-templates" in result.errors[0]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].message.startswith("catch-up: ")
    assert "\n" not in errors[0].message
    assert store.last_job("catch-up")["outcome"] == "error"  # type: ignore[index]


def test_fetch_jobs_split_by_fetch_every(tmp_path: Path, store: Store):
    from newsletter.scheduler import Daemon

    a = SourceConfig(name="a", type="arxiv", url=str(write_feed(tmp_path / "a.xml", FORECAST)))
    b = SourceConfig(
        name="b",
        type="arxiv",
        url=str(write_feed(tmp_path / "b.xml", [("2606.99003", "Other", "Other.")])),
        fetch_every="15m",
    )
    config = make_config(tmp_path, [sub("a@x.org")], sources=(a, b))
    daemon = Daemon(config, store, clock=Clock(utc(2026, 6, 1)))
    everything = daemon.fetch_job()
    assert (everything.job, everything.sources, everything.new_papers) == ("fetch [all]", 1, 2)
    assert store.fetch_state("b").last_fetch_at is None  # b has its own job
    own = daemon.fetch_job(("b",))
    assert (own.job, own.sources, own.new_papers) == ("fetch [b]", 1, 1)
    assert own.line == f"fetch [b]: 1 source(s) fetched, 1 new paper(s) in {own.seconds:.2f}s"


def test_fetch_job_reports_a_broken_source_and_continues(tmp_path: Path, store: Store):
    from newsletter.scheduler import Daemon

    good = SourceConfig(
        name="good", type="arxiv", url=str(write_feed(tmp_path / "g.xml", FORECAST))
    )
    bad = SourceConfig(name="bad", type="arxiv", url=str(tmp_path / "missing.xml"))
    config = make_config(tmp_path, [], sources=(bad, good))
    result = Daemon(config, store, clock=Clock(utc(2026, 6, 1))).fetch_job()
    assert result.new_papers == 2 and len(result.errors) == 1
    assert result.errors[0].startswith("source 'bad': ")
    assert "missing.xml" in result.errors[0]
    assert "; 1 error(s): source 'bad': " in result.line


# -- scheduling and reloading ---------------------------------------------------------------


@pytest.fixture()
def paused_scheduler():
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler(timezone=UTC)
    sched.start(paused=True)
    yield sched
    sched.shutdown(wait=False)


def test_schedule_jobs_one_per_group_and_source(tmp_path: Path, store: Store, paused_scheduler):
    from newsletter.scheduler import Daemon

    subs = [
        sub("a@x.org", "daily 07:00", "Europe/London"),
        sub("b@x.org", "daily 07:00", "Europe/London"),
        sub("c@x.org", "weekly mon 09:00", "America/New_York"),
    ]
    src = SourceConfig(name="hf", type="hf_daily", url="http://127.0.0.1:9/none", fetch_every="2h")
    config = make_config(tmp_path, subs, sources=(src,), grace=3, fetch_schedule="15 * * * *")
    before = datetime.now(UTC)
    Daemon(config, store).schedule_jobs(paused_scheduler)
    jobs = {j.id: j for j in paused_scheduler.get_jobs()}
    assert set(jobs) == {
        "fetch",
        "fetch:hf",
        "retry",
        "edition:daily 07:00|Europe/London",
        "edition:weekly mon 09:00|America/New_York",
    }
    assert jobs["retry"].trigger.interval == timedelta(minutes=5)
    for job in jobs.values():
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 3 * 3600)
    london = jobs["edition:daily 07:00|Europe/London"]
    assert london.next_run_time == parse_schedule("daily 07:00").next(before, LONDON)
    assert london.next_run_time.astimezone(LONDON).strftime("%H:%M") == "07:00"
    assert jobs["fetch"].next_run_time.minute == 15
    assert jobs["fetch:hf"].trigger.interval == timedelta(hours=2)


def test_reload_invalid_config_keeps_the_running_one(tmp_path: Path, store: Store, caplog):
    from newsletter.scheduler import Daemon

    config = make_config(tmp_path, [sub("a@x.org")])

    def broken(path: Path) -> Config:
        raise ConfigError([f"{path}:3: subscribers[0].schedule: 'dayly 07:00' is not a schedule"])

    daemon = Daemon(config, store, loader=broken)
    with caplog.at_level(logging.INFO, logger="newsletter"):
        assert daemon.reload() is False
    assert daemon.config is config
    (line,) = [r.message for r in caplog.records if r.levelno == logging.ERROR]
    assert line == (
        "config reload failed, keeping the running config: "
        f"{config.path}:3: subscribers[0].schedule: 'dayly 07:00' is not a schedule"
    )


def test_reload_rejects_a_bad_fetch_schedule_and_a_new_state(tmp_path: Path, store: Store):
    from newsletter.scheduler import Daemon

    config = make_config(tmp_path, [sub("a@x.org")])
    bad_fetch = replace(config, scheduler=SchedulerConfig(fetch_schedule="sometimes"))
    other_state = replace(config, state=str(tmp_path / "other.db"))
    for new in (bad_fetch, other_state):
        daemon = Daemon(config, store, loader=lambda _p, new=new: new)
        assert daemon.reload() is False
        assert daemon.config is config


def test_reload_valid_config_reschedules(tmp_path: Path, store: Store, paused_scheduler):
    from newsletter.scheduler import Daemon

    config = make_config(tmp_path, [sub("a@x.org")])
    grown = replace(config, subscribers=(*config.subscribers, sub("b@x.org", "weekdays 06:15")))
    shrunk = replace(grown, subscribers=grown.subscribers[1:])
    configs = iter([grown, shrunk])
    daemon = Daemon(config, store, loader=lambda _p: next(configs))
    daemon.schedule_jobs(paused_scheduler)
    assert len(paused_scheduler.get_jobs()) == 3  # fetch, retry, one edition group
    fetch_next = paused_scheduler.get_job("fetch").next_run_time
    assert daemon.reload() is True
    assert daemon.config is grown and daemon.pipeline.config is grown
    daemon.schedule_jobs(paused_scheduler)
    assert {j.id for j in paused_scheduler.get_jobs()} == {
        "fetch",
        "retry",
        "edition:daily 07:00|UTC",
        "edition:weekdays 06:15|UTC",
        "regroup:1",  # b is new: what is due for b now is sent at once (run --once)
    }
    assert daemon.regroup_job(now=utc(2026, 6, 1, 12)) is not None  # the paused worker's run
    paused_scheduler.remove_job("regroup:1")
    # An unchanged job is kept as it was: a reload does not restart the fetch interval.
    assert paused_scheduler.get_job("fetch").next_run_time == fetch_next
    assert daemon.reload() is True
    daemon.schedule_jobs(paused_scheduler)
    assert {j.id for j in paused_scheduler.get_jobs()} == {
        "fetch",
        "retry",
        "edition:weekdays 06:15|UTC",
    }


# -- a schedule change creates a new job: what is due now is not skipped until tomorrow ------


def _regroup_jobs(scheduler) -> list:
    return [j for j in scheduler.get_jobs() if j.id.startswith("regroup:")]


def _sent(store: Store) -> list[tuple[str, str]]:
    return sorted((d.subscriber, d.edition) for d in store.deliveries() if d.state == "sent")


def test_schedule_saved_on_the_web_just_before_its_time_is_sent(
    tmp_path: Path, store: Store, paused_scheduler
):
    a = sub("a@x.org", "daily 10:00")
    daemon, clock = _daemon(tmp_path, store, [a], utc(2026, 6, 8, 10, 0))
    assert [o.state for o in daemon.edition_job(("daily 10:00", "UTC")).outcomes] == [O_SENT]
    daemon.schedule_jobs(paused_scheduler)
    assert _regroup_jobs(paused_scheduler) == [] and not daemon.regrouped()
    # Tuesday 09:29:30: "daily 09:30" saved on the preferences page; the minute's group
    # check runs at 09:30:10, after the new group's first fire time.
    store.set_prefs("a@x.org", {"version": 1, "schedule": "daily 09:30"})
    write_feed(tmp_path / "feed.xml", [("2606.99003", "Time series forecasting", "New.")])
    clock.now = utc(2026, 6, 9, 9, 30, 10)
    assert daemon.regrouped()
    daemon.schedule_jobs(paused_scheduler)
    assert not daemon.regrouped()
    assert {j.id for j in paused_scheduler.get_jobs()} - {
        j.id for j in _regroup_jobs(paused_scheduler)
    } == {"fetch", "retry", "edition:daily 09:30|UTC"}
    (job,) = _regroup_jobs(paused_scheduler)
    assert job.max_instances == 1 and job.misfire_grace_time == 6 * 3600
    result = job.func(*job.args)  # what the single worker runs at once
    assert [(o.subscriber, o.edition, o.state) for o in result.outcomes] == [
        ("a@x.org", "2026-06-09", O_SENT)
    ]
    assert result.line.startswith("regroup [1 subscriber(s)]: ")
    assert store.last_job("regroup [1 subscriber(s)]") is not None
    # Nothing twice: the regroup job again, a late fire of the new group, a later check.
    assert daemon.regroup_job() is None
    assert daemon.edition_job(("daily 09:30", "UTC")).outcomes == ()
    daemon.schedule_jobs(paused_scheduler)
    assert len(_regroup_jobs(paused_scheduler)) == 1  # only the one (the worker is paused)
    assert daemon.retry_job() is None
    assert _sent(store) == [("a@x.org", "2026-06-08"), ("a@x.org", "2026-06-09")]
    assert len(_outbox(tmp_path)) == 2


def test_moving_to_an_earlier_time_already_passed_and_an_existing_group(
    tmp_path: Path, store: Store, paused_scheduler
):
    """a moves from 10:00 to 08:00 at 09:00, where b already is, while c stays at 10:00:
    the set of groups does not change, yet a's edition is due now (as run --once says)."""
    subs = [
        sub("a@x.org", "daily 10:00"),
        sub("b@x.org", "daily 08:00"),
        sub("c@x.org", "daily 10:00"),
    ]
    daemon, clock = _daemon(tmp_path, store, subs, utc(2026, 6, 9, 8, 0))
    assert [o.subscriber for o in daemon.edition_job(("daily 08:00", "UTC")).outcomes] == [
        "b@x.org"
    ]
    groups = set(daemon.groups())
    daemon.schedule_jobs(paused_scheduler)
    store.set_prefs("a@x.org", {"version": 1, "schedule": "daily 08:00"})
    clock.now = utc(2026, 6, 9, 9, 0, 30)
    assert set(daemon.groups()) == groups  # the old check (group keys only) saw nothing
    assert daemon.regrouped()
    refs, _ = daemon.pipeline.due(daemon.pipeline.subscribers(), utc(2026, 6, 9, 9, 40))
    assert editions(refs) == [("a@x.org", "2026-06-09")]  # what run --once would send
    daemon.schedule_jobs(paused_scheduler)
    (job,) = _regroup_jobs(paused_scheduler)
    result = job.func(*job.args)
    assert [(o.subscriber, o.edition, o.state) for o in result.outcomes] == [
        ("a@x.org", "2026-06-09", O_SENT)
    ]
    # c's 10:00 fire later sends c only; a is not sent twice.
    clock.now = utc(2026, 6, 9, 10, 0, 1)
    assert [o.subscriber for o in daemon.edition_job(("daily 10:00", "UTC")).outcomes] == [
        "c@x.org"
    ]
    assert daemon.catch_up().outcomes == ()
    assert _sent(store) == [
        ("a@x.org", "2026-06-09"),
        ("b@x.org", "2026-06-09"),
        ("c@x.org", "2026-06-09"),
    ]


def test_a_reload_that_changes_a_time_zone_sends_what_is_due_now(
    tmp_path: Path, store: Store, paused_scheduler
):
    """The YAML moves a from 07:00 UTC to 07:00 Berlin (05:00 UTC) at 06:00 UTC: the new
    job's first fire would be tomorrow, yet today's Berlin edition is an hour due."""
    a = sub("a@x.org", "daily 07:00", "UTC")
    daemon, _ = _daemon(tmp_path, store, [a], utc(2026, 6, 9, 6, 0))
    berlin = replace(daemon.config, subscribers=(sub("a@x.org", "daily 07:00", "Europe/Berlin"),))
    daemon.loader = lambda _p: berlin
    daemon.schedule_jobs(paused_scheduler)
    assert daemon.reload() is True
    daemon.schedule_jobs(paused_scheduler)
    assert paused_scheduler.get_job("edition:daily 07:00|Europe/Berlin") is not None
    assert paused_scheduler.get_job("edition:daily 07:00|UTC") is None
    (job,) = _regroup_jobs(paused_scheduler)
    result = job.func(*job.args)
    assert [(o.edition, o.state) for o in result.outcomes] == [("2026-06-09", O_SENT)]
    # A reload that changes nothing about groups queues no regroup job.
    job.remove()
    assert daemon.reload() is True
    daemon.schedule_jobs(paused_scheduler)
    assert _regroup_jobs(paused_scheduler) == []


def test_a_regroup_job_cut_short_is_retried(tmp_path: Path, store: Store, paused_scheduler):
    a = sub("a@x.org", "daily 10:00")
    daemon, clock = _daemon(tmp_path, store, [a], utc(2026, 6, 9, 9, 0))
    daemon.schedule_jobs(paused_scheduler)
    store.set_prefs("a@x.org", {"version": 1, "schedule": "daily 08:00"})
    daemon.schedule_jobs(paused_scheduler)
    broken = replace(daemon.config, templates=tmp_path / "no-such-templates")
    good = daemon.pipeline
    daemon.pipeline = Pipeline(broken, store)
    result = daemon.regroup_job()
    assert result is not None and not result.ok and result.outcomes == ()
    daemon.pipeline = good
    clock.now = utc(2026, 6, 9, 9, 5)
    retried = daemon.retry_job()
    assert retried is not None
    assert [(o.subscriber, o.edition, o.state) for o in retried.outcomes] == [
        ("a@x.org", "2026-06-09", O_SENT)
    ]


# -- send/preview --date D: the edition of local date D, never the next day's ---------------


def _ref_edition(tmp_path: Path, store: Store, schedule: str, tz: str, now: datetime, day):
    pipe = Pipeline(make_config(tmp_path, [sub("a@x.org", schedule, tz)]), store)
    return pipe.edition_ref(pipe.subscribers()[0], now=now, on_date=day).edition


@pytest.mark.parametrize(
    ("schedule", "tz", "day", "expected"),
    [
        ("daily 00:00", "UTC", "2026-11-29", "2026-11-29"),  # was 2026-11-30
        ("daily 00:00", "Europe/Berlin", "2026-11-29", "2026-11-29"),
        ("0 0,12 * * *", "UTC", "2026-11-29", "2026-11-29T12:00"),  # was 2026-11-30T00:00
        ("0 0 * * *", "UTC", "2026-11-29", "2026-11-29"),
        ("weekly mon 00:00", "UTC", "2026-11-29", "2026-W48"),  # Sunday: was 2026-W49
        ("weekly mon 00:00", "UTC", "2026-11-30", "2026-W49"),
        ("daily 07:00", "UTC", "2026-11-29", "2026-11-29"),
        ("0 7,19 * * *", "UTC", "2026-11-28", "2026-11-28T19:00"),
        # Late evening fires in New York are the next UTC day: still local date D.
        ("0 9,23 * * *", "America/New_York", "2026-11-29", "2026-11-29T23:00"),
    ],
)
def test_date_edition_is_that_local_dates(
    tmp_path: Path, store: Store, schedule: str, tz: str, day: str, expected: str
):
    from datetime import date

    now = utc(2026, 12, 1, 12)
    got = _ref_edition(tmp_path, store, schedule, tz, now, date.fromisoformat(day))
    assert got == expected


def test_date_today_is_the_edition_so_far_as_without_date(tmp_path: Path, store: Store):
    """--date of today at 08:00 with "0 0,12": the 00:00 edition (as a send without --date),
    not the 12:00 one still to come (which would then never be sent)."""
    from datetime import date

    now = utc(2026, 11, 29, 8)
    pipe = Pipeline(make_config(tmp_path, [sub("a@x.org", "0 0,12 * * *")]), store)
    s = pipe.subscribers()[0]
    assert pipe.edition_ref(s, now=now, on_date=date(2026, 11, 29)).edition == "2026-11-29T00:00"
    assert pipe.edition_ref(s, now=now).edition == "2026-11-29T00:00"
    later = utc(2026, 11, 29, 12, 0, 1)
    assert pipe.edition_ref(s, now=later, on_date=date(2026, 11, 29)).edition == (
        "2026-11-29T12:00"
    )
    assert _ref_edition(tmp_path, store, "daily 07:00", "UTC", now, date(2026, 11, 29)) == (
        "2026-11-29"
    )


def test_cli_send_date_records_that_day_and_the_next_days_edition_still_goes(
    tmp_path: Path, capsys
):
    """The real CLI: ``send --date YESTERDAY`` with "daily 00:00" UTC records yesterday's
    edition (it recorded today's, which was then never sent); ``preview --date`` agrees."""
    import json

    from test_reporting import run, write_config

    from newsletter.store import SENT

    cfg = write_config(tmp_path, schedule="daily 00:00")
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    assert run(capsys, "--config", str(cfg), "fetch")[0] == 0
    code, out, err = run(
        capsys,
        "--config",
        str(cfg),
        "preview",
        "-s",
        "good@example.org",
        "--date",
        yesterday.isoformat(),
        "--format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["edition"] == yesterday.isoformat()
    code, out, err = run(
        capsys, "--config", str(cfg), "send", "--no-fetch", "--date", yesterday.isoformat()
    )
    assert code == 0, err
    with Store(tmp_path / "state.db") as st:  # empty (its papers came today), but that day's
        assert [d.edition for d in st.deliveries()] == [yesterday.isoformat()]
    code, out, err = run(capsys, "--config", str(cfg), "send", "--no-fetch")
    assert code == 0, err
    with Store(tmp_path / "state.db") as st:
        assert st.delivery("good@example.org", today.isoformat()).state == SENT  # type: ignore[union-attr]


def test_an_edition_found_empty_by_hand_before_its_time_is_selected_again_at_its_time(
    tmp_path: Path, store: Store
):
    """`send` run by hand at 05:00 found nothing new and recorded the day's edition empty;
    the daemon skipped it at 07:00 although papers had come in at 06:00, so the reader got
    no digest that day. At its time it is selected again; found empty at or after its
    time, it stays done."""
    from newsletter.models import Paper
    from newsletter.pipeline import O_EMPTY

    s = sub("a@x.org")
    pipe = Pipeline(make_config(tmp_path, [s]), store)
    early = utc(2026, 6, 1, 5, 0)
    (out,) = pipe.send([pipe.edition_ref(s, now=early)], now=early)
    assert (out.edition, out.state) == ("2026-06-01", O_EMPTY)
    assert editions(pipe.due([s], utc(2026, 6, 1, 6, 59))[0]) == []  # (before its time)

    papers = [Paper(id=a, title=t, abstract=ab, categories=("cs.LG",)) for a, t, ab in FORECAST]
    store.upsert_papers(papers, now=utc(2026, 6, 1, 6, 0))
    at_time = utc(2026, 6, 1, 7, 5)
    refs, _ = pipe.due([s], at_time)
    assert editions(refs) == [("a@x.org", "2026-06-01")]
    (sent,) = pipe.send(refs, now=at_time)
    assert (sent.state, sent.papers) == (O_SENT, 2)
    assert pipe.due([s], utc(2026, 6, 1, 7, 30))[0] == []  # sent: done

    # The next day nothing new came in: found empty at its time, the edition is done and
    # not selected again on every later check.
    next_day = utc(2026, 6, 2, 7, 1)
    (out,) = pipe.send(pipe.due([s], next_day)[0], now=next_day)
    assert (out.edition, out.state) == ("2026-06-02", O_EMPTY)
    assert pipe.due([s], utc(2026, 6, 2, 7, 30))[0] == []

"""The scheduler daemon behind ``newsletter run``: the only module that imports APScheduler.

What it runs (all through ``Pipeline``, the same steps ``run --once`` takes):

- at start, one catch-up pass with ``run_once`` semantics: stale sources are fetched, then
  every edition whose time is within ``scheduler.grace_hours`` and not yet sent is sent
  (several missed fire times coalesce into the latest one; older ones are skipped with a
  log line that says so);
- a fetch job on ``scheduler.fetch_schedule`` (``every 60m`` or a cron line, UTC), and one
  per source that sets its own ``fetch_every``;
- one edition job per (schedule, time zone) group of subscribers, on an ``EditionTrigger``
  that asks ``newsletter.schedule`` for the next fire time, so daylight-saving days behave
  as the project defines (a fall-back hour fires once, a spring-forward gap moves the
  time forward), not as cron does. Each fire fetches stale sources, then sends the group's
  due editions. Editions are keyed in the ledger, so a fire never sends twice. The first
  fire time is looked for from the daemon's start (before the catch-up pass), so a fire
  time that passes while the catch-up runs still fires;
- after a reschedule (a config reload, or a schedule or time zone saved on the web
  preferences page, looked for every ``GROUPS_EVERY`` seconds), a one-off ``regroup`` job
  with ``run_once`` semantics for the subscribers who moved group or are new: their new
  job's trigger only looks ahead, so an edition whose time passed before it existed (or
  that the new schedule put earlier today) would otherwise wait until the next day;
- a ``retry`` job every ``RETRY_EVERY`` (5 minutes): editions left unsent by a job that
  stopped early (the relay unreachable, an error) or left ``pending`` in the ledger are
  sent again while still within ``scheduler.grace_hours``. A pass with nothing to retry
  does nothing and logs nothing (above DEBUG).

A send that stops early (``Pipeline.aborted``) is an error of its job: an ERROR log line
and ``error`` in the job log.

All jobs run one at a time on a single worker thread (the ledger's stale-claim release
assumes one sender per state; the state lock guarantees one daemon per state).

Signals: SIGTERM/SIGINT stop taking new work; the job in flight finishes its current
batch and stops (a second signal abandons at once: claimed rows go back to ``pending``
on the next start); exit 0. SIGHUP, or a changed config file (mtime polled every few
seconds), reloads the config; an invalid new config keeps the old one running and logs why.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config
from .errors import NewsletterError
from .models import Subscriber
from .pipeline import (
    O_ALREADY,
    O_EMPTY,
    O_FAILED,
    O_FAILED_EARLIER,
    O_INACTIVE,
    O_RETRY,
    O_SENT,
    O_STOPPED,
    EditionRef,
    Outcome,
    Pipeline,
    summarise_missed,
)
from .schedule import Schedule, parse_fetch_schedule, parse_schedule
from .store import Store, sqlite_path, utcnow

log = logging.getLogger("newsletter.scheduler")

Clock = Callable[[], datetime]
GroupKey = tuple[str, str]  # (schedule text, time zone)

POLL_SECONDS = 2.0  # how often the main loop looks at the config file's mtime
GROUPS_EVERY = 60.0  # how often saved web preferences are checked for schedule changes
BATCH = 200  # editions per send call; a stop request is honoured between batches
RETRY_EVERY = timedelta(minutes=5)  # how often unsent editions within the grace are retried


class EditionTrigger(BaseTrigger):
    """An APScheduler trigger whose fire times come from ``Schedule.next`` in a time zone.

    ``lookback`` bounds how far back APScheduler is told about missed fire times (it
    coalesces them into one run anyway; the pipeline decides what is due).


    ``start``: where the first fire time is looked for when there is none before (the
    daemon's start, taken before its catch-up pass). Without it a fire time that passes
    during a slow catch-up would be skipped until the next day; with it APScheduler runs
    that fire at once (the ledger removes a duplicate of what the catch-up sent).
    """

    __slots__ = ("lookback", "schedule", "start", "tz")

    def __init__(
        self,
        schedule: Schedule,
        tz: ZoneInfo,
        *,
        lookback: timedelta = timedelta(hours=6),
        start: datetime | None = None,
    ) -> None:
        self.schedule = schedule
        self.tz = tz
        self.lookback = lookback
        self.start = start

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            first = now if self.start is None else min(now, self.start)
            start = max(first, now - self.lookback)
        else:
            start = max(previous_fire_time, now - self.lookback)
        return self.schedule.next(start, self.tz)

    def __str__(self) -> str:
        return f"schedule[{self.schedule.text} {self.tz.key}]"

    def __repr__(self) -> str:
        return f"<EditionTrigger {self.schedule.text!r} {self.tz.key}>"


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one job run did; ``line`` is the log line."""

    job: str
    seconds: float
    outcomes: tuple[Outcome, ...] = ()
    missed: tuple[str, ...] = ()
    sources: int = 0
    new_papers: int = 0
    errors: tuple[str, ...] = ()
    stopped: bool = False  # a stop request cut the job short

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.count(O_FAILED)

    @property
    def line(self) -> str:
        parts = []
        if self.sources or self.job.startswith("fetch"):
            parts.append(f"{self.sources} source(s) fetched, {self.new_papers} new paper(s)")
        if not self.job.startswith("fetch"):
            parts.append(
                f"{len(self.outcomes)} edition(s): {self.count(O_SENT)} sent, "
                f"{self.count(O_ALREADY)} already sent, {self.count(O_EMPTY)} empty, "
                f"{self.count(O_FAILED)} failed, "
                f"{self.count(O_RETRY) + self.count(O_STOPPED)} to retry, "
                f"{self.count(O_INACTIVE)} not sent (unsubscribed/suppressed)"
            )
            if self.count(O_FAILED_EARLIER):  # skipped: send --retry-failed resends them
                parts.append(f"{self.count(O_FAILED_EARLIER)} failed earlier (not resent)")
            if self.missed:
                parts.append(f"{len(self.missed)} skipped (outside the grace period)")
        if self.stopped:
            parts.append("stopped early on request")
        text = f"{self.job}: " + "; ".join(parts) + f" in {self.seconds:.2f}s"
        if self.errors:
            text += f"; {len(self.errors)} error(s): " + " | ".join(self.errors)
        return text


def group_subscribers(subs: Sequence[Subscriber]) -> dict[GroupKey, list[Subscriber]]:
    """Subscribers grouped by (schedule, time zone): one edition job per group."""
    groups: dict[GroupKey, list[Subscriber]] = {}
    for sub in subs:
        groups.setdefault(_key(sub), []).append(sub)
    return groups


def _job_id(prefix: str, *parts: str) -> str:
    return prefix + ":" + "|".join(parts)


def _key(sub: Subscriber) -> GroupKey:
    return (parse_schedule(sub.schedule).text, sub.timezone)


def _left(refs: Sequence[EditionRef], outcomes: Sequence[Outcome]) -> int:
    """Editions of a job not sent because its send stopped early: those of the batch that
    stopped (``O_STOPPED`` outcomes) and those of the batches never started."""
    return len(refs) - sum(1 for o in outcomes if o.state != O_STOPPED)


def _aborted(why: str, left: int, every: timedelta) -> str:
    seconds = int(every.total_seconds())
    when = f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
    return (
        f"sending stopped early: {why}; {left} edition(s) not sent, retried every "
        f"{when} while within scheduler.grace_hours"
    )


class Daemon:
    """The daemon's work, without signals or threads: each job is a plain method.

    Tests drive it with an injected ``clock``; ``run_daemon`` wires it to APScheduler.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = utcnow,
        loader: Callable[[Path], Config] | None = None,
        batch: int = BATCH,
        retry_every: timedelta = RETRY_EVERY,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.loader = loader
        self.batch = max(1, batch)
        self.retry_every = retry_every
        self.pipeline = Pipeline(config, store)
        self.stopping = threading.Event()
        self._work = threading.Lock()  # one job at a time, whoever calls
        # Groups whose last edition job was cut short (None: a catch-up or retry pass over
        # everyone): the retry job looks at their editions even without a ledger row.
        self._unfinished: set[GroupKey | None] = set()
        # Each subscriber's group when the jobs were last scheduled (None: not yet), and
        # the subscribers who have moved group (or are new) since: the regroup job sends
        # their due editions, which their new job's trigger would only see from now on.
        self._assigned: dict[str, GroupKey] | None = None
        self._moved: set[str] = set()
        self._moved_lock = threading.Lock()
        self._regroups = 0

    # -- jobs ---------------------------------------------------------------------------

    def catch_up(self, now: datetime | None = None) -> JobResult:
        """``run_once`` semantics: fetch stale sources, then every edition due now."""
        return self._editions("catch-up", None, now)

    def edition_job(self, key: GroupKey, now: datetime | None = None) -> JobResult:
        """One (schedule, time zone) group's fire: fetch stale sources, send its editions."""
        return self._editions(f"edition [{key[0]} {key[1]}]", key, now)

    def regroup_job(self, now: datetime | None = None) -> JobResult | None:
        """``run_once`` semantics for the subscribers who moved group (a schedule or time
        zone changed on the web page or in a reloaded config) or are new since the last
        reschedule: what ``Pipeline.due`` finds due for them now is sent.

        Their new group's trigger looks for fire times from the reschedule on, so an
        edition whose time passed shortly before (or that the new schedule put earlier
        today) would otherwise wait for the next day. The ledger keeps an edition the
        old group's job already sent from going twice. Returns None when nobody moved.
        """
        with self._moved_lock:
            emails, self._moved = self._moved, set()
        if not emails:
            return None
        return self._editions(f"regroup [{len(emails)} subscriber(s)]", None, now, emails)

    def retry_job(self, now: datetime | None = None) -> JobResult | None:
        """Send again what a cut-short job left unsent, while within the grace period.

        Looks at the subscribers with a ``pending``/``sending`` ledger row and at the groups
        whose last job stopped early or failed; sends their editions that ``Pipeline.due``
        still finds due (fetching stale sources first). Returns None, logging nothing above
        DEBUG, when there is nothing to retry.
        """
        started = _time.perf_counter()
        outcomes: list[Outcome] = []
        errors: list[str] = []
        stopped = cut_short = False
        n_sources = new = 0
        with self._work:
            pipe = self.pipeline
            flagged = set(self._unfinished)
            try:
                now = now or self.clock()
                grace = timedelta(hours=pipe.config.scheduler.grace_hours)
                # A row is created at or after its fire time (stamped by the wall clock:
                # a day of margin); due() below decides what is still within the grace.
                pending = self.store.pending_subscribers(since=now - grace - timedelta(days=1))
                if not flagged and not pending:
                    log.debug("retry: nothing to retry")
                    return None
                subs = pipe.subscribers()
                if None not in flagged:
                    subs = [s for s in subs if s.email in pending or _key(s) in flagged]
                refs, _missed = pipe.due(subs, now)  # the skip lines were logged by their job
                if not refs:
                    self._unfinished -= flagged
                    log.debug("retry: nothing due within the grace period")
                    return None
                reports = pipe.fetch(now=now, only_stale=True)
                n_sources, new = len(reports), sum(r.new for r in reports)
                errors += [_source_error(r.name, e) for r in reports for e in r.errors]
                stopped, aborted = self._send(pipe, refs, outcomes)
                if aborted:
                    cut_short = True
                    errors.append(_aborted(aborted, _left(refs, outcomes), self.retry_every))
            except Exception as err:  # the daemon outlives a bad job; the line says why
                cut_short = True
                errors.append(_describe(err))
                log.debug("retry failed", exc_info=True)
            if not cut_short and not stopped:
                self._unfinished -= flagged
            result = JobResult(
                "retry",
                _time.perf_counter() - started,
                outcomes=tuple(outcomes),
                sources=n_sources,
                new_papers=new,
                errors=tuple(errors),
                stopped=stopped,
            )
            self._record(result)
        return result

    def fetch_job(self, sources: Sequence[str] | None = None) -> JobResult:
        """Fetch the named sources (or every enabled source without its own ``fetch_every``)."""
        name = "fetch [" + (", ".join(sources) if sources else "all") + "]"
        started = _time.perf_counter()
        with self._work:
            pipe = self.pipeline
            wanted = set(sources) if sources else None
            picked = tuple(
                s
                for s in pipe.config.sources
                if (s.name in wanted if wanted is not None else s.fetch_every is None)
            )
            errors: list[str] = []
            reports = []
            try:
                sub_pipe = Pipeline(replace(pipe.config, sources=picked), self.store)
                reports = sub_pipe.fetch(now=self.clock())
            except Exception as err:  # the daemon outlives a bad job; the line says why
                errors.append(_describe(err))
                log.debug("fetch job failed", exc_info=True)
            errors += [_source_error(r.name, e) for r in reports for e in r.errors]
            result = JobResult(
                name,
                _time.perf_counter() - started,
                sources=len(reports),
                new_papers=sum(r.new for r in reports),
                errors=tuple(errors),
            )
            self._record(result)
        return result

    def _editions(
        self,
        name: str,
        key: GroupKey | None,
        now: datetime | None,
        emails: set[str] | None = None,
    ) -> JobResult:
        started = _time.perf_counter()
        outcomes: list[Outcome] = []
        missed: list[str] = []
        errors: list[str] = []
        stopped = cut_short = False
        n_sources = new = 0
        with self._work:
            pipe = self.pipeline
            try:
                now = now or self.clock()
                subs = pipe.subscribers()
                if key is not None:
                    subs = [s for s in subs if _key(s) == key]
                    now = _not_before_fire(key, now)
                if emails is not None:
                    subs = [s for s in subs if s.email in emails]
                reports = pipe.fetch(now=now, only_stale=True)
                n_sources, new = len(reports), sum(r.new for r in reports)
                errors += [_source_error(r.name, e) for r in reports for e in r.errors]
                refs, missed = pipe.due(subs, now)
                for line in summarise_missed(missed):
                    log.info("%s", line)
                stopped, aborted = self._send(pipe, refs, outcomes)
                if aborted:
                    cut_short = True
                    errors.append(_aborted(aborted, _left(refs, outcomes), self.retry_every))
            except Exception as err:  # the daemon outlives a bad job; the line says why
                cut_short = True
                errors.append(_describe(err))
                log.debug("%s failed", name, exc_info=True)
            if cut_short and emails is not None:  # the retry job picks up their groups
                try:
                    self._unfinished.update(
                        _key(s) for s in self.pipeline.subscribers() if s.email in emails
                    )
                except Exception:  # the preferences unreadable: retry everyone's
                    self._unfinished.add(None)
            elif cut_short:
                self._unfinished.add(key)  # the retry job picks its editions up
            result = JobResult(
                name,
                _time.perf_counter() - started,
                outcomes=tuple(outcomes),
                missed=tuple(missed),
                sources=n_sources,
                new_papers=new,
                errors=tuple(errors),
                stopped=stopped,
            )
            self._record(result)
        return result

    def _send(
        self, pipe: Pipeline, refs: Sequence[EditionRef], outcomes: list[Outcome]
    ) -> tuple[bool, str | None]:
        """Send in batches, checking for a stop request in between.

        Returns (stopped on request, why sending stopped early if it did). A batch whose
        send stopped early (``Pipeline.aborted``: the relay unreachable, login refused)
        ends the job: the later batches would meet the same relay.

        The batches share one selection index per window (``Pipeline`` keeps it for the
        job, then forgets it). They are built in this process: the daemon has threads of
        its own, and a fork would copy whatever locks they hold.
        """
        try:
            for i in range(0, len(refs), self.batch):
                if self.stopping.is_set():
                    log.warning(
                        "stop requested: %d edition(s) not started; they are sent on the "
                        "next start if still within scheduler.grace_hours",
                        len(refs) - i,
                    )
                    return True, None
                outcomes += pipe.send(refs[i : i + self.batch], now=self.clock(), workers=1)
                if pipe.aborted:  # set by this send call (it returned normally)
                    return False, pipe.aborted
            return False, None
        finally:
            pipe.forget_selectors()

    def _record(self, result: JobResult) -> None:
        level = logging.INFO if result.ok else logging.ERROR
        log.log(level, "%s", result.line)
        for o in result.outcomes:
            if o.state in (O_FAILED, O_RETRY):
                log.warning("%s %s: %s: %s", o.subscriber, o.edition, o.state, o.detail)
        finished = utcnow()
        try:
            self.store.log_job(
                result.job,
                started=finished - timedelta(seconds=result.seconds),
                finished=finished,
                outcome="ok" if result.ok else "error",
                detail=result.line,
            )
        except Exception as err:  # the job log is informational; never fail a run over it
            log.warning("could not record the job run in the state: %s", _describe(err))

    # -- configuration ------------------------------------------------------------------

    def groups(self) -> dict[GroupKey, list[Subscriber]]:
        return group_subscribers(self.pipeline.subscribers())

    def regrouped(self) -> bool:
        """Whether a subscriber's group (schedule, time zone) changed, or one came or went,
        since the jobs were last scheduled: then ``schedule_jobs`` is due again."""
        return {s.email: _key(s) for s in self.pipeline.subscribers()} != self._assigned

    def reload(self, path: Path | None = None) -> bool:
        """Load the config again; on any problem keep the running one and log why."""
        path = path or self.config.path
        if self.loader is None:
            from .config import load_config

            self.loader = load_config
        try:
            new = self.loader(path)
            if sqlite_path(new.state).resolve() != sqlite_path(self.config.state).resolve():
                raise NewsletterError(
                    f"state changed from '{self.config.state}' to '{new.state}'; "
                    "restart newsletter run to switch states"
                )
            _check_schedules(new)
        except Exception as err:
            log.error("config reload failed, keeping the running config: %s", _describe(err))
            return False
        with self._work:  # never swap under a running job
            self.config = new
            self.pipeline = Pipeline(new, self.store)
        log.info(
            "config reloaded from %s: %d source(s), %d subscriber(s)",
            path,
            len(new.sources),
            len(new.subscribers),
        )
        return True

    # -- APScheduler wiring ---------------------------------------------------------------

    def schedule_jobs(
        self, scheduler: BackgroundScheduler, *, since: datetime | None = None
    ) -> None:
        """Make the scheduler's jobs match the current config.

        A job whose trigger is unchanged is kept as it is (an interval is not restarted
        by a reload); changed ones are replaced, and jobs no longer wanted removed.
        ``since``: the daemon's start (taken before the catch-up pass); a new edition
        job's first fire time is looked for from there, so one that passed during the
        catch-up still fires. Reschedules after a reload pass None (from now): then the
        subscribers who moved group or are new since the previous call get a one-off
        ``regroup`` job, run at once on the same single worker, that sends what is due
        for them now (``run --once`` semantics), so an edition whose time passed before
        their new job existed is not skipped until the next day.
        """
        grace = self.config.scheduler.grace_hours
        opts: dict[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": max(1, int(grace * 3600)),
            "replace_existing": True,
        }
        wanted: dict[str, tuple[BaseTrigger, Callable[..., JobResult | None], list[Any], str]] = {}
        fetch_every = parse_fetch_schedule(self.config.scheduler.fetch_schedule)
        wanted["fetch"] = (_trigger(fetch_every, grace), self.fetch_job, [], "fetch [all]")
        wanted["retry"] = (
            IntervalTrigger(seconds=self.retry_every.total_seconds(), timezone=UTC),
            self.retry_job,
            [],
            "retry",
        )
        for src in self.config.sources:
            if src.enabled and src.fetch_every:
                wanted[_job_id("fetch", src.name)] = (
                    _trigger(parse_fetch_schedule(src.fetch_every), grace),
                    self.fetch_job,
                    [(src.name,)],
                    f"fetch [{src.name}]",
                )
        subs = self.pipeline.subscribers()
        assigned = {sub.email: _key(sub) for sub in subs}
        if self._assigned is not None:
            moved = {e for e, k in assigned.items() if self._assigned.get(e) != k}
            with self._moved_lock:
                self._moved |= moved
        self._assigned = assigned
        for key in group_subscribers(subs):
            trigger = EditionTrigger(
                parse_schedule(key[0]),
                ZoneInfo(key[1]),
                lookback=timedelta(hours=grace),
                start=since,
            )
            wanted[_job_id("edition", *key)] = (
                trigger,
                self.edition_job,
                [key],
                f"edition [{key[0]} {key[1]}]",
            )
        with self._moved_lock:
            regroup = bool(self._moved)
        if regroup:  # a unique id: one queued behind a running one is never skipped
            self._regroups += 1
            wanted[_job_id("regroup", str(self._regroups))] = (
                DateTrigger(run_date=datetime.now(UTC), timezone=UTC),
                self.regroup_job,
                [],
                "regroup",
            )
        current = {job.id: job for job in scheduler.get_jobs()}
        for job_id, job in current.items():
            if job_id not in wanted and not job_id.startswith("regroup:"):
                job.remove()  # a queued regroup job stays: it sends for everyone moved
        for job_id, (trigger, func, args, name) in wanted.items():
            old = current.get(job_id)
            if (
                old is not None
                and str(old.trigger) == str(trigger)
                and old.misfire_grace_time == opts["misfire_grace_time"]
            ):
                continue
            scheduler.add_job(func, trigger, args=args, id=job_id, name=name, **opts)

    def describe_jobs(self, scheduler: BackgroundScheduler) -> list[str]:
        lines = []
        for job in scheduler.get_jobs():
            nxt = getattr(job, "next_run_time", None)
            lines.append(f"{job.name}: next {nxt.isoformat(timespec='minutes') if nxt else '-'}")
        return lines


def _trigger(every: timedelta | Schedule, grace: float) -> BaseTrigger:
    if isinstance(every, timedelta):
        return IntervalTrigger(seconds=every.total_seconds(), timezone=UTC)
    return EditionTrigger(every, ZoneInfo("UTC"), lookback=timedelta(hours=grace))


def _not_before_fire(key: GroupKey, now: datetime) -> datetime:
    """Guard against a timer that wakes a hair early: snap ``now`` to a fire time just ahead."""
    early = timedelta(seconds=5)
    fire = parse_schedule(key[0]).next(now - early, ZoneInfo(key[1]))
    return fire if now < fire <= now + early else now


def _check_schedules(config: Config) -> None:
    """Every schedule the daemon would build parses (the config loader may not check all)."""
    try:
        parse_fetch_schedule(config.scheduler.fetch_schedule)
    except ValueError as err:
        raise NewsletterError(f"scheduler.fetch_schedule: {err}") from None
    for src in config.sources:
        if src.fetch_every:
            try:
                parse_fetch_schedule(src.fetch_every)
            except ValueError as err:
                raise NewsletterError(f"sources.{src.name}.fetch_every: {err}") from None
    for sub in config.subscribers:
        try:
            parse_schedule(sub.schedule)
            ZoneInfo(sub.timezone)
        except Exception as err:
            raise NewsletterError(f"subscriber {sub.email}: {_describe(err)}") from None


def _source_error(name: str, error: str) -> str:
    return error if f"'{name}'" in error else f"source '{name}': {error}"


def _describe(err: BaseException) -> str:
    text = "; ".join(line for line in str(err).splitlines() if line.strip())
    if isinstance(err, NewsletterError):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def run_daemon(
    config_path: Path,
    *,
    poll_seconds: float | None = None,
    clock: Clock = utcnow,
) -> None:
    """``newsletter run``: hold the state lock, catch up, then run jobs until SIGTERM/SIGINT.

    Raises ``LockError`` (naming the holder) when another process has the state, and
    ``ConfigError`` when the config is invalid at start. Returns normally on a stop signal.
    """
    from .config import load_config
    from .lock import StateLock

    if poll_seconds is None:
        poll_seconds = float(os.environ.get("NEWSLETTER_CONFIG_POLL", POLL_SECONDS))
    config = load_config(config_path)
    _check_schedules(config)
    # APScheduler's own warnings (a missed run, a job still running) go where ours go.
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = logging.getLogger("newsletter").handlers
    aps.setLevel(logging.WARNING)
    aps.propagate = not aps.handlers
    lock = StateLock(sqlite_path(config.state), purpose="newsletter run").acquire()
    store: Store | None = None
    scheduler: BackgroundScheduler | None = None
    previous: dict[int, Any] = {}
    try:
        store = Store(config.state)
        daemon = Daemon(config, store, clock=clock, loader=load_config)
        reload_requested = threading.Event()

        def on_stop(signum: int, frame: FrameType | None) -> None:
            if daemon.stopping.is_set():
                log.warning(
                    "second %s: abandoning in-flight sends now; messages claimed but not "
                    "confirmed go back to pending on the next start",
                    signal.Signals(signum).name,
                )
                for h in logging.getLogger("newsletter").handlers:
                    h.flush()
                os._exit(0)
            log.info(
                "%s received: taking no new work, finishing the job in flight",
                signal.Signals(signum).name,
            )
            daemon.stopping.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            reload_requested.set()  # the main loop picks it up within poll_seconds

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_stop)
        if hasattr(signal, "SIGHUP"):
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)

        log.info(
            "newsletter run started (pid %d): state %s, %d subscriber(s), grace %g h",
            os.getpid(),
            config.state,
            len(config.subscribers),
            config.scheduler.grace_hours,
        )
        started = clock()  # before the catch-up: a fire time passing during it still fires
        daemon.catch_up()
        if daemon.stopping.is_set():
            return

        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            timezone=UTC,
        )
        daemon.schedule_jobs(scheduler, since=started)
        scheduler.start()
        for line in daemon.describe_jobs(scheduler):
            log.info("job %s", line)

        mtime = _mtime(config_path)
        next_groups_check = _time.monotonic() + GROUPS_EVERY
        while not daemon.stopping.wait(poll_seconds):
            changed = _mtime(config_path)
            reschedule = False
            if reload_requested.is_set() or changed != mtime:
                why = "SIGHUP" if reload_requested.is_set() else "config file changed"
                reload_requested.clear()
                mtime = changed
                log.info("reloading the config (%s)", why)
                reschedule = daemon.reload(config_path)
            if _time.monotonic() >= next_groups_check:  # web preferences may move schedules
                next_groups_check = _time.monotonic() + GROUPS_EVERY
                try:  # a subscriber who moved to an existing group counts too
                    reschedule = reschedule or daemon.regrouped()
                except Exception as err:
                    log.error("could not read subscriber preferences: %s", _describe(err))
            if reschedule:
                daemon.schedule_jobs(scheduler)
                for line in daemon.describe_jobs(scheduler):
                    log.info("job %s", line)
    finally:
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)  # the job in flight stops between batches
        if store is not None:
            store.close()
        lock.release()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("newsletter run stopped")
        sys.stderr.flush()

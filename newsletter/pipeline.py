"""The job: fetch, select, render, deliver, record.

``run_once(config, now)`` is what both ``newsletter run --once`` and the daemon's
timers call. ``Pipeline`` holds what a run compiles once (templates, composer,
transport, signing secret) and exposes the steps the commands share, so that
``preview`` shows exactly what ``send`` would send.

Edition windows: an edition considers the papers first stored after the previous
edition's cutoff (or ``defaults.lookback_days`` back, for a first edition) and up
to its own cutoff, minus every paper already sent to that subscriber. The cutoff
is recorded in the ledger, so no paper falls between two editions.
"""

from __future__ import annotations

import gc
import hmac
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from .config import Config
from .errors import NewsletterError
from .models import (
    DeliveryResult,
    Digest,
    OutgoingMessage,
    Paper,
    Pick,
    RenderedEmail,
    Section,
    SourceReport,
    Subscriber,
)
from .schedule import parse_schedule

if TYPE_CHECKING:
    from .delivery import Composer
    from .render import Renderer
    from .selection import Selector
from .signing import Links, secret_for
from .store import EMPTY, FAILED, PENDING, SENDING, SENT, Delivery, Store, utcnow

log = logging.getLogger("newsletter")

# Outcome states reported per subscriber.
O_SENT, O_ALREADY, O_EMPTY, O_FAILED, O_RETRY = "sent", "already sent", "empty", "failed", "retry"
O_INACTIVE, O_DRY = "inactive", "dry run"
# A failed row from an earlier run, skipped without --retry-failed (not a failure of this
# run); an edition left unsent (its row pending, or none) because the send stopped early.
O_FAILED_EARLIER, O_STOPPED = "failed earlier", "stopped"
# Pipeline.aborted after ``stop_requested``: the messages in flight were finished.
STOP_REQUESTED = "stop requested (SIGTERM); the messages in flight were finished"

# Subscribers selected together (Selector.select_many) and looked up together in the store.
SELECT_CHUNK = 256
# Ledger rows prepared per transaction while sending.
PREPARE_BATCH = 32
# Messages composed ahead of the SMTP workers (bounded: memory stays flat).
COMPOSE_AHEAD = 64
# delivery.workers: 0 (auto) builds fewer editions than this in this process.
PARALLEL_MIN = 512  # two units of SELECT_CHUNK: the smallest run two workers share
# selection.semantic: paper vectors kept in the state this long (a window is days long).
EMBEDDINGS_KEEP_DAYS = 30
# Selectors of fixed windows a Pipeline keeps for its next calls.
SELECTORS_KEPT = 4
# meta key prefix: the settings a source was last fetched with (type, url, announce_types).
SOURCE_SETTINGS = "source_settings:"


@dataclass(frozen=True, slots=True)
class EditionRef:
    """Which edition of which subscriber, and the window of papers it covers."""

    subscriber: Subscriber
    edition: str
    edition_date: date
    since: datetime  # exclusive; used when since_seq is unknown (a first edition)
    cutoff: datetime  # inclusive
    replay_ids: tuple[str, ...] | None = None  # a sent edition replayed: exactly these
    since_seq: int | None = None  # exclusive: the previous edition's cutoff_seq
    cutoff_seq: int | None = None  # inclusive: papers committed up to here (None: by time)
    message_id: str | None = None  # the ledger's, for an edition prepared before: kept


@dataclass(frozen=True, slots=True)
class Built:
    """One edition built: its message, or why it is empty (no message then)."""

    subscriber: str
    edition: str
    message: OutgoingMessage | None = None
    empty: str | None = None
    size: int = 0  # bytes of the message (kept when a dry run drops the bytes)


class Building:
    """The editions ``Pipeline.build`` is building: iterate once, in order; ``close``
    stops the work (and any worker processes) early."""

    def __init__(self, items: Iterator[Built], close: Callable[[], None]) -> None:
        self._items = items
        self._close = close

    def __iter__(self) -> Iterator[Built]:
        return self._items

    def close(self) -> None:
        self._close()


@dataclass(frozen=True, slots=True)
class Outcome:
    subscriber: str
    edition: str
    state: str
    papers: int = 0
    detail: str = ""
    path: str | None = None


@dataclass(slots=True)
class RunReport:
    sources: list[SourceReport] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    missed_new: list[str] = field(default_factory=list)  # not reported by an earlier run_once
    aborted: str | None = None  # why sending stopped early (rows left pending), if it did

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == O_FAILED]


def zone(sub: Subscriber) -> ZoneInfo:
    return ZoneInfo(sub.timezone)


_T = TypeVar("_T")
_END = object()


def ahead(items: Iterator[_T], depth: int, batch: int = 1) -> Iterator[_T]:
    """Run ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    Items cross between the threads in lists of up to ``batch``: one queue hand-off (a
    lock, a condition, a wake-up) per list instead of per item. A shorter list goes as
    soon as the consumer has nothing queued, so a ready item never waits for the next
    ones to be made. An exception raised by ``items`` is raised in the consumer, after
    the items made before it. Closing the consumer (or dropping it) stops the producer
    at its next item and closes ``items``.
    """
    batch = max(1, batch)
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=max(1, depth // batch))
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        chunk: list[Any] = []
        try:
            for item in items:
                if stop.is_set():
                    return
                chunk.append(item)
                if len(chunk) >= batch or q.empty():
                    if not put((True, chunk)):
                        return
                    chunk = []
            chunk.append(_END)
            put((True, chunk))
        except BaseException as err:  # handed to the consumer, raised there
            if chunk and not put((True, chunk)):
                return
            put((False, err))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="compose-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, got = q.get()
            if not ok:
                raise got
            for item in got:
                if item is _END:
                    return
                yield item
    finally:
        stop.set()
        thread.join()


REPLAY_SECTION = "Also in this edition"


def _replaying(sub: Subscriber, papers: int) -> Subscriber:
    """``sub`` as selected for a replayed edition (``EditionRef.replay_ids``): the
    candidates are exactly the papers the edition held, so none is left out for a limit,
    a threshold or an exclusion set after it was made."""
    return replace(
        sub,
        max_papers=max(sub.max_papers, papers),
        min_score=0.0,
        exclude=(),
        interests=tuple(replace(i, max_papers=None, exclude=()) for i in sub.interests),
    )


def _replayed(digest: Digest, ref: EditionRef, papers: dict[str, Paper]) -> Digest:
    """A replayed edition's digest: the subscriber as configured, and every paper of the
    edition, the ones today's interests no longer match in a last section of their own."""
    ids = ref.replay_ids or ()
    picked = {p.paper.id for p in digest.picks}
    missing = [pid for pid in ids if pid not in picked and pid in papers]
    sections = digest.sections
    if missing:
        why = ("in this edition when it was made; it matches none of the interests now",)
        extra = tuple(Pick(papers[pid], 0.0, REPLAY_SECTION, why) for pid in missing)
        sections = (*sections, Section(REPLAY_SECTION, extra))
        return replace(digest, subscriber=ref.subscriber, sections=sections, empty_reason=None)
    return replace(digest, subscriber=ref.subscriber)


class Pipeline:
    """One configured run over one state. Compiles templates once."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.secret = secret_for(config, store)
        self._renderer: Renderer | None = None
        self._composer: Composer | None = None
        self.aborted: str | None = None  # why the last send stopped early, if it did
        # Set (from a signal handler, say) to stop a send after the messages in flight:
        # no new message is handed to the transport; the rest stay pending.
        self.stop_requested = threading.Event()
        self.suppressed: list[str] = []  # subscribers suppressed by the last send
        self._pruned = False  # old paper embeddings pruned once per Pipeline
        self._warned_semantic = False
        # Selectors of fixed windows (by commit sequence or replayed ids), reused by the
        # next call: the daemon sends in batches, and each would index the same papers.
        self._selectors: dict[tuple[Any, ...], Selector] = {}
        # Set by fetch(): the sources whose fetch failed, when every fetched one did.
        self.sources_failed: list[str] = []

    # -- compiled once, on first use --------------------------------------------

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            from .render import Renderer

            self._renderer = Renderer(self.config.templates)
        return self._renderer

    @property
    def composer(self) -> Composer:
        if self._composer is None:
            from .delivery import Composer

            # Message-IDs carry this install's secret and state: two lists sending as one
            # address never share one (a provider would drop the second message). An
            # edition already in the ledger keeps its id whatever this gives (``send``).
            where = f"message-id\0{os.path.abspath(self.store.path)}".encode()
            salt = hmac.new(self.secret.encode(), where, "sha256").hexdigest()[:32]
            self._composer = Composer(self.config.delivery, id_salt=salt)
        return self._composer

    def links(self, sub: Subscriber) -> Links:
        return Links(self.config.web.base_url, self.secret, sub.email)

    # -- subscribers ------------------------------------------------------------

    def subscribers(self, email: str | None = None) -> list[Subscriber]:
        """Subscribers from the config, with preferences saved on the web applied."""
        subs = [self.config.subscriber(email)] if email else list(self.config.subscribers)
        try:
            from .prefs import apply_prefs
        except ImportError:  # self-service not installed in this build
            return subs
        out = []
        for sub in subs:
            prefs = self.store.get_prefs(sub.email)
            out.append(apply_prefs(sub, prefs) if prefs else sub)
        return out

    # -- fetching ---------------------------------------------------------------

    def fetch(self, *, now: datetime | None = None, only_stale: bool = False) -> list[SourceReport]:
        """Fetch every enabled source (or only those not fetched within the freshness window).

        Sources are fetched a few at a time; one failing source never stops the others.
        """
        from .sources import fetch_all

        now = now or utcnow()
        sources = self.config.sources
        changed = self._forget_validators_of_changed_sources()
        if only_stale:
            fresh_after = now - timedelta(minutes=self.config.scheduler.freshness_minutes)
            sources = tuple(
                s
                for s in sources
                if changed.get(s.name, ("", "", False))[2]
                or not (
                    (st := self.store.fetch_state(s.name)).last_success_at
                    and st.last_success_at > fresh_after
                )
            )
        reports = fetch_all(replace(self.config, sources=sources), self.store, now=now)
        for r in reports:  # fetched (or answered) under this config: remember it
            if r.name in changed and r.ok:
                self.store.set_meta(*changed[r.name][:2])
        # "Every source failed" only when this call fetched all of them (a source still
        # fresh from an earlier fetch, skipped by only_stale, did not fail).
        failed = [r.name for r in reports if not r.ok]  # (errors, or disabled by a 410)
        every = len(sources) == len(self.config.sources) and len(failed) == len(reports)
        self.sources_failed = failed if reports and every else []
        for r in reports:
            for w in r.warnings:
                log.warning("%s", w)
            for e in r.errors:
                log.warning("%s", e)
        return reports

    def _forget_validators_of_changed_sources(self) -> dict[str, tuple[str, str, bool]]:
        """The enabled sources whose type, url or ``announce_types`` are not the ones they
        were last fetched with (name -> meta key, new value, and whether it changed), their
        ETag / Last-Modified dropped and, when changed, fetched even if fresh: else a 304
        for the same feed would keep what the new settings take from it (replacements for
        ``announce_types: [replace]``, say) out until the feed changes. A source with
        validators and no recorded settings (a state from before they were recorded)
        counts as changed: one full download."""
        changed: dict[str, tuple[str, str, bool]] = {}
        for src in self.config.sources:
            if not src.enabled:
                continue
            key = SOURCE_SETTINGS + src.name
            value = json.dumps([src.type, src.url, sorted(src.announce_types)])
            before = self.store.get_meta(key)
            if before == value:
                continue
            st = self.store.fetch_state(src.name)
            validators = bool(st.etag or st.last_modified)
            if validators:
                self.store.update_fetch_state(src.name, etag=None, last_modified=None)
            changed[src.name] = (key, value, before is not None or validators)
        return changed

    # -- editions ---------------------------------------------------------------

    def current_edition(self, sub: Subscriber, now: datetime) -> tuple[str, date]:
        """The edition a send made now belongs to (the subscriber's local date or week)."""
        sched = parse_schedule(sub.schedule)
        local = now.astimezone(zone(sub))
        if sched.per_day > 1:
            fire = sched.previous(now, zone(sub), within=timedelta(days=1)) or local
            return sched.edition_key(fire), fire.date()
        return sched.edition_key(local), local.date()

    def _window(
        self, sub: Subscriber, edition: str, cutoff: datetime
    ) -> tuple[datetime, int | None]:
        """Where an edition's window starts: the previous edition's cutoff (by commit
        sequence when recorded, so a paper committed late by a concurrent fetch still
        falls in the next window), else ``defaults.lookback_days`` back."""
        prev = self.store.last_sent(sub.email, before=edition, cutoff_before=cutoff)
        since = (prev.cutoff or prev.sent_at or prev.updated_at) if prev else None
        if since is None:
            since = cutoff - timedelta(days=self.config.defaults.lookback_days)
        return since, prev.cutoff_seq if prev else None

    def _ref(
        self,
        sub: Subscriber,
        edition: str,
        edition_date: date,
        cutoff: datetime,
        cutoff_seq: int | None,
    ) -> EditionRef:
        existing = self.store.delivery(sub.email, edition)
        if existing and existing.state in (PENDING, SENDING) and existing.cutoff:
            # A retry keeps the window first chosen for it.
            cutoff, cutoff_seq = existing.cutoff, existing.cutoff_seq
        since, since_seq = self._window(sub, edition, cutoff)
        return EditionRef(
            sub, edition, edition_date, since, cutoff, since_seq=since_seq, cutoff_seq=cutoff_seq
        )

    def edition_ref(
        self, sub: Subscriber, *, now: datetime, on_date: date | None = None
    ) -> EditionRef:
        """The edition of ``now`` (or of a past local date, replayed from stored papers)."""
        if on_date is None:
            edition, edition_date = self.current_edition(sub, now)
            return self._ref(sub, edition, edition_date, now, self.store.max_seq())
        tz = zone(sub)
        today = now.astimezone(tz).date()
        if on_date > today:
            raise NewsletterError(
                f"--date {on_date} is in the future for {sub.email} (local date {today} in "
                f"{sub.timezone}); only past and current editions can be replayed or sent"
            )
        sched = parse_schedule(sub.schedule)
        day_start = datetime.combine(on_date, time(0), tzinfo=tz)
        day_end = datetime.combine(on_date + timedelta(days=1), time(0), tzinfo=tz)
        # The fire times of local date D only: next day's midnight fire (at ``day_end``) is
        # the next day's edition. A margin of a day either side, then the local date
        # decides (a DST day is not 24 h long).
        margin = timedelta(days=1)
        fires = [
            fire
            for fire in sched.fire_times(day_start - margin, day_end + margin, tz)
            if fire.date() == on_date
        ]
        if on_date == today:  # as current_edition: the latest fire so far, not a later one
            fires = [fire for fire in fires if fire <= now] or fires[:1]
        # The day's real edition: its last fire time (several a day for some cron lines).
        edition = sched.edition_key(fires[-1] if fires else day_start + timedelta(hours=12))
        existing = self.store.delivery(sub.email, edition)
        if existing and existing.state == SENT:
            cutoff = existing.cutoff or min(now, day_end)
            return EditionRef(sub, edition, on_date, cutoff, cutoff, replay_ids=existing.paper_ids)
        if on_date == today:
            return self._ref(sub, edition, on_date, now, self.store.max_seq())
        # A past edition never sent: the papers first seen up to the end of that day.
        return self._ref(sub, edition, on_date, min(now, day_end), None)

    def due(self, subs: Sequence[Subscriber], now: datetime) -> tuple[list[EditionRef], list[str]]:
        """Editions due now: the latest fire time within the grace period, not yet done.

        Several missed fire times coalesce into the latest one. An edition whose time
        is further back than the grace period is skipped, with a line that says so.
        """
        grace = timedelta(hours=self.config.scheduler.grace_hours)
        due, missed = [], []
        max_seq: int | None = None  # read once, before any selection
        for sub in subs:
            sched, tz = parse_schedule(sub.schedule), zone(sub)
            fire = sched.previous(now, tz, within=grace)
            if fire is None:
                last = sched.previous(now, tz, within=timedelta(days=8))
                if (
                    last is not None
                    and self.store.delivery(sub.email, sched.edition_key(last)) is None
                    and not self._covered_since(sub.email, last)
                ):
                    missed.append(
                        f"{sub.email}: edition {sched.edition_key(last)} skipped: its time "
                        f"{last:%Y-%m-%d %H:%M %Z} is more than "
                        f"{self.config.scheduler.grace_hours:g} h ago (scheduler.grace_hours)"
                    )
                continue
            edition = sched.edition_key(fire)
            if edition_made(self.store.delivery(sub.email, edition), fire):
                continue
            if max_seq is None:
                max_seq = self.store.max_seq()
            due.append(self._ref(sub, edition, fire.date(), now, max_seq))
        return due, missed

    def _covered_since(self, email: str, fire: datetime) -> bool:
        """Whether an edition made after ``fire`` (under an earlier schedule, say) already
        covers its papers: then the edition of ``fire`` was not missed."""
        last = self.store.last_sent(email)
        if last is None:
            return False
        made = last.cutoff or last.updated_at
        return made is not None and made >= fire

    # -- selection ----------------------------------------------------------------

    def digests(self, refs: Sequence[EditionRef]) -> Iterator[Digest]:
        """Select for each edition. One index is built per distinct window."""
        selectors, units = self._plan(refs)
        for index, part in units:
            yield from self._select(self.store, selectors[index], part)

    def _plan(
        self, refs: Sequence[EditionRef]
    ) -> tuple[list[Selector], list[tuple[int, list[EditionRef]]]]:
        """One Selector per distinct window of papers, and the refs cut into units of
        ``SELECT_CHUNK`` (each unit within one window), in the order of ``refs`` within
        each window."""
        from .selection import Selector

        groups: dict[tuple[Any, ...], list[EditionRef]] = {}
        for ref in refs:
            key: tuple[Any, ...] = (ref.since_seq, ref.cutoff_seq, ref.replay_ids)
            if ref.since_seq is None or ref.cutoff_seq is None:
                key += (ref.since, ref.cutoff)
            groups.setdefault(key, []).append(ref)
        selectors: list[Selector] = []
        units: list[tuple[int, list[EditionRef]]] = []
        semantic = self.config.selection.semantic or self.config.selection.semantic_model
        if semantic and groups and not self._pruned:
            # Vectors of papers older than any window are never read again.
            self.store.prune_embeddings(utcnow() - timedelta(days=EMBEDDINGS_KEEP_DAYS))
            self._pruned = True
        for key, members in groups.items():
            ref0 = members[0]
            fixed = ref0.replay_ids is not None or len(key) == 3  # not a window by time
            cached = self._selectors.get(key) if fixed else None
            if cached is not None:
                selectors.append(cached)
                for start in range(0, len(members), SELECT_CHUNK):
                    units.append((len(selectors) - 1, members[start : start + SELECT_CHUNK]))
                continue
            replay_ids = ref0.replay_ids
            if replay_ids is not None:
                papers = [p for pid in replay_ids if (p := self.store.get_paper(pid))]
            elif ref0.since_seq is not None and ref0.cutoff_seq is not None:
                papers = self.store.papers(since_seq=ref0.since_seq, until_seq=ref0.cutoff_seq)
            else:  # a first edition (lookback by time) or a past date never sent
                papers = self.store.papers(
                    since=ref0.since,
                    until=ref0.cutoff if ref0.cutoff_seq is None else None,
                    until_seq=ref0.cutoff_seq,
                )
            selector = Selector(papers, self.config.selection, embeddings=self.store)
            selectors.append(selector)
            if fixed:
                if len(self._selectors) >= SELECTORS_KEPT:
                    self._selectors.pop(next(iter(self._selectors)))
                self._selectors[key] = selector
            # In chunks: one sparse product per chunk and one query per table per chunk
            # (per-subscriber select() + queries cost ~10x more: benchmarks/bench_pipeline.py).
            for start in range(0, len(members), SELECT_CHUNK):
                units.append((len(selectors) - 1, members[start : start + SELECT_CHUNK]))
        return selectors, units

    def _select(self, store: Store, selector: Selector, part: list[EditionRef]) -> list[Digest]:
        """The digests of one unit of refs (one window), in the order of ``part``."""
        replay = part[0].replay_ids is not None
        emails = [ref.subscriber.email for ref in part]
        sent = {} if replay else store.sent_paper_ids_many(emails)
        votes = store.feedback_many(emails)
        voted = dict.fromkeys(pid for fb in votes.values() for pid in fb)
        feedback_papers = [p for pid in voted if (p := store.get_paper(pid))]
        by_edition: dict[tuple[str, date], list[Subscriber]] = {}
        for ref in part:
            sub = ref.subscriber
            if ref.replay_ids is not None:  # every paper of the edition, whatever the limits
                sub = _replaying(sub, len(ref.replay_ids))
            by_edition.setdefault((ref.edition, ref.edition_date), []).append(sub)
        chosen: dict[tuple[str, str], Digest] = {}
        for (edition, edition_date), subs in by_edition.items():
            digests = selector.select_many(
                subs,
                edition=edition,
                edition_date=edition_date,
                exclude_ids={s.email.lower(): sent.get(s.email, ()) for s in subs},
                feedback={s.email.lower(): votes[s.email] for s in subs if s.email in votes},
                feedback_papers=feedback_papers,
            )
            for sub, digest in zip(subs, digests, strict=True):
                chosen[(sub.email, edition)] = digest
        from .selection import NO_CANDIDATES

        out = [chosen[(ref.subscriber.email, ref.edition)] for ref in part]
        if replay:
            papers = {p.id: p for p in selector.papers}
            out = [_replayed(d, ref, papers) for d, ref in zip(out, part, strict=True)]
        if any(d.empty_reason == NO_CANDIDATES for d in out):
            why = self._why_nothing_new(store)
            if why:
                out = [
                    replace(d, empty_reason=why) if d.empty_reason == NO_CANDIDATES else d
                    for d in out
                ]
        return out

    def _why_nothing_new(self, store: Store) -> str | None:
        """A truer empty reason than "no new papers since the last edition", if there is
        one: every source failed in this run's fetch, or no paper is stored at all."""
        if self.sources_failed:
            names = ", ".join(self.sources_failed)
            return f"every source failed ({names}): no new papers to select from"
        if store.count_papers() == 0:
            return "no papers are stored yet (run 'newsletter fetch')"
        return None

    def forget_selectors(self) -> None:
        """Drop the selection indexes kept for later calls (papers may change after)."""
        self._selectors.clear()

    # -- building messages --------------------------------------------------------

    def workers_for(self, count: int, wanted: int | None = None) -> int:
        """How many processes build ``count`` editions (``delivery.workers``; 0 = auto:
        one per CPU for at least ``PARALLEL_MIN`` editions without the semantic model,
        else this process alone)."""
        from .workers import auto_workers, can_fork

        if wanted is None:
            wanted = self.config.delivery.workers
        semantic = self.config.selection.semantic or self.config.selection.semantic_model
        if semantic:
            # torch's OpenMP threads do not survive a fork: a forked worker would hang.
            if wanted > 1 and not self._warned_semantic:
                log.warning(
                    "delivery.workers: %d is ignored with selection.semantic (the embedding "
                    "library can not run in forked workers); building in one process",
                    wanted,
                )
                self._warned_semantic = True
            return 1
        if wanted == 0:
            if count < PARALLEL_MIN or not can_fork():
                return 1
            wanted = auto_workers()
        return max(1, min(wanted, -(-count // SELECT_CHUNK))) if can_fork() else 1

    def build(
        self,
        refs: Sequence[EditionRef],
        *,
        now: datetime,
        dry_run: bool = False,
        workers: int | None = None,
    ) -> Building:
        """Select, render and compose every edition of ``refs``, in order.

        With more than one worker (``workers``, else ``delivery.workers``) the work is
        forked out now, before the caller starts threads of its own (see
        ``newsletter.workers``); the iterator hands the results back in order. A dry
        run's messages come back without their bytes (only their size).
        """
        selectors, units = self._plan(refs)
        self.renderer, self.composer  # noqa: B018  (compiled before any fork)
        n = self.workers_for(len(refs), workers)

        def work(store: Store, unit: tuple[int, list[EditionRef]]) -> list[Built]:
            digests = self._select(store, selectors[unit[0]], unit[1])
            return [
                self._built(d, now=now, dry_run=dry_run, message_id=ref.message_id)
                for d, ref in zip(digests, unit[1], strict=True)
            ]

        if n <= 1 or len(units) <= 1:
            here = self._build_here(units, work)
            return Building(here, here.close)
        from .workers import FanOut

        fan: FanOut[Store, tuple[int, list[EditionRef]], list[Built]] = FanOut(
            units,
            work,
            init=lambda: Store.reader(self.store.url),
            workers=n,
            nice=self.config.delivery.workers_nice,
        )
        return Building((built for chunk in fan for built in chunk), fan.close)

    def _build_here(
        self,
        units: list[tuple[int, list[EditionRef]]],
        work: Callable[[Store, tuple[int, list[EditionRef]]], list[Built]],
    ) -> Generator[Built, None, None]:
        # The index, papers and templates live for the whole run: frozen, the cyclic
        # collector stops walking them on every full collection (~15% of this loop).
        gc.freeze()
        try:
            for unit in units:
                yield from work(self.store, unit)
        finally:
            gc.unfreeze()

    def _built(
        self, digest: Digest, *, now: datetime, dry_run: bool, message_id: str | None = None
    ) -> Built:
        email = digest.subscriber.email
        if digest.is_empty and not self.config.delivery.send_empty:
            return Built(email, digest.edition, empty=digest.empty_reason or "nothing to send")
        msg = self.compose(digest, self.render(digest), now=now, message_id=message_id)
        size = len(msg.data)
        if dry_run:
            msg = replace(msg, data=b"")
        return Built(email, digest.edition, message=msg, size=size)

    def render(self, digest: Digest) -> RenderedEmail:
        return self.renderer.render(digest, links=self.links(digest.subscriber))

    def compose(
        self,
        digest: Digest,
        rendered: RenderedEmail,
        *,
        now: datetime,
        message_id: str | None = None,
    ) -> OutgoingMessage:
        """The message of ``digest``; ``message_id``: the one the ledger already holds for
        this edition (a resend keeps it), else the composer derives it."""
        return self.composer.compose(
            rendered,
            digest.subscriber,
            edition=digest.edition,
            links=self.links(digest.subscriber),
            date=now,
            paper_ids=tuple(p.paper.id for p in digest.picks),
            message_id=message_id,
        )

    # -- sending ----------------------------------------------------------------

    def send(
        self,
        refs: Sequence[EditionRef],
        *,
        now: datetime | None = None,
        dry_run: bool = False,
        progress: Callable[[Outcome], None] | None = None,
        retry_failed: bool = False,
        workers: int | None = None,
    ) -> list[Outcome]:
        """Send each edition that is not sent yet; return one outcome per subscriber.

        A ``failed`` edition is skipped (and reported) unless ``retry_failed``, which
        sends it again (after the cause was fixed: a bad address, a relay's refusal).
        ``workers`` overrides ``delivery.workers`` (see ``build``).
        """
        from .delivery import deliver, make_transport

        now = now or utcnow()
        outcomes: list[Outcome] = []
        # A broken template (or DKIM key) is an error before any per-subscriber line.
        self.renderer, self.composer  # noqa: B018

        def report(o: Outcome) -> None:
            outcomes.append(o)
            if progress:
                progress(o)

        if not dry_run:
            # Callers hold the state lock: a row still 'sending' is from a crashed run.
            # Over SMTP each such release counts as a send with an unknown outcome.
            smtp = self.config.delivery.transport == "smtp"
            limit = max(1, self.config.delivery.smtp.retries) if smtp else None
            released = self.store.release_stale_claims(limit=limit)
            if retry_failed:
                inactive_now = self.store.inactive_subscribers()
                for ref in refs:  # (not for someone who left: kept failed, not queued)
                    if ref.subscriber.email not in inactive_now:
                        self.store.reset_failed(ref.subscriber.email, ref.edition)
            if released:
                log.warning(
                    "%d message(s) were in flight when a previous run stopped; "
                    "sending them again with the same Message-ID",
                    released,
                )
        inactive = self.store.inactive_subscribers()
        todo: list[EditionRef] = []
        for ref in refs:
            email = ref.subscriber.email
            if email in inactive:
                status, why = inactive[email]
                report(Outcome(email, ref.edition, O_INACTIVE, detail=f"{status}: {why or ''}"))
                continue
            existing = self.store.delivery(email, ref.edition)
            if existing and existing.state == SENT:
                report(
                    Outcome(
                        email,
                        ref.edition,
                        O_ALREADY,
                        len(existing.paper_ids),
                        detail=f"Message-ID <{existing.message_id}>",
                    )
                )
                continue
            # (A dry run shows what this send would do: without --retry-failed it
            # would not resend a failed edition either.)
            if existing and existing.state == FAILED and not retry_failed:
                report(
                    Outcome(
                        email,
                        ref.edition,
                        O_FAILED_EARLIER,
                        len(existing.paper_ids),
                        detail=failed_earlier(existing.reason),
                    )
                )
                continue
            if existing and existing.message_id and ref.message_id is None:
                # Prepared before (a crash, a relay down, a retry): the same Message-ID, so
                # a reader's provider drops a copy it already has.
                ref = replace(ref, message_id=existing.message_id)
            todo.append(ref)

        counts: dict[tuple[str, str], int] = {}
        cutoffs = {ref.subscriber.email: ref.cutoff for ref in todo}
        cutoff_seqs = {ref.subscriber.email: ref.cutoff_seq for ref in todo}

        # Forked now (when several workers build), before any thread of this run starts.
        built = self.build(todo, now=now, dry_run=dry_run, workers=workers)

        def produce() -> Iterator[OutgoingMessage | Outcome]:
            # Outcomes (empty, dry run) are yielded, not reported here: the consumer
            # reports them, so progress callbacks stay on the delivery side.
            batch: list[OutgoingMessage] = []
            for item in built:
                email, edition, msg = item.subscriber, item.edition, item.message
                if msg is None:
                    reason = item.empty or "nothing to send"
                    if not dry_run:
                        self.store.record_empty(
                            email,
                            edition,
                            reason,
                            cutoff=cutoffs[email],
                            cutoff_seq=cutoff_seqs[email],
                        )
                    yield Outcome(email, edition, O_EMPTY, detail=reason)
                    continue
                counts[(email, edition)] = len(msg.paper_ids)
                if dry_run:
                    yield Outcome(
                        email,
                        edition,
                        O_DRY,
                        len(msg.paper_ids),
                        detail=f"{item.size:,} bytes, Message-ID <{msg.message_id}>",
                    )
                    continue
                batch.append(msg)
                if len(batch) >= PREPARE_BATCH:
                    yield from prepared(batch)
                    batch = []
            yield from prepared(batch)

        def prepared(batch: list[OutgoingMessage]) -> list[OutgoingMessage]:
            # Ledger rows for a batch in one transaction, committed as 'pending' before
            # any of them is handed to the transport.
            self.store.prepare_deliveries(
                (
                    m.subscriber,
                    m.edition,
                    m.message_id,
                    m.paper_ids,
                    cutoffs[m.subscriber],
                    cutoff_seqs[m.subscriber],
                )
                for m in batch
            )
            return batch

        if dry_run:
            try:
                for item in produce():
                    if isinstance(item, Outcome):
                        report(item)
            finally:
                built.close()
            return outcomes

        def messages() -> Generator[OutgoingMessage, None, None]:
            # Selecting, rendering and composing run in one thread (or, with several
            # workers, the built messages are read there), a few messages ahead of the
            # SMTP workers, instead of inside the delivery engine's lock.
            for item in ahead(produce(), COMPOSE_AHEAD, batch=PREPARE_BATCH):
                if isinstance(item, Outcome):
                    report(item)
                elif self.stop_requested.is_set():
                    return  # (what is not handed over stays pending for the next run)
                else:
                    yield item

        def on_result(result: DeliveryResult) -> None:
            n = counts.get((result.subscriber, result.edition), 0)
            if result.ok and result.reply == "already sent":
                state = O_ALREADY
            elif result.ok:
                state = O_SENT
            elif result.attempts == 0 and result.reply.startswith("skipped: failed"):
                state = O_FAILED_EARLIER  # failed after this run's check (another sender)
            elif result.attempts == 0 and result.reply.startswith("skipped"):
                state = O_INACTIVE
            else:
                state = O_FAILED if result.permanent else O_RETRY
            report(
                Outcome(
                    result.subscriber,
                    result.edition,
                    state,
                    n,
                    detail=result.reply,
                    path=result.path if state == O_SENT else None,
                )
            )

        msgs = messages()
        try:
            transport = make_transport(self.config.delivery)
            try:
                summary = deliver(
                    self.store,
                    transport,
                    msgs,
                    worker=f"{socket.gethostname()}:{os.getpid()}",
                    max_failures=self.config.delivery.max_failures,
                    progress=on_result,
                    release_stale=False,  # done above, under the caller's state lock
                )
            finally:
                transport.close()
        finally:
            # In this order: stop (and join) the compose-ahead thread, which is what
            # reads ``built``; only then stop the build and its worker processes. (A
            # traceback can keep ``msgs`` alive, and with it a thread still writing.)
            try:
                msgs.close()
            finally:
                built.close()
        self.aborted = summary.aborted
        if not summary.aborted and self.stop_requested.is_set():
            self.aborted = summary.aborted = STOP_REQUESTED
        if summary.aborted:
            # Every edition of this call that was not sent is accounted for: its row (if
            # any) is pending, and the next run (or the daemon's retry job) sends it.
            # An edition built ahead and recorded empty before the stop is reported as
            # what the ledger says.
            seen = {(o.subscriber, o.edition) for o in outcomes}
            for ref in todo:
                key = (ref.subscriber.email, ref.edition)
                if key in seen:
                    continue
                row = self.store.delivery(*key)
                if row is not None and row.state == EMPTY:
                    report(Outcome(*key, O_EMPTY, detail=row.reason or ""))
                    continue
                why = "not sent: sending stopped early (see the error); the next run sends it"
                report(Outcome(*key, O_STOPPED, counts.get(key, 0), detail=why))
        self.suppressed = list(summary.suppressed)
        for who in summary.suppressed:
            log.warning("%s: suppressed after repeated permanent failures", who)
        return outcomes


def edition_made(row: Delivery | None, fire: datetime) -> bool:
    """Whether the edition of the fire time ``fire`` is done (its ledger ``row``): sent,
    failed or empty, not pending or sending. An edition recorded empty before ``fire``
    is not: a ``send`` run by hand before the scheduled time found nothing new, and at
    its time the edition is selected again (and goes out if papers came in since)."""
    if row is None or row.state in (PENDING, SENDING):
        return False
    return not (row.state == EMPTY and row.cutoff is not None and row.cutoff < fire)


def failed_earlier(reason: str | None) -> str:
    """The detail of an edition that failed in an earlier run: skipped, not sent again."""
    text = f"failed earlier: {reason or 'no reason recorded'}"
    if "--retry-failed" not in text:
        text += "; 'newsletter send --retry-failed' sends it again"
    return text


# meta key: the skipped editions (``Pipeline.due``'s lines) run_once already reported.
MISSED_REPORTED = "missed_reported"


def not_reported_before(store: Store, missed: Sequence[str]) -> list[str]:
    """The lines of ``missed`` that no earlier run_once reported (a cron job every 15
    minutes would repeat the same skipped edition all day). Remembers the current ones
    only, so the state holds at most one entry per subscriber."""
    keys = {line.split(" skipped:", 1)[0]: line for line in missed}  # "EMAIL: edition KEY"
    try:
        before = set(json.loads(store.get_meta(MISSED_REPORTED) or "[]"))
    except ValueError:
        before = set()
    if set(keys) != before:
        store.set_meta(MISSED_REPORTED, json.dumps(sorted(keys)))
    return [line for key, line in keys.items() if key not in before]


MISSED_SHOWN = 10  # skipped editions listed one per line; the rest are counted


def summarise_missed(lines: Sequence[str], shown: int = MISSED_SHOWN) -> list[str]:
    """The first ``shown`` skipped-edition lines, then one line counting the rest
    (thousands of subscribers after a long outage would otherwise flood the log)."""
    if len(lines) <= shown + 1:
        return list(lines)
    return [
        *lines[:shown],
        f"... and {len(lines) - shown} more editions skipped: their time is more than "
        "scheduler.grace_hours ago (`newsletter status` lists every subscriber)",
    ]


def run_once(
    config: Config,
    now: datetime | None = None,
    *,
    store: Store | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> RunReport:
    """One pass: fetch stale sources, then send the editions that are due now."""
    now = now or utcnow()
    own = store is None
    store = store or Store(config.state)
    try:
        pipe = Pipeline(config, store)
        report = RunReport()
        report.sources = pipe.fetch(now=now, only_stale=True)
        refs, report.missed = pipe.due(pipe.subscribers(), now)
        report.missed_new = not_reported_before(store, report.missed)
        for line in summarise_missed(report.missed_new):
            log.info("%s", line)
        if refs:
            report.outcomes = pipe.send(refs, now=now, progress=progress)
            report.aborted = pipe.aborted
        return report
    finally:
        if own:
            store.close()

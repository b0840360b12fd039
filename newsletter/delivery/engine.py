"""``deliver``: hand composed messages to a transport, exactly once, with a ledger.

For each message, in ``transport.concurrency`` worker threads:

1. the subscriber is skipped if no longer active (unsubscribed or suppressed);
2. the ledger row is created as ``pending`` when missing or ``empty``
   (``prepare_delivery``, with the message's Message-ID and paper ids; a row the
   caller already prepared is used as it is); a row already ``sent`` is
   counted as ``already_sent`` and not sent again; a ``failed`` row (a permanent
   failure in an earlier run) is skipped until ``Store.reset_failed``;
3. the row is claimed (``pending -> sending``, atomic; a row another worker holds
   is skipped);
4. the transport sends (it retries 4xx replies and dropped connections itself);
5. ``sent`` is recorded only after the server accepted the message (250); a
   permanent failure (5xx) is recorded as ``failed`` with the server's reply and
   counted towards suppression; anything else puts the row back to ``pending``
   with the reason, for the next run. An *uncertain* result (the connection failed
   after the end of DATA) goes through ``Store.mark_uncertain``: back to
   ``pending`` until ``transport.max_uncertain`` such sends, then ``failed``.

Steps 1-3 are one statement in the usual case (``Store.claim_active``: a pending
row of an active subscriber is claimed); only when that claims nothing are the
status and the row read to find out why. With ``mark_sent`` that is two SQLite
transactions per message instead of four.

A crash between 3 and 5 leaves the row ``sending``. ``deliver`` starts by putting
such rows back to ``pending`` (``release_stale=True``, right while one sender runs
at a time, which the pipeline's state lock guarantees): those messages are sent
again with the same Message-ID. So after ``kill -9`` at most the messages in
flight -- at most ``concurrency`` -- are duplicated, and nobody is left out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from ..errors import DeliveryError
from ..models import DeliveryResult, OutgoingMessage
from ..store import ACTIVE, EMPTY, FAILED, SENT, Store


@runtime_checkable
class Transport(Protocol):
    """Hands one message to its destination. ``send`` never raises for one message's
    failure: it returns ``DeliveryResult(ok=False, permanent=...)``. It raises
    ``TransportUnavailable`` when no message can be sent (server unreachable,
    authentication or TLS failure): ``deliver`` then stops the run."""

    name: str
    concurrency: int  # how many threads may call ``send`` at once

    def send(self, message: OutgoingMessage) -> DeliveryResult: ...

    def close(self) -> None: ...


class TransportUnavailable(DeliveryError):
    """The transport cannot send anything now; the run stops, rows stay pending."""


@dataclass
class DeliverySummary:
    sent: int = 0
    already_sent: int = 0
    failed: list[DeliveryResult] = field(default_factory=list)  # permanent and retryable
    suppressed: list[str] = field(default_factory=list)  # suppressed by this run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (subscriber, why)
    results: list[DeliveryResult] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early (rows left pending)

    @property
    def permanent(self) -> list[DeliveryResult]:
        return [r for r in self.failed if r.permanent]

    @property
    def retryable(self) -> list[DeliveryResult]:
        return [r for r in self.failed if not r.permanent]

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run was not aborted."""
        return not self.failed and self.aborted is None

    def lines(self) -> list[str]:
        """The human summary: one line per count, one per failure."""
        out = [
            f"sent: {self.sent}",
            f"already sent: {self.already_sent}",
            f"failed: {len(self.failed)} ({len(self.permanent)} permanent,"
            f" {len(self.retryable)} left pending for the next run)",
            f"suppressed: {len(self.suppressed)}",
        ]
        if self.skipped:
            out.append(f"skipped: {len(self.skipped)}")
        for r in self.failed:
            kind = "permanent" if r.permanent else "will retry"
            out.append(f"  {r.subscriber}: {kind}: {r.reply} (attempts: {r.attempts})")
        for who in self.suppressed:
            out.append(f"  {who}: suppressed after repeated permanent failures")
        for who, why in self.skipped:
            out.append(f"  {who}: skipped: {why}")
        if self.aborted:
            out.append(f"stopped early: {self.aborted}")
        return out


def deliver(
    store: Store,
    transport: Transport,
    messages: Iterable[OutgoingMessage],
    *,
    worker: str,
    max_failures: int,
    progress: Callable[[DeliveryResult], None] | None = None,
    release_stale: bool = True,
) -> DeliverySummary:
    """Send ``messages`` through ``transport``, recording each in the ledger.

    ``messages`` may be a generator (composed lazily). ``progress`` is called once
    per message, serialised by a lock so it can draw a progress bar: with the
    transport's result, with ``reply='already sent'`` (ok) for a row sent before,
    or with ``reply='skipped: <why>'`` and ``attempts=0`` for a skipped one.
    ``results`` in the summary holds the sent, already-sent and failed ones.
    Errors raised by ``messages`` itself (composing) propagate after the workers
    stopped; rows already claimed are finished first.
    """
    if release_stale:
        store.release_stale_claims(limit=getattr(transport, "max_uncertain", None))
    summary = DeliverySummary()
    lock = threading.Lock()  # guards the iterator, the summary and progress
    stop = threading.Event()
    source: Iterator[OutgoingMessage] = iter(messages)
    source_error: list[BaseException] = []

    def report(result: DeliveryResult) -> None:
        summary.results.append(result)
        if progress is not None:
            progress(result)

    def skip(message: OutgoingMessage, why: str) -> None:
        with lock:
            summary.skipped.append((message.subscriber, why))
            if progress is not None:
                progress(
                    DeliveryResult(
                        message.subscriber,
                        message.edition,
                        message.message_id,
                        ok=False,
                        reply=f"skipped: {why}",
                        attempts=0,
                    )
                )

    def next_message() -> OutgoingMessage | None:
        with lock:
            if stop.is_set():
                return None
            try:
                return next(source)
            except StopIteration:
                stop.set()
                return None
            except BaseException as err:  # composing failed: stop and re-raise below
                source_error.append(err)
                stop.set()
                return None

    def admit(message: OutgoingMessage) -> bool:
        """The checks in full (when the one-statement claim did not succeed): True once
        the row is claimed, else the message was counted or skipped."""
        who, edition = message.subscriber, message.edition
        status, why = store.subscriber_status(who)
        if status != ACTIVE:
            skip(message, f"{status}" + (f" ({why})" if why else ""))
            return False
        row = store.delivery(who, edition)
        if row is None or row.state == EMPTY:
            # No row yet (the caller did not prepare one): create it from the message.
            # An existing pending row is left as the caller prepared it.
            row = store.prepare_delivery(
                who, edition, message_id=message.message_id, paper_ids=message.paper_ids
            )
        if row.state == SENT:
            result = DeliveryResult(
                who, edition, row.message_id or message.message_id, ok=True, reply="already sent"
            )
            with lock:
                summary.already_sent += 1
                report(result)
            return False
        if row.state == FAILED:
            why = f"failed permanently before ({row.reason}); send --retry-failed to resend"
            skip(message, why)
            return False
        if store.claim(who, edition, worker=worker) is None:
            skip(message, "being sent by another worker")
            return False
        return True

    def one(message: OutgoingMessage) -> None:
        who, edition = message.subscriber, message.edition
        # The usual case in one statement: a pending row (prepared by the caller) of an
        # active subscriber is claimed. Anything else takes the full checks above.
        if store.claim_active(who, edition, worker=worker) is None and not admit(message):
            return
        try:
            result = transport.send(message)
        except TransportUnavailable as err:
            store.mark_failed(who, edition, reason=str(err), permanent=False)
            with lock:
                if summary.aborted is None:
                    summary.aborted = str(err)
                stop.set()
            return
        except Exception as err:  # a bug or an odd transport error: never lose the row
            reason = f"{type(err).__name__}: {err}"
            result = DeliveryResult(who, edition, message.message_id, ok=False, reply=reason)
        except BaseException:
            # KeyboardInterrupt and the like: give the row back, then let it through.
            store.mark_failed(who, edition, reason="interrupted", permanent=False)
            raise
        suppressed = False
        if result.ok:
            store.mark_sent(who, edition, reply=result.reply)
        elif result.uncertain:
            # No reply after the end of DATA: the server may have it. Never retried in
            # this run; a later run resends it, at most ``transport.max_uncertain`` sends
            # in all, then the row is ``failed`` (not counted towards suppression).
            limit = int(getattr(transport, "max_uncertain", 1))
            row = store.mark_uncertain(who, edition, reason=result.reply, limit=limit)
            if row is not None:
                result = replace(
                    result, reply=row.reason or result.reply, permanent=row.state == FAILED
                )
        else:
            store.mark_failed(who, edition, reason=result.reply, permanent=result.permanent)
            if result.permanent and result.recipient_fault:  # (not a refusal of everyone)
                suppressed = store.count_permanent_failure(
                    who, limit=max_failures, reason=result.reply
                )
        with lock:
            if result.ok:
                summary.sent += 1
            else:
                summary.failed.append(result)
            if suppressed:
                summary.suppressed.append(who)
            report(result)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            while (message := next_message()) is not None:
                one(message)
        except BaseException as err:
            errors.append(err)
            stop.set()

    threads = [
        threading.Thread(target=run, name=f"deliver-{i}", daemon=True)
        for i in range(max(1, int(getattr(transport, "concurrency", 1))))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        transport.close()
    if errors:
        raise errors[0]
    if source_error:
        raise source_error[0]
    return summary

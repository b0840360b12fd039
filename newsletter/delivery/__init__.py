"""Delivery: compose RFC 5322 bytes and hand them to a transport, exactly once.

Public API (implemented by the delivery work, issue 6):

    class Composer:
        def __init__(self, delivery: DeliveryConfig) -> None
        def compose(self, rendered: RenderedEmail, subscriber: Subscriber, *, edition: str,
                    links: Links, date: datetime | None = None) -> OutgoingMessage

    make_transport(delivery: DeliveryConfig) -> Transport      # smtp | outbox | console

    deliver(store: Store, transport: Transport, messages: Iterable[OutgoingMessage], *,
            worker: str, max_failures: int, progress: Callable[[DeliveryResult], None] | None)
        -> DeliverySummary
        Claims each ledger row (pending -> sending), sends, marks sent only after the
        server accepted, records failures; already-sent rows are counted, not resent.

Extensions (delivery work): ``compose(..., paper_ids=())`` carries the papers so
``deliver`` can create the ledger row itself (``prepare_delivery``) when the caller
did not; ``deliver(..., release_stale=True)`` first puts rows left ``sending`` by a
crash back to ``pending`` (one sender at a time); ``DeliverySummary`` has ``sent``,
``already_sent``, ``failed`` (DeliveryResults; ``.permanent`` / ``.retryable``),
``suppressed``, ``skipped`` ((subscriber, why)), ``results``, ``aborted`` (why the
run stopped early: server unreachable, login or TLS refused), ``ok`` and
``lines()`` (the human summary). ``Transport`` is a Protocol (``name``,
``concurrency``, ``send``, ``close``); ``TransportUnavailable`` (a DeliveryError)
is what a transport raises when nothing can be sent. See docs/delivery.md.
"""

from __future__ import annotations

from ..config import TRANSPORTS, DeliveryConfig
from ..errors import ConfigError
from .compose import ComposeError, Composer
from .console import ConsoleTransport
from .engine import DeliverySummary, Transport, TransportUnavailable, deliver
from .outbox import OutboxTransport
from .smtp import RateLimiter, SmtpTransport

__all__ = [
    "ComposeError",
    "Composer",
    "ConsoleTransport",
    "DeliverySummary",
    "OutboxTransport",
    "RateLimiter",
    "SmtpTransport",
    "Transport",
    "TransportUnavailable",
    "deliver",
    "make_transport",
]


def make_transport(delivery: DeliveryConfig) -> Transport:
    """The transport named by ``delivery.transport``: smtp, outbox or console."""
    if delivery.transport == "smtp":
        return SmtpTransport(delivery.smtp)
    if delivery.transport == "outbox":
        return OutboxTransport(delivery.outbox)
    if delivery.transport == "console":
        return ConsoleTransport()
    raise ConfigError(
        f"delivery.transport: unknown transport '{delivery.transport}';"
        f" use one of {', '.join(TRANSPORTS)}"
    )

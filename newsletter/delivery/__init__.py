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
"""

"""The store's batched calls (used by the pipeline's hot paths) agree with the one-row ones."""

from __future__ import annotations

from datetime import UTC, datetime

from newsletter.store import EMPTY, PENDING, SENT, Store


def _sent(store: Store, who: str, edition: str, papers: list[str]) -> None:
    store.prepare_delivery(who, edition, message_id=f"{who}-{edition}", paper_ids=papers)
    assert store.claim(who, edition, worker="w") is not None
    store.mark_sent(who, edition, reply="250 OK")


def test_sent_paper_ids_many_and_feedback_many_match_the_single_calls(store: Store) -> None:
    _sent(store, "a@example.org", "2026-11-28", ["p1", "p2"])
    _sent(store, "b@example.org", "2026-11-28", ["p2"])
    store.set_feedback("a@example.org", "p1", 1)
    store.set_feedback("c@example.org", "p3", -1)
    # more than one IN (...) chunk
    emails = ["a@example.org", "b@example.org", "c@example.org"] + [
        f"x{i}@example.org" for i in range(1200)
    ]
    sent = store.sent_paper_ids_many(emails)
    votes = store.feedback_many(emails)
    assert set(sent) == set(emails)
    for who in ("a@example.org", "b@example.org", "c@example.org", "x7@example.org"):
        assert sent[who] == store.sent_paper_ids(who)
        assert votes.get(who, {}) == store.feedback(who)
    assert sent["a@example.org"] == {"p1", "p2"}
    assert votes == {"a@example.org": {"p1": 1}, "c@example.org": {"p3": -1}}


def test_prepare_deliveries_follows_prepare_delivery_rules(store: Store) -> None:
    cutoff = datetime(2026, 11, 29, 7, tzinfo=UTC)
    _sent(store, "sent@example.org", "2026-11-29", ["old"])
    store.record_empty("empty@example.org", "2026-11-29", "nothing new")
    store.prepare_delivery(
        "pending@example.org", "2026-11-29", message_id="first", paper_ids=["p0"]
    )
    store.prepare_deliveries(
        [
            ("new@example.org", "2026-11-29", "m-new", ["p1", "p2"], cutoff),
            ("sent@example.org", "2026-11-29", "m-sent", ["p9"], cutoff),
            ("empty@example.org", "2026-11-29", "m-empty", ["p3"], cutoff),
            ("pending@example.org", "2026-11-29", "second", ["p4"], None),
        ]
    )
    new = store.delivery("new@example.org", "2026-11-29")
    assert new is not None and new.state == PENDING
    assert (new.message_id, new.paper_ids, new.cutoff) == ("m-new", ("p1", "p2"), cutoff)
    sent = store.delivery("sent@example.org", "2026-11-29")
    assert sent is not None and (sent.state, sent.paper_ids) == (SENT, ("old",))
    reopened = store.delivery("empty@example.org", "2026-11-29")
    assert reopened is not None and reopened.state == PENDING and reopened.state != EMPTY
    assert reopened.paper_ids == ("p3",)
    pending = store.delivery("pending@example.org", "2026-11-29")
    assert pending is not None
    assert (pending.message_id, pending.paper_ids) == ("first", ("p4",))  # first Message-ID kept
    store.prepare_deliveries([])  # nothing to do, no error

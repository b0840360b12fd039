"""The store's batched calls (used by the pipeline's hot paths) agree with the one-row ones."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.store import EMPTY, PENDING, SENT, Store, StoreError, _SentMark


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


def test_mark_sent_from_many_threads_commits_every_mark_in_shared_syncs(tmp_path: Path) -> None:
    """Group commit: 16 threads marking 20 messages each; every row ends up sent with
    its papers, and the marks took fewer synced transactions than there were marks."""
    store = Store(tmp_path / "state.db")
    jobs = [(f"r{t}-{i}@x.org", "e1") for t in range(16) for i in range(20)]
    for who, edition in jobs:
        store.prepare_delivery(who, edition, message_id=f"<{who}>", paper_ids=("p1", "p2"))
        assert store.claim(who, edition, worker="w") is not None
    syncs = 0
    real = store._write_marks

    def counting(batch: list[_SentMark]) -> None:
        nonlocal syncs
        syncs += 1
        real(batch)

    store._write_marks = counting  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                store.mark_sent(f"r{t}-{i}@x.org", "e1", reply="250 OK")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for who, edition in jobs:
        row = store.delivery(who, edition)
        assert row is not None and row.state == SENT and row.server_reply == "250 OK"
    assert store.sent_paper_ids_many([who for who, _ in jobs]) == {
        who: {"p1", "p2"} for who, _ in jobs
    }
    assert syncs < len(jobs)  # some syncs carried several marks
    store.close()


def test_a_mark_without_a_row_fails_alone_in_its_batch(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.prepare_delivery("a@x.org", "e1", message_id="<a>", paper_ids=("p1",))
    good = _SentMark("a@x.org", "e1", "250 OK", "2026-11-29T00:00:00+00:00")
    bad = _SentMark("nobody@x.org", "e1", "250 OK", "2026-11-29T00:00:00+00:00")
    store._write_marks([bad, good])
    assert good.done and good.error is None
    assert bad.done and "no ledger row for nobody@x.org / e1" in str(bad.error)
    row = store.delivery("a@x.org", "e1")
    assert row is not None and row.state == SENT
    with pytest.raises(StoreError, match="no ledger row"):
        store.mark_sent("nobody@x.org", "e1")
    store.close()


def test_one_bad_row_in_a_batch_fails_only_its_own_mark(tmp_path: Path) -> None:
    """When a batch's transaction fails, each mark is written alone: the good ones are
    recorded (the server accepted them), the bad one keeps its error."""
    store = Store(tmp_path / "state.db")
    for who in ("a@x.org", "b@x.org", "c@x.org"):
        store.prepare_delivery(who, "e1", message_id=f"<{who}>", paper_ids=("p1",))
    with store.transaction() as db:  # b's row is damaged: its paper list is not JSON
        db.execute("UPDATE deliveries SET paper_ids='[' WHERE subscriber='b@x.org'")
    at = "2026-11-29T00:00:00+00:00"
    marks = [_SentMark(who, "e1", "250 OK", at) for who in ("a@x.org", "b@x.org", "c@x.org")]
    store._write_marks(marks)
    assert all(m.done for m in marks)
    assert marks[0].error is None and marks[2].error is None
    assert marks[1].error is not None
    rows = store._query("SELECT subscriber, state FROM deliveries ORDER BY subscriber")
    assert [(r["subscriber"], r["state"]) for r in rows] == [
        ("a@x.org", SENT),
        ("b@x.org", PENDING),
        ("c@x.org", SENT),
    ]
    store.close()

"""deliver() and the file/console transports: the ledger stays true whatever happens."""

from __future__ import annotations

import io
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from test_delivery_smtp import EDITION, messages

from newsletter.config import DeliveryConfig, SmtpConfig
from newsletter.delivery import (
    ConsoleTransport,
    DeliverySummary,
    OutboxTransport,
    SmtpTransport,
    deliver,
    make_transport,
)
from newsletter.delivery.outbox import safe_name
from newsletter.errors import ConfigError
from newsletter.models import DeliveryResult, OutgoingMessage
from newsletter.store import FAILED, PENDING, SENT, Store


class Recording:
    """A transport that records calls and answers from a script (a test double for
    the transport *interface* only; the SMTP behaviour is tested against aiosmtpd)."""

    name = "recording"
    concurrency = 2

    def __init__(self, answers: dict[str, object] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[str] = []
        self.closed = 0

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        answer = self.answers.get(message.subscriber)
        if isinstance(answer, BaseException):
            raise answer
        self.sent.append(message.subscriber)
        ok = answer is None
        return DeliveryResult(
            message.subscriber,
            message.edition,
            message.message_id,
            ok=ok,
            permanent=answer == "permanent",
            reply="250 ok" if ok else f"{answer} failure",
        )

    def close(self) -> None:
        self.closed += 1


def test_outbox_writes_eml_and_html_atomically_and_once(store: Store, tmp_path: Path) -> None:
    msgs = messages(3)
    transport = make_transport(DeliveryConfig(transport="outbox", outbox=tmp_path / "out"))
    assert isinstance(transport, OutboxTransport)
    summary = deliver(store, transport, msgs, worker="t", max_failures=3)
    assert summary.sent == 3
    folder = tmp_path / "out" / EDITION
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"reader{i}@example.com.{ext}" for i in range(3) for ext in ("eml", "html")]
    )
    eml = folder / "reader1@example.com.eml"
    assert eml.read_bytes() == msgs[1].data
    assert summary.results[0].path is not None and Path(summary.results[0].path).exists()
    parsed = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None
    assert (folder / "reader1@example.com.html").read_text() == html.get_content()
    eml.unlink()
    again = deliver(store, transport, msgs, worker="t", max_failures=3)
    assert (again.sent, again.already_sent) == (0, 3)
    assert not eml.exists()  # already sent: not written again


def test_safe_names_cannot_escape_the_outbox() -> None:
    assert safe_name("ada@example.com") == "ada@example.com"
    for evil in ["../../etc/passwd", "..", "a/b@x.org", ".hidden@x.org", ""]:
        name = safe_name(evil)
        assert "/" not in name and not name.startswith(".") and name
    assert safe_name("a/b@x.org") != safe_name("a_b@x.org")


def test_console_prints_the_message() -> None:
    out = io.StringIO()
    [msg] = messages(1)
    result = ConsoleTransport(out).send(msg)
    assert result.ok
    text = out.getvalue()
    assert "Subject: Paper digest for reader 0" in text
    assert "Hello reader 0" in text and "\r" not in text


def test_make_transport_names_the_bad_key() -> None:
    assert isinstance(make_transport(DeliveryConfig(transport="console")), ConsoleTransport)
    smtp = make_transport(DeliveryConfig(transport="smtp", smtp=SmtpConfig(connections=3)))
    assert isinstance(smtp, SmtpTransport) and smtp.concurrency == 3
    with pytest.raises(ConfigError, match=r"delivery\.transport: unknown transport 'carrier'"):
        make_transport(DeliveryConfig(transport="carrier"))


def test_failures_are_recorded_and_nothing_crashes_the_run(store: Store) -> None:
    msgs = messages(5)
    transport = Recording(
        {
            "reader1@example.com": "permanent",
            "reader2@example.com": "temporary",
            "reader3@example.com": RuntimeError("transport bug"),
        }
    )
    summary = deliver(store, transport, msgs, worker="t", max_failures=2)
    assert summary.sent == 2 and transport.closed == 1
    assert {r.subscriber: r.permanent for r in summary.failed} == {
        "reader1@example.com": True,
        "reader2@example.com": False,
        "reader3@example.com": False,
    }
    state = {d.subscriber: d for d in store.deliveries(edition=EDITION)}
    assert state["reader1@example.com"].state == FAILED
    assert state["reader2@example.com"].state == PENDING
    assert state["reader3@example.com"].state == PENDING
    assert state["reader3@example.com"].reason == "RuntimeError: transport bug"
    assert state["reader0@example.com"].state == SENT
    assert summary.suppressed == []  # one permanent failure, limit 2
    lines = "\n".join(summary.lines())
    assert "failed: 3 (1 permanent, 2 left pending for the next run)" in lines
    assert "reader3@example.com: will retry: RuntimeError: transport bug" in lines

    # Next run: the pending ones are tried again, the failed one is skipped.
    transport.answers = {}
    again = deliver(store, transport, msgs, worker="t", max_failures=2)
    assert (again.sent, again.already_sent) == (2, 2)
    assert again.skipped == [
        (
            "reader1@example.com",
            "failed permanently before (permanent failure); send --retry-failed to resend",
        )
    ]


def test_repeated_permanent_failures_suppress_across_editions(store: Store) -> None:
    transport = Recording({"reader0@example.com": "permanent"})
    first = deliver(store, transport, messages(1, edition="e1"), worker="t", max_failures=2)
    second = deliver(store, transport, messages(1, edition="e2"), worker="t", max_failures=2)
    assert first.suppressed == [] and second.suppressed == ["reader0@example.com"]
    third = deliver(store, transport, messages(1, edition="e3"), worker="t", max_failures=2)
    assert third.skipped[0][0] == "reader0@example.com"
    assert third.skipped[0][1].startswith("suppressed (2 permanent failures")
    assert transport.sent == ["reader0@example.com"] * 2


def test_unsubscribed_and_claimed_rows_are_not_sent(store: Store) -> None:
    msgs = messages(3)
    store.set_subscriber_status("reader0@example.com", "unsubscribed", "one-click link")
    store.prepare_delivery("reader1@example.com", EDITION, message_id="x", paper_ids=[])
    assert store.claim("reader1@example.com", EDITION, worker="other") is not None
    transport = Recording()
    seen: list[DeliveryResult] = []
    summary = deliver(
        store,
        transport,
        msgs,
        worker="t",
        max_failures=3,
        progress=seen.append,
        release_stale=False,
    )
    assert transport.sent == ["reader2@example.com"]
    # Progress hears of every message, so a progress bar reaches its total.
    assert sorted((r.subscriber, r.attempts) for r in seen) == [
        ("reader0@example.com", 0),
        ("reader1@example.com", 0),
        ("reader2@example.com", 1),
    ]
    assert store.delivery("reader1@example.com", EDITION).state == "sending"  # type: ignore[union-attr]
    assert dict(summary.skipped) == {
        "reader0@example.com": "unsubscribed (one-click link)",
        "reader1@example.com": "being sent by another worker",
    }


def test_a_composing_error_stops_the_run_after_recording_what_was_sent(store: Store) -> None:
    msgs = messages(3)

    def gen() -> Iterator[OutgoingMessage]:
        yield msgs[0]
        raise ConfigError("templates/digest.mjml:3: broken")

    transport = Recording()
    transport.concurrency = 1
    with pytest.raises(ConfigError, match="broken"):
        deliver(store, transport, gen(), worker="t", max_failures=3)
    assert store.delivery("reader0@example.com", EDITION).state == SENT  # type: ignore[union-attr]
    assert transport.closed == 1


def test_summary_ok_and_lines() -> None:
    summary = DeliverySummary(sent=3, already_sent=1)
    assert summary.ok
    assert summary.lines()[:4] == [
        "sent: 3",
        "already sent: 1",
        "failed: 0 (0 permanent, 0 left pending for the next run)",
        "suppressed: 0",
    ]


def test_a_row_prepared_by_the_caller_keeps_its_papers(store: Store) -> None:
    [msg] = messages(1)
    store.prepare_delivery(
        msg.subscriber, EDITION, message_id=msg.message_id, paper_ids=["2411.1", "2411.2"]
    )
    bare = OutgoingMessage(msg.subscriber, EDITION, msg.message_id, msg.data, msg.sender)
    assert deliver(store, Recording(), [bare], worker="t", max_failures=3).sent == 1
    assert store.sent_paper_ids(msg.subscriber) == {"2411.1", "2411.2"}
    # Without a prepared row, deliver creates one from the message's paper ids.
    [other] = messages(1, edition="e2")
    assert deliver(store, Recording(), [other], worker="t", max_failures=3).sent == 1
    assert "2411.00000" in store.sent_paper_ids(other.subscriber)

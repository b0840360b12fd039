"""SMTP delivery against a real aiosmtpd server on port 0: TLS modes, AUTH, faults,
the ledger after each, and a kill -9 in the middle of a 1,500-subscriber send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from smtp_support import Faults, SmtpServer

from newsletter.config import DeliveryConfig, SmtpConfig
from newsletter.delivery import Composer, SmtpTransport, deliver
from newsletter.delivery.smtp import RateLimiter
from newsletter.models import DeliveryResult, OutgoingMessage, RenderedEmail, Subscriber
from newsletter.signing import Links
from newsletter.store import FAILED, PENDING, SENT, Store

EDITION = "2026-11-29"
COMPOSER = Composer(DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>"))


def messages(
    n: int, *, edition: str = EDITION, domain: str = "example.com"
) -> list[OutgoingMessage]:
    out = []
    for i in range(n):
        email = f"reader{i}@{domain}"
        out.append(
            COMPOSER.compose(
                RenderedEmail(
                    subject=f"Paper digest for reader {i}",
                    html=f"<html><body><p>Hello reader {i}</p></body></html>",
                    text=f"Hello reader {i}\n",
                ),
                Subscriber(email=email, name=f"Reader {i}"),
                edition=edition,
                links=Links("https://news.example.org", "secret", email),
                date=datetime(2026, 11, 29, 7, tzinfo=UTC),
                paper_ids=(f"2411.{i:05d}",),
            )
        )
    return out


def smtp_config(server: SmtpServer, **overrides: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": {None: "none", "starttls": "starttls", "implicit": "tls"}[server.tls],
        "timeout": 3.0,
        "connections": 2,
        "max_per_connection": 100,
        "retries": 2,
        "backoff": 0.01,
        "ca_file": server.ca_file,
    }
    values.update(overrides)
    return SmtpConfig(**values)  # type: ignore[arg-type]


def states(store: Store) -> Counter[str]:
    return Counter(d.state for d in store.deliveries(edition=EDITION))


def check_received(server: SmtpServer, expected: list[OutgoingMessage]) -> None:
    """Every expected message arrived exactly once, with the right headers."""
    got = server.messages
    ids = Counter(str(m["Message-ID"]) for m in got)
    assert ids == Counter(f"<{m.message_id}>" for m in expected)
    by_id = {f"<{m.message_id}>": m for m in expected}
    for msg in got:
        sent = by_id[str(msg["Message-ID"])]
        assert msg["To"].addresses[0].addr_spec == sent.subscriber
        assert msg["From"] == "Paper Digest <digest@news.example.org>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    envelopes = {r.rcpt_tos for r in server.received}
    assert envelopes == {(m.subscriber,) for m in expected}


def test_plain_reuses_and_recycles_connections_and_never_resends(store: Store) -> None:
    msgs = messages(7)
    with SmtpServer() as server:
        transport = SmtpTransport(smtp_config(server, max_per_connection=3))
        seen: list[DeliveryResult] = []
        summary = deliver(store, transport, msgs, worker="t", max_failures=3, progress=seen.append)
        assert (summary.sent, summary.already_sent, summary.failed) == (7, 0, [])
        assert len(seen) == 7 and all(r.reply.startswith("250") for r in seen)
        check_received(server, msgs)
        # 7 messages, 2 workers, at most 3 per connection: at least 3 connections,
        # far fewer than one per message.
        assert 3 <= server.connections <= 5
        assert states(store) == {SENT: 7}
        row = store.delivery("reader0@example.com", EDITION)
        assert row is not None and row.server_reply == "250 2.0.0 Ok: queued"
        assert store.sent_paper_ids("reader0@example.com") == {"2411.00000"}
        again = deliver(store, transport, msgs, worker="t", max_failures=3)
        assert (again.sent, again.already_sent) == (0, 7)
        assert len(server.received) == 7


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_with_auth(store: Store, mechanism: str) -> None:
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    with SmtpServer(tls="starttls", auth={"bob": "s3cret"}, auth_exclude=[other]) as server:
        msgs = messages(3)
        cfg = smtp_config(server, username="bob", password="s3cret")
        summary = deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3)
        assert summary.sent == 3 and summary.ok
        check_received(server, msgs)
        assert server.auth_mechanisms == {mechanism}


def test_wrong_password_stops_the_run_and_leaves_rows_pending(store: Store) -> None:
    with SmtpServer(tls="starttls", auth={"bob": "s3cret"}) as server:
        cfg = smtp_config(server, username="bob", password="wrong")
        summary = deliver(store, SmtpTransport(cfg), messages(5), worker="t", max_failures=3)
        assert summary.sent == 0 and not summary.ok
        assert summary.aborted is not None
        assert "login as 'bob' refused (535" in summary.aborted
        assert "check delivery.smtp.username and the password" in summary.aborted
        assert server.received == []
        assert SENT not in states(store) and FAILED not in states(store)
        assert store.subscriber_status("reader0@example.com")[0] == "active"


def test_implicit_tls_verifies_the_certificate(store: Store) -> None:
    with SmtpServer(tls="implicit", auth={"bob": "pw"}) as server:
        msgs = messages(3)
        cfg = smtp_config(server, username="bob", password="pw")
        assert deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3).sent == 3
        check_received(server, msgs)


def test_untrusted_certificate_is_refused(store: Store) -> None:
    with SmtpServer(tls="implicit") as server:
        cfg = smtp_config(server, ca_file=None)
        summary = deliver(store, SmtpTransport(cfg), messages(2), worker="t", max_failures=3)
        assert summary.aborted is not None and "TLS certificate not trusted" in summary.aborted
        assert "delivery.smtp.ca_file" in summary.aborted
        assert server.received == [] and states(store)[SENT] == 0


def test_starttls_required_by_server_but_not_used(store: Store) -> None:
    with SmtpServer(tls="starttls") as server:
        cfg = smtp_config(server, security="none")
        summary = deliver(store, SmtpTransport(cfg), messages(2), worker="t", max_failures=3)
        assert summary.aborted is not None and "refused the sender" in summary.aborted
        assert "530" in summary.aborted
        # The run stopped at the first refusal: what was started is pending again.
        assert server.received == [] and set(states(store)) == {PENDING}


def test_421_at_connect_once_then_accepted(store: Store) -> None:
    with SmtpServer(faults=Faults(reject_connections=1)) as server:
        msgs = messages(1)
        summary = deliver(
            store, SmtpTransport(smtp_config(server)), msgs, worker="t", max_failures=3
        )
        assert summary.sent == 1 and summary.results[0].attempts == 2
        check_received(server, msgs)


def test_421_at_every_connect_leaves_everyone_pending_then_a_rerun_sends(store: Store) -> None:
    with SmtpServer(faults=Faults(reject_connections=1000)) as server:
        msgs = messages(6)
        transport = SmtpTransport(smtp_config(server, retries=1))
        summary = deliver(store, transport, msgs, worker="t", max_failures=3)
        assert summary.sent == 0 and summary.aborted is not None
        assert "421 4.3.2 Too many connections" in summary.aborted
        assert states(store)[PENDING] >= 1 and states(store)[SENT] == 0
        row = store.delivery("reader0@example.com", EDITION)
        assert row is not None and row.state == PENDING and row.reason and "421" in row.reason
        server.faults.reject_connections = 0
        again = deliver(store, transport, msgs, worker="t", max_failures=3)
        assert again.sent == 6
        check_received(server, msgs)


def test_451_on_rcpt_once_then_accepted(store: Store) -> None:
    with SmtpServer(faults=Faults(rcpt_tempfail=1)) as server:
        msgs = messages(3)
        cfg = smtp_config(server, connections=1)
        summary = deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3)
        assert summary.sent == 3
        assert sorted(r.attempts for r in summary.results) == [1, 1, 2]
        check_received(server, msgs)
        assert states(store) == {SENT: 3}


def test_451_until_retries_run_out_is_left_pending(store: Store) -> None:
    with SmtpServer(faults=Faults(data_tempfail=100)) as server:
        cfg = smtp_config(server, connections=1, retries=2)
        summary = deliver(store, SmtpTransport(cfg), messages(1), worker="t", max_failures=3)
        [result] = summary.failed
        assert not result.permanent and result.attempts == 3
        assert "451 4.3.0 Temporary local problem" in result.reply
        row = store.delivery("reader0@example.com", EDITION)
        assert row is not None and row.state == PENDING and "451" in (row.reason or "")
        assert server.received == []
        assert "will retry" in "\n".join(summary.lines())


def test_550_is_permanent_with_the_server_reply_and_suppresses(store: Store) -> None:
    bad = "reader1@example.com"
    with SmtpServer(faults=Faults(rcpt_reject={bad})) as server:
        msgs = messages(3)
        transport = SmtpTransport(smtp_config(server))
        summary = deliver(store, transport, msgs, worker="t", max_failures=1)
        assert summary.sent == 2
        [failure] = summary.permanent
        assert failure.subscriber == bad and failure.attempts == 1
        assert "550 5.1.1" in failure.reply and "User unknown" in failure.reply
        assert summary.suppressed == [bad]
        row = store.delivery(bad, EDITION)
        assert row is not None and row.state == FAILED and "550 5.1.1" in (row.reason or "")
        assert store.subscriber_status(bad)[0] == "suppressed"
        check_received(server, [m for m in msgs if m.subscriber != bad])
        again = deliver(store, transport, msgs, worker="t", max_failures=1)
        assert again.sent == 0 and again.already_sent == 2
        assert [who for who, _ in again.skipped] == [bad]
        assert "suppressed: 1" in summary.lines()


@pytest.mark.parametrize(
    ("faults", "counts"),
    [
        # The address is bad: counts towards suppression.
        (Faults(rcpt_replies={"reader0@example.com": "550 No such user here"}), True),
        (Faults(rcpt_replies={"reader0@example.com": "553 5.1.3 Bad recipient syntax"}), True),
        (Faults(data_reply="552 5.2.2 Mailbox full"), True),
        # Every reader would get the same refusal: the sender's problem, not theirs.
        (Faults(data_reply="550 5.7.26 Unauthenticated email from example.org"), False),
        (Faults(rcpt_replies={"reader0@example.com": "554 5.7.1 Relay access denied"}), False),
        (Faults(data_reply="552 5.3.4 Message size exceeds fixed limit"), False),
        (Faults(data_reply="554 Transaction failed: spam"), False),
    ],
    ids=["550", "553-5.1.3", "5.2.2", "5.7.26", "relay-5.7.1", "5.3.4", "554-no-code"],
)
def test_only_failures_that_blame_the_address_count_towards_suppression(
    store: Store, faults: Faults, counts: bool
) -> None:
    """Three editions refused alike: a bad address is suppressed after the third; a
    refusal of the sender (DMARC, relaying, size, spam) suppresses nobody (it would
    suppress the whole list for the sender's own misconfiguration)."""
    who = "reader0@example.com"
    with SmtpServer(faults=faults) as server:
        transport = SmtpTransport(smtp_config(server))
        for edition in ("e1", "e2", "e3"):
            summary = deliver(
                store, transport, messages(1, edition=edition), worker="t", max_failures=3
            )
            [failure] = summary.permanent
            assert failure.subscriber == who and failure.recipient_fault is counts
        assert summary.suppressed == ([who] if counts else [])
        assert store.subscriber_status(who)[0] == ("suppressed" if counts else "active")
        assert [d.state for d in store.deliveries(subscriber=who)] == [FAILED] * 3


def test_connection_dropped_at_the_data_command_is_retried_at_once(store: Store) -> None:
    # Dropped before the final ".": the server cannot have accepted it, retry now.
    with SmtpServer(faults=Faults(drop_at_data=1)) as server:
        msgs = messages(2)
        cfg = smtp_config(server, connections=1)
        summary = deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3)
        assert summary.sent == 2 and summary.ok
        assert sorted(r.attempts for r in summary.results) == [1, 2]
        check_received(server, msgs)
        assert server.connections == 2


def test_connection_dropped_after_the_final_dot_is_not_retried_in_the_run(store: Store) -> None:
    # The server got the whole message, then the connection dropped: the outcome is
    # unknown, so no retry in this run; the next run sends it again (same Message-ID).
    with SmtpServer(faults=Faults(drop_in_data=1)) as server:
        msgs = messages(2)
        transport = SmtpTransport(smtp_config(server, connections=1, retries=2))
        summary = deliver(store, transport, msgs, worker="t", max_failures=3)
        assert summary.sent == 1
        [failure] = summary.failed
        assert failure.uncertain and not failure.permanent and failure.attempts == 1
        assert failure.reply.startswith("outcome unknown: SMTPServerDisconnected")
        assert "unknown outcome 1 of 2" in failure.reply
        row = store.delivery(failure.subscriber, EDITION)
        assert row is not None and row.state == PENDING and row.uncertain == 1
        assert len(server.received) == 1  # this fault drops the message it received
        again = deliver(store, transport, msgs, worker="t", max_failures=3)
        assert (again.sent, again.already_sent) == (1, 1)
        check_received(server, msgs)


@pytest.mark.parametrize("second_run", ["slow again", "fast"])
def test_a_reply_slower_than_the_timeout_after_data_bounds_the_copies(
    store: Store, second_run: str
) -> None:
    """Review finding 1: a server that accepts the message but answers after the
    timeout. Before, every run retried at once: 3 copies a run, never marked sent."""
    delay = 1.5
    faults = Faults(slow_accept=1, slow_accept_delay=delay)
    with SmtpServer(faults=faults) as server:
        msgs = messages(3)
        cfg = smtp_config(server, timeout=0.6, retries=2, connections=1)
        transport = SmtpTransport(cfg)
        assert transport.max_uncertain == 2
        first = deliver(store, transport, msgs, worker="t", max_failures=1)
        slow = msgs[0]
        assert first.sent == 2
        [failure] = first.failed
        assert failure.subscriber == slow.subscriber and failure.uncertain
        assert failure.attempts == 1  # not retried within the run
        assert "no reply within 0.6 s (delivery.smtp.timeout) after the end of DATA" in (
            failure.reply
        )
        assert Counter(server.message_ids()) == Counter(f"<{m.message_id}>" for m in msgs)
        row = store.delivery(slow.subscriber, EDITION)
        assert row is not None and row.state == PENDING and row.uncertain == 1
        assert "sent again by the next run, same Message-ID" in (row.reason or "")
        time.sleep(delay)  # the server finishes the abandoned session

        server.faults.slow_accept = 1 if second_run == "slow again" else 0
        second = deliver(store, transport, msgs, worker="t", max_failures=1)
        copies = Counter(server.message_ids())[f"<{slow.message_id}>"]
        assert copies == 2  # the same Message-ID: recognisable as one message
        row = store.delivery(slow.subscriber, EDITION)
        assert row is not None
        if second_run == "fast":
            assert second.sent == 1 and second.ok and row.state == SENT
        else:
            # The bound is reached: failed with a clear reason, never sent again, and the
            # subscriber is not suppressed (nothing is wrong with the address).
            [final] = second.failed
            assert final.permanent and final.uncertain
            assert row.state == FAILED and row.uncertain == 2
            assert "2 sends with an unknown outcome: not sent again" in (row.reason or "")
            assert store.subscriber_status(slow.subscriber)[0] == "active"
            assert second.suppressed == []
            time.sleep(delay)
            third = deliver(store, transport, msgs, worker="t", max_failures=1)
            assert third.sent == 0 and [w for w, _ in third.skipped] == [slow.subscriber]
            assert Counter(server.message_ids())[f"<{slow.message_id}>"] == 2
            store.reset_failed(slow.subscriber, EDITION)  # an operator's explicit resend
            assert deliver(store, transport, msgs, worker="t", max_failures=1).sent == 1
            row = store.delivery(slow.subscriber, EDITION)
            assert row is not None and row.state == SENT and row.uncertain == 0


IDN = "ada@bücher.example"
IDN_ASCII = "ada@xn--bcher-kva.example"


def idn_messages() -> list[OutgoingMessage]:
    out = []
    for who in ("amy@example.com", IDN, "zed@example.com", "zzz@example.com"):
        out.append(
            COMPOSER.compose(
                RenderedEmail(subject="digest", html="<p>hi</p>", text="hi\n"),
                Subscriber(email=who, name="Ada Bücher" if who == IDN else ""),
                edition=EDITION,
                links=Links("https://news.example.org", "secret", who),
            )
        )
    return out


def test_an_idn_recipient_among_ascii_ones_everyone_gets_mail(store: Store) -> None:
    """Review finding 3: RCPT was sent with the raw IDN address (UnicodeEncodeError
    mid-transaction), the next MAIL got "503 nested MAIL" and stopped the run."""
    msgs = idn_messages()
    # A message built by hand, without ``recipient``: the transport converts it too.
    bob = "bob@bücher.example"
    hand = OutgoingMessage(
        subscriber=bob,
        edition=EDITION,
        message_id="hand.1@news.example.org",
        data=b"From: a@news.example.org\r\nTo: bob@xn--bcher-kva.example\r\n"
        b"Message-ID: <hand.1@news.example.org>\r\nSubject: hi\r\n\r\nhi\r\n",
        sender="a@news.example.org",
    )
    with SmtpServer() as server:
        cfg = smtp_config(server, connections=1)
        summary = deliver(store, SmtpTransport(cfg), [*msgs, hand], worker="t", max_failures=3)
        assert summary.ok and summary.sent == 5
        envelopes = [r.rcpt_tos for r in server.received]
        assert envelopes == [
            ("amy@example.com",),
            (IDN_ASCII,),
            ("zed@example.com",),
            ("zzz@example.com",),
            ("bob@xn--bcher-kva.example",),
        ]
        got = {str(m["Message-ID"]): m for m in server.messages}
        ada = got[f"<{msgs[1].message_id}>"]
        assert ada["To"].addresses[0].addr_spec == IDN_ASCII
        assert ada["To"].addresses[0].display_name == "Ada Bücher"
        assert server.connections == 1  # one connection carried them all
        # The ledger is keyed by the address as configured.
        assert states(store) == {SENT: 5}
        row = store.delivery(IDN, EDITION)
        assert row is not None and row.state == SENT


def test_an_idn_recipient_the_server_refuses_is_a_clear_permanent_failure(store: Store) -> None:
    msgs = idn_messages()
    with SmtpServer(faults=Faults(rcpt_reject={IDN_ASCII})) as server:
        cfg = smtp_config(server, connections=1)
        summary = deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3)
        assert summary.aborted is None and summary.sent == 3
        [failure] = summary.permanent
        assert failure.subscriber == IDN
        assert failure.reply.startswith("RCPT TO: 550 5.1.1")
        assert IDN_ASCII in failure.reply
        check_received(server, [m for m in msgs if m.subscriber != IDN])
        row = store.delivery(IDN, EDITION)
        assert row is not None and row.state == FAILED


def test_an_error_inside_a_transaction_drops_the_connection(store: Store) -> None:
    # An envelope smtplib cannot encode, after MAIL FROM was accepted: the session is
    # mid-transaction. It must not be reused (that gave "503 nested MAIL command").
    msgs = messages(3)
    broken = OutgoingMessage(
        subscriber="raw@example.com",
        edition=EDITION,
        message_id="raw.1@news.example.org",
        data=msgs[0].data,
        sender=msgs[0].sender,
        recipient=IDN,  # not ASCII: a bug in whoever built the message
    )
    with SmtpServer() as server:
        cfg = smtp_config(server, connections=1)
        summary = deliver(
            store, SmtpTransport(cfg), [msgs[0], broken, *msgs[1:]], worker="t", max_failures=3
        )
        assert summary.aborted is None and summary.sent == 3
        [failure] = summary.failed
        assert failure.subscriber == "raw@example.com" and not failure.permanent
        assert failure.reply.startswith("UnicodeEncodeError")
        check_received(server, msgs)
        assert server.connections == 2  # a fresh connection after the error


def test_503_at_mail_from_on_a_reused_connection_is_not_a_refused_sender(store: Store) -> None:
    with SmtpServer(faults=Faults(nested_mail=1)) as server:
        msgs = messages(3)
        cfg = smtp_config(server, connections=1)
        summary = deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3)
        assert summary.aborted is None and summary.ok and summary.sent == 3
        assert sorted(r.attempts for r in summary.results) == [1, 1, 2]
        check_received(server, msgs)
        assert server.connections == 2


def test_a_server_slower_than_the_timeout(store: Store) -> None:
    with SmtpServer(faults=Faults(delay_rcpt=1.5)) as server:
        msgs = messages(1)
        transport = SmtpTransport(smtp_config(server, timeout=0.3, retries=1, connections=1))
        started = time.monotonic()
        summary = deliver(store, transport, msgs, worker="t", max_failures=3)
        assert time.monotonic() - started < 3
        [failure] = summary.failed
        assert not failure.permanent
        assert "no reply within 0.3 s (delivery.smtp.timeout)" in failure.reply
        assert states(store) == {PENDING: 1}
        server.faults.delay_rcpt = 0
        time.sleep(1.6)  # let the server finish the abandoned sessions
        assert server.received == []
        assert deliver(store, transport, msgs, worker="t", max_failures=3).sent == 1
        check_received(server, msgs)


def test_rate_limiter_spaces_sends_and_caps_the_hour() -> None:
    now = [1000.0]
    limiter = RateLimiter(10, 3, clock=lambda: now[0], sleep=lambda s: None)
    assert [round(limiter.reserve(), 3) for _ in range(3)] == [0.0, 0.1, 0.2]
    assert round(limiter.reserve(), 3) == 3600.0  # the 4th waits for the 1st to leave the hour
    now[0] += 4000
    assert limiter.reserve() == 0.0


def test_rate_limit_is_global_across_connections(store: Store) -> None:
    with SmtpServer() as server:
        msgs = messages(6)
        cfg = smtp_config(server, connections=3, rate_per_second=20)
        started = time.monotonic()
        assert deliver(store, SmtpTransport(cfg), msgs, worker="t", max_failures=3).sent == 6
        assert time.monotonic() - started >= 5 / 20 - 0.01
        check_received(server, msgs)


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[4])
    from test_delivery_smtp import messages
    from newsletter.config import SmtpConfig
    from newsletter.delivery import SmtpTransport, deliver
    from newsletter.store import Store

    state, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cfg = SmtpConfig(host="127.0.0.1", port=port, security="none", connections=4,
                     timeout=5, retries=2, backoff=0.01)
    with Store(state) as store:
        s = deliver(store, SmtpTransport(cfg), messages(n), worker="w1", max_failures=3)
        print("finished", s.sent, flush=True)
    """
)


def test_kill_9_mid_send_then_rerun_gives_everyone_exactly_one(tmp_path: Path) -> None:
    n, connections = 1500, 4
    state = tmp_path / "state.db"
    with SmtpServer() as server:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CRASH_SCRIPT,
                str(state),
                str(server.port),
                str(n),
                str(Path(__file__).parent),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )
        deadline = time.monotonic() + 60
        while len(server.received) < 400 and proc.poll() is None:
            assert time.monotonic() < deadline, "the sender made no progress"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        time.sleep(0.2)  # sessions that were mid-DATA finish or drop
        before = len(server.received)
        assert 400 <= before < n
        with Store(state) as store:
            in_flight = sum(1 for d in store.deliveries(edition=EDITION) if d.state == "sending")
            assert in_flight <= connections
            cfg = SmtpConfig(
                host=server.host, port=server.port, security="none", connections=connections
            )
            msgs = messages(n)
            summary = deliver(store, SmtpTransport(cfg), msgs, worker="w2", max_failures=3)
            assert summary.ok
            assert summary.sent + summary.already_sent == n
            assert Counter(d.state for d in store.deliveries(edition=EDITION)) == {SENT: n}
        ids = Counter(server.message_ids())
        assert set(ids) == {f"<{m.message_id}>" for m in msgs}  # nobody left out
        duplicates = sum(c - 1 for c in ids.values())
        print(f"killed after {before} received; {in_flight} in flight; {duplicates} duplicates")
        assert duplicates <= connections, f"{duplicates} duplicates"
        assert duplicates <= in_flight


def test_dot_stuffing_and_bare_line_feeds_survive_the_wire(store: Store) -> None:
    text = ".\n.leading dot\n..two dots\nend\n"
    [msg] = messages(1)
    dotted = COMPOSER.compose(
        RenderedEmail(subject="dots", html="<p>.</p>\n.<p>x</p>", text=text),
        Subscriber(email="dots@example.com"),
        edition=EDITION,
        links=Links("https://news.example.org", "secret", "dots@example.com"),
    )
    assert b"\r\n.leading dot" in dotted.data  # quoted-printable leaves it: SMTP must stuff
    bare = OutgoingMessage(
        subscriber="bare@example.com",
        edition=EDITION,
        message_id="bare.1@news.example.org",
        data=b"From: a@news.example.org\nTo: bare@example.com\nMessage-ID: <bare.1@news."
        b"example.org>\nSubject: bare LF\n\n.line one\nline two\n",
        sender="a@news.example.org",
    )
    with SmtpServer() as server:
        summary = deliver(
            store,
            SmtpTransport(smtp_config(server)),
            [msg, dotted, bare],
            worker="t",
            max_failures=3,
        )
        assert summary.sent == 3
        got = {str(m["To"]): m for m in server.messages}
        part = got["dots@example.com"].get_body(preferencelist=("plain",))
        assert part is not None
        assert part.get_content().replace("\r\n", "\n") == text
        assert (
            got["bare@example.com"].get_content().replace("\r\n", "\n") == ".line one\nline two\n"
        )

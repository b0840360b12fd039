"""What ``send``, ``run --once``, ``preview`` and ``status`` report, and their exit codes:
through the real CLI entry point (``main``), on a real SQLite state, with a real aiosmtpd
relay where SMTP is involved."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smtp_support import Faults, SmtpServer
from test_scheduler import FORECAST, _daemon, sub, utc, write_feed

from newsletter.cli import main
from newsletter.pipeline import O_STOPPED
from newsletter.store import FAILED, PENDING, SENT, Store

GOOD, BAD = "good@example.org", "bad@example.org"


def write_config(
    tmp: Path,
    emails: tuple[str, ...] = (GOOD,),
    *,
    delivery: str = "{transport: outbox, outbox: outbox/}",
    schedule: str = "daily 07:00",
    extra: str = "",
) -> Path:
    feed = write_feed(tmp / "feed.xml", FORECAST)
    subs = "".join(
        f"  - email: {e}\n    interests:\n      - {{name: TS, keywords: [time series]}}\n"
        for e in emails
    )
    path = tmp / "cfg.yaml"
    path.write_text(
        f"state: {tmp / 'state.db'}\n"
        f"sources:\n  - {{name: feed, type: arxiv, url: {feed}}}\n"
        f"delivery: {delivery}\n"
        "web: {base_url: https://digest.example.org}\n"
        f'defaults: {{timezone: UTC, schedule: "{schedule}"}}\n'
        f"subscribers:\n{subs}{extra}",
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``newsletter ARGS`` in this process; (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def smtp(port: int) -> str:
    return (
        f"{{transport: smtp, smtp: {{host: 127.0.0.1, port: {port}, security: none, "
        "timeout: 3, retries: 1, backoff: 0.01}}"
    )


def _closed_port() -> int:
    with socket.socket() as s:  # nothing listens once it is closed
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret")
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


# -- 1. relay down: every edition not sent is accounted for ---------------------------------


@pytest.mark.parametrize("relay", ["refuses (421)", "nothing listening"])
def test_relay_down_counts_every_unsent_edition_to_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], relay: str
) -> None:
    with SmtpServer(faults=Faults(reject_connections=1000)) as server:
        port = server.port if relay == "refuses (421)" else _closed_port()
        cfg = write_config(tmp_path, (GOOD, BAD), delivery=smtp(port))
        code, out, err = run(capsys, "-c", str(cfg), "send")
        assert server.received == []
    assert code == 1
    assert err.splitlines()[-1].startswith("Error: sending stopped early: ")
    lines = out.splitlines()
    for email in (GOOD, BAD):
        (line,) = [ln for ln in lines if email in ln]
        assert line.split()[0] == "pending" and "not sent: sending stopped early" in line
    assert "0 sent, 0 already sent, 0 empty, 0 failed, 2 to retry," in lines[-1]
    with Store(tmp_path / "state.db") as store:  # nothing unsent is marked sent
        assert {d.state for d in store.deliveries()} <= {PENDING}


def test_daemon_job_counts_the_unsent_editions_once(tmp_path: Path) -> None:
    from dataclasses import replace

    from newsletter.config import DeliveryConfig, SmtpConfig
    from newsletter.pipeline import Pipeline

    with Store(tmp_path / "state.db") as store, SmtpServer() as server:
        daemon, _ = _daemon(tmp_path, store, [sub("a@x.org"), sub("b@x.org")], utc(2026, 6, 1, 7))
        server.faults.reject_connections = 1000
        conf = SmtpConfig(host=server.host, port=server.port, security="none", retries=1)
        daemon.config = replace(daemon.config, delivery=DeliveryConfig(transport="smtp", smtp=conf))
        daemon.pipeline = Pipeline(daemon.config, store)
        result = daemon.edition_job(("daily 07:00", "UTC"))
    assert [o.state for o in result.outcomes] == [O_STOPPED, O_STOPPED]
    assert "0 failed, 2 to retry" in result.line
    assert "2 edition(s) not sent, retried every 5 min" in result.line


# -- 2. a failure recorded by an earlier run ------------------------------------------------


def test_an_earlier_failure_is_reported_as_such_and_not_as_this_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SmtpServer() as server:
        server.faults.rcpt_reject = {BAD}
        cfg = write_config(tmp_path, (GOOD, BAD), delivery=smtp(server.port))
        code, out, _ = run(capsys, "-c", str(cfg), "send")
        assert code == 1  # the 550 happened in this run
        (first,) = [ln for ln in out.splitlines() if BAD in ln]
        assert first.split()[0] == "FAILED" and " 2 papers " in first
        assert "1 sent, 0 already sent, 0 empty, 1 failed" in out

        for _ in range(2):  # every later plain send: reported, skipped, exit 0
            code, out, err = run(capsys, "-c", str(cfg), "send")
            assert code == 0, err
            (line,) = [ln for ln in out.splitlines() if BAD in ln]
            assert line.split()[:2] == ["not", "resent"]
            assert " 2 papers " in line and "failed earlier: RCPT TO: 550 5.1.1" in line
            assert "newsletter send --retry-failed" in line
            summary = out.splitlines()[-1]
            assert "0 sent, 1 already sent, 0 empty, 0 failed, 0 to retry" in summary
            assert summary.endswith(", 1 failed earlier (not resent; send --retry-failed resends)")
            assert "Error" not in err
        assert [r.rcpt_tos for r in server.received] == [(GOOD,)]

        # A dry run shows what that send would do: not resent, unless --retry-failed.
        code, out, _ = run(capsys, "-c", str(cfg), "send", "--dry-run")
        assert code == 0
        (line,) = [ln for ln in out.splitlines() if BAD in ln]
        assert line.split()[:2] == ["not", "resent"]
        code, out, _ = run(capsys, "-c", str(cfg), "send", "--dry-run", "--retry-failed")
        assert code == 0
        (line,) = [ln for ln in out.splitlines() if BAD in ln]
        assert line.split()[:2] == ["dry", "run"] and " 2 papers " in line
        with Store(tmp_path / "state.db") as store:  # the dry runs changed nothing
            assert [d.state for d in store.deliveries() if d.subscriber == BAD] == [FAILED]
        assert [r.rcpt_tos for r in server.received] == [(GOOD,)]

        # --retry-failed sends it again: a new 550 is this run's failure again.
        code, out, _ = run(capsys, "-c", str(cfg), "send", "--retry-failed")
        assert code == 1 and "0 sent, 1 already sent, 0 empty, 1 failed" in out


# -- 3. run --once reports a skipped edition once --------------------------------------------


def test_run_once_reports_a_skipped_edition_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eight_h_ago = datetime.now(UTC) - timedelta(hours=8)
    cfg = write_config(tmp_path, schedule=f"daily {eight_h_ago:%H:%M}")
    code, out, err = run(capsys, "-c", str(cfg), "run", "--once")
    assert code == 0, err
    assert f"  skipped      {GOOD}: edition " in out and "more than 6 h ago" in out
    assert "skipped" in err  # the log line too, at INFO
    for _ in range(2):  # a cron job every 15 minutes: said once, not on every run
        code, out, err = run(capsys, "-c", str(cfg), "run", "--once")
        assert code == 0, err
        assert out == "No edition is due now.\n"
        assert "skipped" not in err
    code, out, err = run(capsys, "-q", "-c", str(cfg), "run", "--once")
    assert (code, out, err) == (0, "", "")  # -q in cron: nothing to do, nothing printed


# -- 4. bad arguments exit 2, one Error: line -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["preview", "-s", GOOD, "--date", "2026-13-01"], "'2026-13-01' is not a date"),
        (["preview", "-s", GOOD, "--date", "2999-01-01"], "2999-01-01 is in the future for"),
        (["preview", "-s", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
        (["send", "--no-fetch", "-s", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
        (["send", "--no-fetch", "--date", "2999-01-01"], "2999-01-01 is in the future for"),
        (["send", "--no-fetch", "--date", "yesterday"], "'yesterday' is not a date"),
    ],
)
def test_bad_arguments_exit_2_with_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    cfg = write_config(tmp_path)
    code, out, err = run(capsys, "-c", str(cfg), *args)
    assert code == 2
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("Error: ") and said in err
    assert f"(see 'newsletter {args[0]} --help')" in err


# -- 5. output details -----------------------------------------------------------------------


def test_preview_json_and_text_end_with_one_newline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    assert run(capsys, "-c", str(cfg), "fetch")[0] == 0
    target = tmp_path / "p.json"
    code, out, err = run(
        capsys, "-c", str(cfg), "preview", "-s", GOOD, "--format", "json", "-o", str(target)
    )
    assert code == 0, err
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n") and json.loads(text)["subscriber"] == GOOD
    for fmt in ("json", "text"):
        code, out, err = run(capsys, "-c", str(cfg), "preview", "-s", GOOD, "--format", fmt)
        assert code == 0, err
        assert out.endswith("\n") and not out.endswith("\n\n"), fmt


def test_status_lines_have_no_trailing_spaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    assert run(capsys, "-c", str(cfg), "send")[0] == 0
    code, out, err = run(capsys, "-c", str(cfg), "status")
    assert code == 0, err
    assert "  feed " in out and GOOD in out
    assert [ln for ln in out.splitlines() if ln != ln.rstrip()] == []


def test_a_broken_template_is_an_error_before_any_subscriber_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, (GOOD, BAD))
    assert run(capsys, "-c", str(cfg), "send", "-s", GOOD)[0] == 0  # good's is already sent
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "subject.txt").write_text("{{ oops\n", encoding="utf-8")
    broken = write_config(tmp_path, (GOOD, BAD), extra=f"templates: {tmp_path / 'tpl'}\n")
    for args in (["send", "--dry-run"], ["send"]):
        code, out, err = run(capsys, "-c", str(broken), *args)
        assert code == 2
        assert out == ""  # no "already sent" line before the error
        assert err.startswith("Error: ") and "subject.txt:1" in err
    with Store(tmp_path / "state.db") as store:
        assert [(d.subscriber, d.state) for d in store.deliveries()] == [(GOOD, SENT)]


# -- empty editions say the real reason --------------------------------------------------


def test_an_edition_left_empty_because_every_source_failed_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 4's empty reasons include "every source failed"; it read "no new papers
    since the last edition" (there was no last edition: the sources were down)."""
    cfg = write_config(tmp_path)
    dead = f"http://127.0.0.1:{_closed_port()}/feed"
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "feed.xml"), dead))
    code, out, _ = run(capsys, "-c", str(cfg), "preview", "-s", GOOD, "--format", "json")
    assert code == 0
    assert json.loads(out)["empty_reason"] == "no papers are stored yet (run 'newsletter fetch')"
    code, out, _ = run(capsys, "-c", str(cfg), "send")
    with Store(tmp_path / "state.db") as store:
        [row] = store.deliveries(subscriber=GOOD)
    assert row.reason == "every source failed (feed): no new papers to select from", row
    assert "every source failed (feed)" in out


def test_an_edition_with_nothing_new_after_a_good_fetch_keeps_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The truer reasons apply only when the sources failed or nothing is stored: the
    day after a sent edition, with the sources fine, it is still "no new papers"."""
    from newsletter.config import load_config
    from newsletter.pipeline import Pipeline
    from newsletter.selection import NO_CANDIDATES

    cfg = write_config(tmp_path)
    assert run(capsys, "-c", str(cfg), "send")[0] == 0
    config = load_config(cfg)
    with Store(tmp_path / "state.db") as store:
        pipe = Pipeline(config, store)
        pipe.fetch()  # the local feed again: fine, nothing new
        assert pipe.sources_failed == []
        ref = pipe.edition_ref(config.subscribers[0], now=datetime.now(UTC) + timedelta(days=1))
        [digest] = pipe.digests([ref])
    assert digest.is_empty and digest.empty_reason == NO_CANDIDATES


def test_a_failing_source_beside_a_fresh_one_is_not_every_source_failing(
    tmp_path: Path,
) -> None:
    """``send`` fetches only stale sources: when the one fetched fails and the other is
    still fresh (fetched fine a moment ago), that is not "every source failed"."""
    from newsletter.config import load_config
    from newsletter.pipeline import Pipeline

    cfg = write_config(tmp_path)
    dead = f"http://127.0.0.1:{_closed_port()}/feed"
    text = cfg.read_text()
    cfg.write_text(
        text.replace("sources:\n", f"sources:\n  - {{name: down, type: feed, url: {dead}}}\n")
    )
    config = load_config(cfg)
    assert [s.name for s in config.sources] == ["down", "feed"]
    with Store(tmp_path / "state.db") as store:
        pipe = Pipeline(config, store)
        pipe.fetch()  # both: "feed" is fine, "down" fails
        assert pipe.sources_failed == []
        reports = pipe.fetch(only_stale=True)  # only "down" is stale
        assert [r.name for r in reports] == ["down"] and reports[0].errors
        assert pipe.sources_failed == []
        cfg.write_text(text.replace(str(tmp_path / "feed.xml"), dead))
        pipe = Pipeline(load_config(cfg), store)
        pipe.fetch()
        assert pipe.sources_failed == ["feed"]


def test_an_edition_recorded_empty_before_the_relay_went_down_is_reported_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editions are built ahead of the SMTP threads; one built and recorded empty
    before the send stopped must be reported as empty (what the ledger says), not as
    pending "the next run sends it" (the next run never would)."""
    emails = tuple(f"good{i:02d}@example.org" for i in range(32))
    cfg = write_config(tmp_path, emails, delivery=smtp(_closed_port()))
    cfg.write_text(
        cfg.read_text()
        + "  - email: empty@example.org\n"
        + "    interests:\n      - {name: Q, keywords: [quantum gravity]}\n"
    )
    code, out, _ = run(capsys, "-c", str(cfg), "send")
    assert code == 1
    with Store(tmp_path / "state.db") as store:
        [row] = store.deliveries(subscriber="empty@example.org")
    (line,) = [ln for ln in out.splitlines() if "empty@example.org" in ln]
    if row.state == "empty":  # built ahead before the stop: reported as recorded
        assert line.split()[0] == "empty", line
    else:  # never built: pending, for the next run
        assert row.state == PENDING and line.split()[0] == "pending", (row, line)


def test_the_daemon_job_line_counts_editions_that_failed_earlier() -> None:
    from newsletter.pipeline import O_FAILED_EARLIER, O_SENT, Outcome
    from newsletter.scheduler import JobResult

    outcomes = (Outcome("a@example.org", "e", O_SENT), Outcome(BAD, "e", O_FAILED_EARLIER))
    line = JobResult("retry", 0.5, outcomes=outcomes).line
    assert "2 edition(s): 1 sent," in line and "0 failed," in line
    assert "; 1 failed earlier (not resent)" in line


def test_retry_failed_leaves_a_failed_edition_of_someone_who_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--retry-failed does not queue an unsubscribed reader's failed edition again (it
    would go out by itself if they came back)."""
    from newsletter.store import UNSUBSCRIBED

    with SmtpServer() as server:
        server.faults.rcpt_reject = {BAD}
        cfg = write_config(tmp_path, (GOOD, BAD), delivery=smtp(server.port))
        assert run(capsys, "-c", str(cfg), "send")[0] == 1
        with Store(tmp_path / "state.db") as store:
            store.set_subscriber_status(BAD, UNSUBSCRIBED, "one-click unsubscribe link")
        code, out, _ = run(capsys, "-c", str(cfg), "send", "--retry-failed")
        assert code == 0
        (line,) = [ln for ln in out.splitlines() if BAD in ln]
        assert "unsubscribed" in line
        with Store(tmp_path / "state.db") as store:
            assert [d.state for d in store.deliveries(subscriber=BAD)] == [FAILED]
        assert [r.rcpt_tos for r in server.received] == [(GOOD,)]


def test_run_once_does_not_call_an_edition_skipped_when_a_later_one_was_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a schedule change, the new schedule's last time can lie before the edition
    the reader just got: that edition covered its papers; nothing was skipped."""
    now = datetime.now(UTC)
    hour_ago, two_days_ago = now - timedelta(hours=1), now - timedelta(days=2)
    cfg = write_config(tmp_path, schedule=f"daily {hour_ago:%H:%M}")
    code, out, err = run(capsys, "-c", str(cfg), "run", "--once")
    assert code == 0, err
    assert f"sent         {GOOD}" in out or f"empty        {GOOD}" in out, out
    weekly = f"weekly {two_days_ago:%a}".lower() + f" {two_days_ago:%H:%M}"
    cfg.write_text(cfg.read_text().replace(f"daily {hour_ago:%H:%M}", weekly))
    assert weekly in cfg.read_text()
    code, out, err = run(capsys, "-c", str(cfg), "run", "--once")
    assert code == 0, err
    assert "skipped" not in out and "skipped" not in err
    assert out == "No edition is due now.\n"

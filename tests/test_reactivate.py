"""``newsletter reactivate``: lifting a bounce suppression from the command line.

Real parts: the installed CLI in a subprocess, a real SQLite state file, the real
quant-ph arXiv day (read in place) and a real aiosmtpd relay on port 0 that answers
RCPT with 550 for the addresses it is told to refuse.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from cli_support import run_cli
from smtp_support import Faults, SmtpServer

from newsletter.store import Store

BAD, GOOD, GONE = "bad@example.org", "good@example.org", "gone@example.org"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("--config", "subscribers.yaml", *args, cwd=cwd)


@pytest.fixture()
def relay() -> SmtpServer:
    with SmtpServer(faults=Faults(rcpt_reject={BAD})) as server:
        yield server


@pytest.fixture()
def workdir(tmp_path: Path, shared_data: Path, relay: SmtpServer) -> Path:
    feed = shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml"
    people = "\n".join(
        f"  - email: {who}\n    interests: [{{name: Quantum, keywords: [quantum]}}]"
        for who in (BAD, GOOD, GONE)
    )
    (tmp_path / "subscribers.yaml").write_text(
        f"""\
state: var/state.db
sources:
  - {{name: quant-ph, type: arxiv, url: {feed}}}
delivery:
  from: "Paper Digest <digest@example.org>"
  transport: smtp
  max_failures: 3
  smtp: {{host: 127.0.0.1, port: {relay.port}, security: none, retries: 0, backoff: 0.01}}
web: {{base_url: https://digest.example.org}}
defaults: {{timezone: UTC, schedule: "daily 07:00", max_papers: 3, lookback_days: 100000}}
subscribers:
{people}
""",
        encoding="utf-8",
    )
    assert cli("fetch", cwd=tmp_path).returncode == 0
    return tmp_path


def state(workdir: Path, email: str) -> tuple[str, int]:
    db = sqlite3.connect(workdir / "var" / "state.db")
    try:
        row = db.execute(
            "SELECT status, permanent_failures FROM subscriber_status WHERE subscriber=?",
            (email,),
        ).fetchone()
    finally:
        db.close()
    return (row[0], row[1]) if row else ("active", 0)


def suppress_by_three_runs(workdir: Path) -> subprocess.CompletedProcess[str]:
    runs = [
        cli("send", "--no-fetch", cwd=workdir),
        cli("send", "--no-fetch", "--retry-failed", cwd=workdir),
        cli("send", "--no-fetch", "--retry-failed", cwd=workdir),
    ]
    for run in runs:
        assert run.returncode == 1, run.stdout + run.stderr  # the 550 is a failure
    return runs[-1]


def test_a_suppressed_address_is_reactivated_and_gets_the_edition_again(
    workdir: Path, relay: SmtpServer
) -> None:
    last = suppress_by_three_runs(workdir)
    assert f"WARNING {BAD}: suppressed after repeated permanent failures" in last.stderr
    assert state(workdir, BAD) == ("suppressed", 3)

    relay.faults.rcpt_reject = set()  # the address was fixed at the receiving end
    skipped = cli("send", "--no-fetch", cwd=workdir)
    assert "1 unsubscribed/suppressed" in skipped.stdout  # still paused: nothing lifts it

    done = cli("reactivate", BAD.upper(), cwd=workdir)  # addresses match case-insensitively
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [ln for ln in done.stdout.splitlines() if BAD in ln]
    assert line.split()[0] == "reactivated"
    assert "was suppressed: 3 permanent failures: RCPT TO: 550 5.1.1" in line
    assert "failed edition(s): " in line and line.endswith("failure count reset")
    assert "newsletter send --retry-failed" in done.stdout
    assert state(workdir, BAD) == ("active", 0)

    before = len(relay.messages)
    sent = cli("send", "--no-fetch", "--retry-failed", cwd=workdir)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "1 sent" in sent.stdout and "0 unsubscribed/suppressed" in sent.stdout
    assert [str(m["To"]) for m in relay.messages[before:]] == [BAD]


def test_all_suppressed_undoes_a_mass_suppression_but_not_an_unsubscribe(
    workdir: Path, relay: SmtpServer
) -> None:
    # A relay misconfigured to refuse everyone ("550 relaying denied", say).
    relay.faults.rcpt_reject = {BAD, GOOD, GONE}
    with Store(workdir / "var" / "state.db") as store:
        store.set_subscriber_status(GONE, "unsubscribed", "one-click unsubscribe link")
    suppress_by_three_runs(workdir)
    assert state(workdir, BAD)[0] == state(workdir, GOOD)[0] == "suppressed"

    dry = cli("reactivate", "--all-suppressed", "--dry-run", cwd=workdir)
    assert dry.returncode == 0, dry.stderr
    assert sum("would reactivate" in ln for ln in dry.stdout.splitlines()) == 2
    assert state(workdir, BAD)[0] == state(workdir, GOOD)[0] == "suppressed"

    done = cli("reactivate", "--all-suppressed", cwd=workdir)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if "@" in ln]
    assert sorted(ln.split()[1] for ln in lines) == [BAD, GOOD]
    assert all(ln.split()[0] == "reactivated" for ln in lines)
    assert state(workdir, BAD) == state(workdir, GOOD) == ("active", 0)
    assert state(workdir, GONE)[0] == "unsubscribed"  # they asked for it: untouched

    # Asking for the unsubscribed address by name still does not resubscribe it...
    refused = cli("reactivate", GONE, cwd=workdir)
    assert refused.returncode == 1
    assert "skipped" in refused.stdout and "--include-unsubscribed" in refused.stdout
    assert refused.stderr.strip().startswith("Error: 1 address(es) not reactivated")
    assert state(workdir, GONE)[0] == "unsubscribed"
    # ... unless the flag says so explicitly.
    forced = cli("reactivate", GONE, "--include-unsubscribed", cwd=workdir)
    assert forced.returncode == 0, forced.stderr
    assert "was unsubscribed: one-click unsubscribe link" in forced.stdout
    assert state(workdir, GONE)[0] == "active"

    # The counter really is back at 0: one more 550 does not suppress again at once.
    cli("send", "--no-fetch", "--retry-failed", cwd=workdir)
    assert state(workdir, BAD) == ("active", 1)


def test_an_address_not_in_the_config_is_an_error_and_nothing_changes(
    workdir: Path,
) -> None:
    suppress_by_three_runs(workdir)
    result = cli("reactivate", BAD, "nobody@example.org", cwd=workdir)
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ")
    assert "nobody@example.org" in err[0] and "subscribers.yaml" in err[0]
    assert state(workdir, BAD)[0] == "suppressed"  # checked before anything changed

    nothing = cli("reactivate", cwd=workdir)
    assert nothing.returncode == 2 and nothing.stderr.startswith("Error: ")


def test_help_says_unsubscribed_people_are_not_resubscribed(workdir: Path) -> None:
    text = " ".join(cli("reactivate", "--help", cwd=workdir).stdout.split())
    assert "--all-suppressed" in text and "--dry-run" in text
    assert "unsubscribed themselves are NOT resubscribed unless --include-unsubscribed" in text


def test_store_reactivate_leaves_an_unsubscribe_alone_in_the_same_statement(
    tmp_path: Path,
) -> None:
    """The status is checked where it is written: an unsubscribe landing between the
    command's read and its write is not undone (only ``unsubscribed_too`` does that)."""
    from newsletter.store import ACTIVE, SUPPRESSED, UNSUBSCRIBED, Store

    with Store(tmp_path / "state.db") as store:
        store.set_subscriber_status("gone@example.org", UNSUBSCRIBED, "one-click")
        assert store.reactivate("gone@example.org", "by the sender") is False
        assert store.subscriber_status("gone@example.org") == (UNSUBSCRIBED, "one-click")
        assert store.reactivate("gone@example.org", "asked", unsubscribed_too=True) is True
        assert store.subscriber_status("gone@example.org") == (ACTIVE, "asked")

        store.set_subscriber_status("bounced@example.org", SUPPRESSED, "550 x3")
        assert store.reactivate("bounced@example.org", "fixed") is True
        assert store.subscriber_status("bounced@example.org")[0] == ACTIVE
        assert store.reactivate("new@example.org") is True  # no row yet: inserted active
        assert store.subscriber_status("new@example.org")[0] == ACTIVE

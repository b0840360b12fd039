"""End to end through the real CLI: a YAML config -> fetch -> select -> render -> outbox.

Runs the installed ``newsletter`` entry point in a subprocess against a real SQLite
file and the real arXiv day in ../shared/data, exactly as a user would.
"""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
from pathlib import Path

import pytest
from cli_support import run_cli

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, env=env)


@pytest.fixture()
def workdir(tmp_path: Path, shared_data: Path) -> Path:
    feed = shared_data / "feeds" / "arxiv_rss_all-archives_2024-11-28.xml"
    (tmp_path / "subscribers.yaml").write_text(
        f"""\
state: var/state.db
sources:
  - name: arxiv-day
    type: arxiv
    url: {feed}
delivery:
  from: "Paper Digest <digest@example.org>"
  transport: outbox
  outbox: outbox/
web:
  base_url: https://digest.example.org
defaults: {{timezone: UTC, schedule: "daily 07:00", max_papers: 5}}
subscribers:
  - email: ada@example.org
    name: Ada
    interests:
      - name: Time series
        description: Deep learning for time series forecasting
        keywords: [time series, forecasting]
  - email: grace@example.org
    name: Grace
    max_papers: 3
    interests:
      - name: Quantum
        description: Quantum error correction and fault-tolerant quantum computing
        keywords: [quantum error correction, surface code, logical qubits]
""",
        encoding="utf-8",
    )
    return tmp_path


def test_fetch_preview_send_twice_sends_once(workdir: Path) -> None:
    fetched = cli("fetch", "--format", "json", cwd=workdir)
    assert fetched.returncode == 0, fetched.stderr
    report = json.loads(fetched.stdout)["sources"][0]
    assert report["name"] == "arxiv-day"
    assert report["new"] == 935

    preview = cli("preview", "--subscriber", "ada@example.org", "--format", "json", cwd=workdir)
    assert preview.returncode == 0, preview.stderr
    digest = json.loads(preview.stdout)
    assert digest["subscriber"] == "ada@example.org"
    assert 1 <= len(digest["papers"]) <= 5
    top = digest["papers"][0]
    assert "forecast" in top["title"].lower() or "time series" in top["title"].lower()
    assert top["reasons"], "every pick says why"
    # preview records nothing: nothing in the outbox, and send still sends.
    assert not (workdir / "outbox").exists()

    sent = cli("send", "--no-fetch", cwd=workdir)
    assert sent.returncode == 0, sent.stderr
    assert "2 sent" in sent.stdout
    emls = sorted((workdir / "outbox").rglob("*.eml"))
    htmls = sorted((workdir / "outbox").rglob("*.html"))
    assert len(emls) == 2 and len(htmls) == 2
    ada = next(p for p in emls if "ada" in p.name)
    msg = email.message_from_bytes(ada.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "Ada <ada@example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    # The email carries the very papers the preview promised, in the same order.
    text = body.get_content()
    for paper in digest["papers"]:
        assert paper["id"] in text

    again = cli("send", "--no-fetch", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "2 already sent" in again.stdout
    assert len(sorted((workdir / "outbox").rglob("*.eml"))) == 2


def test_config_error_is_one_line_and_exit_2(workdir: Path) -> None:
    cfg = workdir / "subscribers.yaml"
    cfg.write_text(cfg.read_text().replace("timezone: UTC", "timezone: Europe/Londn"))
    result = cli("validate", cwd=workdir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("Error: ") for line in lines)
    assert "Europe/London" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_subscriber_is_an_error(workdir: Path) -> None:
    result = cli("preview", "--subscriber", "nobody@example.org", cwd=workdir)
    assert result.returncode == 2  # a bad argument: a usage error
    assert result.stderr.strip() == (
        "Error: Invalid value for --subscriber: no subscriber 'nobody@example.org' in the "
        "config; run 'newsletter validate' to list them (see 'newsletter preview --help')"
    )


def test_commands_that_never_send_run_without_the_smtp_password(workdir: Path) -> None:
    cfg = workdir / "subscribers.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "  transport: outbox\n",
            "  transport: smtp\n  smtp:\n    host: smtp.example.org\n    username: digest\n"
            "    password_env: TEST_UNSET_SMTP_PASSWORD\n",
        )
    )
    env = {"TEST_UNSET_SMTP_PASSWORD": ""}  # set but empty counts as unset
    fetched = cli("fetch", cwd=workdir, env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert "TEST_UNSET_SMTP_PASSWORD is not set" in fetched.stderr
    assert fetched.stderr.count("Warning: ") >= 1
    preview = cli("preview", "--subscriber", "ada@example.org", "--format", "text", cwd=workdir)
    assert preview.returncode == 0, preview.stderr
    assert "Warning: " in preview.stderr and "Error" not in preview.stderr
    status = cli("status", cwd=workdir, env=env)
    assert status.returncode == 0, status.stderr
    # A command that sends still refuses, with the one-line error naming the variable.
    for args in (("send", "--no-fetch"), ("validate",)):
        sent = cli(*args, cwd=workdir, env=env)
        assert sent.returncode == 2, (args, sent.stdout)
        assert "Error: " in sent.stderr and "TEST_UNSET_SMTP_PASSWORD is not set" in sent.stderr
    assert not (workdir / "outbox").exists()


def test_fetch_enable_brings_back_a_source_disabled_by_a_410(workdir: Path) -> None:
    from newsletter.store import Store

    with Store(workdir / "var" / "state.db") as store:
        store.update_fetch_state("arxiv-day", disabled=True, disabled_reason="HTTP 410 Gone")
    skipped = cli("fetch", "--format", "json", cwd=workdir)
    report = json.loads(skipped.stdout)["sources"][0]
    assert report["new"] == 0 and report["disabled"] is True
    assert "newsletter fetch --enable arxiv-day" in " ".join(report["warnings"])
    # The only source fetched nothing: not "ok", and a non-zero exit for cron to see.
    assert skipped.returncode == 1
    assert skipped.stderr.splitlines()[-1] == (
        "Error: no source could be fetched (each failed or is disabled); see the messages above"
    )
    table = cli("fetch", cwd=workdir)
    assert table.returncode == 1
    assert table.stdout.splitlines()[1].endswith("disabled (410 Gone; see the warning)")

    typo = cli("fetch", "--enable", "arxiv-dya", cwd=workdir)
    assert typo.returncode == 2
    assert typo.stderr.count("\n") == 1 and typo.stderr.startswith("Error: ")
    assert "no source named 'arxiv-dya'" in typo.stderr and "arxiv-day" in typo.stderr

    enabled = cli("fetch", "--enable", "arxiv-day", "--format", "json", cwd=workdir)
    assert enabled.returncode == 0, enabled.stderr
    assert json.loads(enabled.stdout)["sources"][0]["new"] == 935
    assert json.loads(enabled.stdout)["sources"][0]["disabled"] is False
    with Store(workdir / "var" / "state.db") as store:
        assert not store.fetch_state("arxiv-day").disabled


def test_a_failed_edition_is_sent_again_only_with_retry_failed(workdir: Path) -> None:
    from newsletter.store import Store

    assert cli("fetch", cwd=workdir).returncode == 0
    sent = cli("send", "--no-fetch", "--subscriber", "grace@example.org", cwd=workdir)
    assert sent.returncode == 0, sent.stderr
    edition = next((workdir / "outbox").iterdir()).name
    with Store(workdir / "var" / "state.db") as store:
        # Ada's edition failed permanently in an earlier run (say, a 550 from the relay).
        store.prepare_delivery("ada@example.org", edition, message_id="m-ada", paper_ids=[])
        store.claim("ada@example.org", edition, worker="earlier run")
        store.mark_failed("ada@example.org", edition, reason="550 no such user", permanent=True)

    skipped = cli("send", "--no-fetch", cwd=workdir)
    # The failed one is reported and not sent; it failed in an earlier run, so exit 0.
    assert skipped.returncode == 0, skipped.stderr
    assert "550 no such user" in skipped.stdout and "--retry-failed" in skipped.stdout
    assert not list((workdir / "outbox").rglob("ada@example.org.eml"))

    retried = cli("send", "--no-fetch", "--retry-failed", cwd=workdir)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "1 sent" in retried.stdout and "1 already sent" in retried.stdout
    assert len(list((workdir / "outbox").rglob("ada@example.org.eml"))) == 1
    assert len(list((workdir / "outbox").rglob("grace@example.org.eml"))) == 1

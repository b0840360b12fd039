"""``newsletter preview`` after ``send``, and where its HTML goes by default.

Through the real CLI in a subprocess, a real SQLite state file, the real quant-ph arXiv
day (read in place) and the outbox transport (what was sent is on disk to compare).
"""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
from pathlib import Path

import pytest
from cli_support import free_port, run_cli, start_cli

from newsletter.store import Store

ME, YOU = "me@example.org", "you@example.org"


def cli(*args: str, cwd: Path, config: str = "subscribers.yaml") -> subprocess.CompletedProcess:
    return run_cli("--config", config, *args, cwd=cwd, text=False)


@pytest.fixture()
def workdir(tmp_path: Path, shared_data: Path) -> Path:
    feed = shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml"
    (tmp_path / "subscribers.yaml").write_text(
        f"""\
state: var/state.db
sources:
  - {{name: quant-ph, type: arxiv, url: {feed}}}
delivery:
  from: "Paper Digest <digest@example.org>"
  transport: outbox
  outbox: outbox/
defaults: {{timezone: UTC, schedule: "daily 07:00", max_papers: 4, lookback_days: 100000}}
subscribers:
  - email: {ME}
    interests: [{{name: Quantum, keywords: [quantum]}}]
  - email: {YOU}
    interests: [{{name: Entanglement, keywords: [entanglement]}}]
""",
        encoding="utf-8",
    )
    assert cli("fetch", cwd=tmp_path).returncode == 0
    return tmp_path


def test_preview_after_send_says_so_and_shows_what_was_sent(workdir: Path) -> None:
    before = json.loads(cli("preview", "-s", ME, "--format", "json", cwd=workdir).stdout)
    sent = cli("send", "--no-fetch", "-s", ME, cwd=workdir)
    assert sent.returncode == 0, sent.stderr
    with Store(workdir / "var" / "state.db") as store:
        row = store.delivery(ME, before["edition"])
    assert row is not None and row.state == "sent" and len(row.paper_ids) == 4
    eml = workdir / "outbox" / before["edition"] / f"{ME}.eml"
    sent_msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)

    after = cli("preview", "-s", ME, "--format", "json", cwd=workdir)
    assert after.returncode == 0
    note = after.stderr.decode().strip().splitlines()
    assert note == [
        f"Note: edition {before['edition']} was already sent to {ME} at "
        f"{row.sent_at:%Y-%m-%d %H:%M} UTC (4 papers, Message-ID <{row.message_id}>); "
        "'send' would send nothing. Showing what was sent, replayed from the stored papers; "
        f"the message sent is {eml}"
    ]
    # The papers that were sent, not a new pick among the papers left over.
    shown = json.loads(after.stdout)
    assert [p["id"] for p in shown["papers"]] == list(row.paper_ids)
    # (scores are computed again among those papers alone, so they may differ a little)
    assert [p["title"] for p in shown["papers"]] == [p["title"] for p in before["papers"]]

    again = cli("preview", "-s", ME, "--format", "eml", cwd=workdir)
    msg = email.message_from_bytes(again.stdout, policy=email.policy.default)
    assert msg["Message-ID"] == sent_msg["Message-ID"] and msg["Subject"] == sent_msg["Subject"]
    assert "already sent" in again.stderr.decode()

    # Someone not sent to yet: no note, the preview is what send would send.
    other = cli("preview", "-s", YOU, "--format", "json", cwd=workdir)
    assert other.returncode == 0 and b"already sent" not in other.stderr


def test_preview_of_a_failed_or_suppressed_edition_says_what_send_would_do(
    workdir: Path,
) -> None:
    edition = json.loads(cli("preview", "-s", YOU, "--format", "json", cwd=workdir).stdout)[
        "edition"
    ]
    with Store(workdir / "var" / "state.db") as store:
        store.prepare_delivery(YOU, edition, message_id="m-you", paper_ids=[])
        store.claim(YOU, edition, worker="earlier run")
        store.mark_failed(YOU, edition, reason="550 no such user", permanent=True)
    failed = cli("preview", "-s", YOU, "--format", "text", cwd=workdir)
    assert failed.stderr.decode().strip() == (
        f"Note: edition {edition} failed for {YOU} (550 no such user): 'send' skips it; "
        "'send --retry-failed' would send what is shown"
    )
    with Store(workdir / "var" / "state.db") as store:
        store.set_subscriber_status(YOU, "suppressed", "3 permanent failures: 550")
    paused = cli("preview", "-s", YOU, "--format", "text", cwd=workdir)
    assert "is suppressed (3 permanent failures: 550): 'send' would send them nothing" in (
        paused.stderr.decode()
    )


def test_default_html_goes_beside_the_config_and_output_stays_relative_to_cwd(
    workdir: Path,
) -> None:
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    result = cli("preview", "-s", ME, cwd=elsewhere, config="../subscribers.yaml")
    assert result.returncode == 0, result.stderr
    (written,) = (workdir / "preview").glob("*.html")
    assert written.name.startswith(ME) and written.read_text().lstrip().startswith("<!")
    assert result.stdout.decode().strip() == str(written)  # outside the cwd: absolute
    assert not (elsewhere / "preview").exists()

    # From the config's own folder the path printed is short, as before.
    here = cli("preview", "-s", ME, cwd=workdir)
    assert here.stdout.decode().strip() == f"preview/{written.name}"

    # An explicit --output is a command-line path: relative to the current folder.
    out = cli(
        "preview", "-s", ME, "--output", "mine.html", cwd=elsewhere, config="../subscribers.yaml"
    )
    assert out.returncode == 0 and (elsewhere / "mine.html").is_file()


def test_preview_serve_shows_the_already_sent_note(workdir: Path) -> None:
    """``preview --serve`` says what plain ``preview`` says, and shows what was sent."""
    import time
    import urllib.request

    assert cli("send", "--no-fetch", "-s", ME, cwd=workdir).returncode == 0
    with Store(workdir / "var" / "state.db") as store:
        (row,) = store.deliveries(subscriber=ME)
    port = free_port()
    args = ["--config", "subscribers.yaml", "preview", "-s", ME, "--serve", str(port)]
    proc = start_cli(*args, cwd=workdir)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        import select

        ready, _, _ = select.select([proc.stdout], [], [], 60)  # never hang the suite
        assert ready, "preview --serve printed nothing within 60 s"
        serving = proc.stdout.readline()  # printed once the server is listening
        assert serving.startswith(f"Serving the preview of {ME} at http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "email.json", timeout=10) as resp:
                    shown = json.loads(resp.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert shown["notice"].startswith(f"edition {row.edition} was already sent to {ME}")
        with urllib.request.urlopen(url, timeout=10) as resp:
            page = resp.read().decode()
        assert '<p class="notice">edition ' in page
        assert "&#x27;send&#x27; would send nothing" in page
        with urllib.request.urlopen(url + "email.txt", timeout=10) as resp:
            text = resp.read().decode()
        with Store(workdir / "var" / "state.db") as store:  # the papers that were sent
            titles = [p.title for pid in row.paper_ids if (p := store.get_paper(pid))]
        flat = " ".join(text.split())  # (titles are wrapped at 78 columns)
        assert len(titles) == 4 and all(" ".join(t.split()) in flat for t in titles)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"Note: edition {row.edition} was already sent to {ME}" in err


def test_preview_of_a_sent_edition_shows_every_sent_paper_after_the_interests_change(
    workdir: Path,
) -> None:
    """A smaller max_papers, a new exclusion or other keywords after the send: the preview
    of the sent edition still lists every paper that was sent (the notice says how many)."""
    assert cli("send", "--no-fetch", "-s", ME, cwd=workdir).returncode == 0
    with Store(workdir / "var" / "state.db") as store:
        (row,) = store.deliveries(subscriber=ME)
        sent = [p for pid in row.paper_ids if (p := store.get_paper(pid))]
    assert len(sent) == 4
    config = workdir / "subscribers.yaml"
    text = config.read_text()
    # Now: at most 2 papers, and a keyword the sent papers do not all have.
    first_word = sent[0].title.split()[0].strip(":,.").lower()
    config.write_text(
        text.replace(
            f"  - email: {ME}\n    interests: [{{name: Quantum, keywords: [quantum]}}]",
            f"  - email: {ME}\n    max_papers: 2\n    exclude: [quantum]\n"
            f"    interests: [{{name: Quantum, keywords: [{first_word}]}}]",
        )
    )
    assert "max_papers: 2" in config.read_text()
    shown = cli("preview", "-s", ME, "--format", "json", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert "(4 papers, Message-ID" in shown.stderr.decode()
    papers = json.loads(shown.stdout)["papers"]
    assert sorted(p["id"] for p in papers) == sorted(row.paper_ids)
    # Those today's interest does not match are listed in a section of their own, with why.
    others = [p for p in papers if p["interest"] == "Also in this edition"]
    assert others and all("matches none of the interests now" in p["reasons"][0] for p in others)
    eml = cli("preview", "-s", ME, "--format", "eml", cwd=workdir).stdout
    msg = email.message_from_bytes(eml, policy=email.policy.default)
    assert msg["Message-ID"] == f"<{row.message_id}>" and "4 papers" in msg["Subject"]

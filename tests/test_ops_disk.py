"""A state on a full disk or in a folder the lock file can not be made in: each says what is
wrong. Real SQLite files, the real CLI in a subprocess, the real arXiv feed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import run_cli

from newsletter.config import SourceConfig
from newsletter.sources import parse_bytes
from newsletter.store import Store

ARXIV_DAY = "arxiv_rss_all-archives_2024-11-28.xml"


def write_config(tmp: Path, feed: Path) -> Path:
    path = tmp / "cfg.yaml"
    path.write_text(
        f"state: {tmp / 'state.db'}\n"
        f"sources:\n  - {{name: arxiv, type: arxiv, url: {feed}}}\n"
        "delivery: {transport: outbox, outbox: outbox/}\n"
        "web: {base_url: https://digest.example.org}\n"
        'defaults: {timezone: UTC, schedule: "daily 07:00"}\n'
        "subscribers:\n  - email: q@example.org\n    interests:\n"
        "      - {name: Quantum, keywords: [quantum, qubits]}\n",
        encoding="utf-8",
    )
    return path


def test_a_full_database_says_so_rather_than_that_a_rollback_failed(
    tmp_path: Path, shared_data: Path
) -> None:
    body = (shared_data / "feeds" / ARXIV_DAY).read_bytes()
    papers = parse_bytes(SourceConfig(name="arxiv", type="arxiv", url="-"), body).papers
    with Store(tmp_path / "state.db") as store:
        # The database may grow by 20 pages only: storing the day fills it. SQLite then
        # rolls the transaction back itself, and a second ROLLBACK used to fail with
        # "cannot rollback - no transaction is active", hiding the cause.
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count={pages + 20}")
        with pytest.raises(Exception, match="database or disk is full"):
            store.upsert_papers(papers)
        assert store.count_papers() == 0  # nothing half-stored
        store._db.execute("PRAGMA max_page_count=1073741823")
        assert store.upsert_papers(papers[:5]) == (5, 0)  # the connection still works


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_send_runs_when_the_lock_holder_can_not_be_written(
    tmp_path: Path, shared_data: Path
) -> None:
    cfg = write_config(tmp_path, shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml")
    # Every write to /dev/full fails with ENOSPC, as on a full disk: the lock (a flock)
    # is taken all the same; the line naming its holder is a courtesy.
    (tmp_path / "state.db.lock").symlink_to("/dev/full")
    proc = run_cli("-c", str(cfg), "send", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "unexpected" not in proc.stderr
    assert "Summary: 1 sent" in proc.stdout


def test_a_lock_file_that_can_not_be_opened_is_one_error_naming_it(
    tmp_path: Path, shared_data: Path
) -> None:
    cfg = write_config(tmp_path, shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml")
    (tmp_path / "state.db.lock").mkdir()  # in the way, as a read-only folder would be
    for args in (("send",), ("run", "--once")):
        proc = run_cli("-c", str(cfg), *args, cwd=tmp_path)
        assert proc.returncode == 1
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"Error: state '{tmp_path / 'state.db'}': cannot open its lock file")
        assert "state.db.lock" in line and "unexpected" not in line

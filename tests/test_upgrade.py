"""Upgrading a state written by the previous release (schema 2): what the one-time
migration to lower-case reader keys keeps, and the stored index terms of papers."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from cli_support import run_cli

from newsletter.models import Paper
from newsletter.selection.text import ANALYSIS_VERSION, analyze_index, decode_analysis
from newsletter.store import SUPPRESSED, UNSUBSCRIBED, Store


def _schema_2_state(path: Path) -> None:
    """A state as the previous release left it: schema 2, no ``papers.terms``, Lin under
    two spellings. "Lin@Example.org" unsubscribed herself; the config's address was then
    edited to "lin@example.org", a new reader to that release, who was mailed again and
    paused after bounces (later than the unsubscribe)."""
    with Store(path):
        pass
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE papers DROP COLUMN terms")
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.executemany(
        "INSERT INTO subscriber_status(subscriber, status, reason, permanent_failures,"
        " updated_at) VALUES (?,?,?,?,?)",
        [
            ("Lin@Example.org", UNSUBSCRIBED, "one-click unsubscribe link", 0, "2026-11-02"),
            ("lin@example.org", SUPPRESSED, "3 permanent failures in a row", 3, "2026-11-09"),
            ("Bob@Example.org", SUPPRESSED, "3 permanent failures in a row", 3, "2026-11-02"),
            ("bob@example.org", UNSUBSCRIBED, "one-click unsubscribe link", 0, "2026-11-01"),
        ],
    )
    db.commit()
    db.close()


def test_an_unsubscribe_under_one_spelling_is_not_turned_into_a_pause(tmp_path: Path) -> None:
    """Merging two spellings kept the later of two non-active rows, so a reader's own
    unsubscribe became a later bounce pause, which ``reactivate --all-suppressed`` lifts:
    mail resumed to someone who had unsubscribed."""
    state = tmp_path / "state.db"
    _schema_2_state(state)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"state: {state}\n"
        "sources:\n  - {name: s, type: arxiv, url: feed.xml}\n"
        "delivery: {transport: outbox, outbox: outbox/}\n"
        "subscribers:\n"
        "  - {email: Lin@Example.org, interests: [{name: Q, keywords: [quantum]}]}\n"
        "  - {email: bob@example.org, interests: [{name: Q, keywords: [quantum]}]}\n",
        encoding="utf-8",
    )
    proc = run_cli("-c", str(cfg), "reactivate", "--all-suppressed", cwd=tmp_path)
    assert "reactivated" not in proc.stdout, proc.stdout
    with Store(state) as s:
        assert s.subscriber_status("lin@example.org") == (
            UNSUBSCRIBED,
            "one-click unsubscribe link",
        )
        assert s.subscriber_status("bob@example.org")[0] == UNSUBSCRIBED
        keys = {r["subscriber"] for r in s._query("SELECT subscriber FROM subscriber_status")}
        assert keys == {"lin@example.org", "bob@example.org"}


def test_terms_made_by_another_analyser_are_replaced_when_the_paper_comes_again(
    tmp_path: Path,
) -> None:
    """Terms whose version is not this analyser's are never used (decode_analysis), and a
    paper fetched again gets terms of this version, as one with none does: else every
    index build re-analyses it after an upgrade that changed the analyser."""
    paper = Paper(
        id="2411.00001",
        title="Quantum error correction",
        abstract="Surface codes for Q-learning agents.",
    )
    with Store(tmp_path / "state.db") as s:
        s.upsert_papers([paper])
        fresh = s._query("SELECT terms FROM papers")[0]["terms"]
        assert fresh.startswith(ANALYSIS_VERSION + ":")
        foreign = "0123456789ab" + fresh[len(ANALYSIS_VERSION) :]
        s._db.execute("UPDATE papers SET terms=?", (foreign,))
        assert decode_analysis(foreign, paper.title, paper.abstract) == (
            analyze_index(paper.title),
            analyze_index(paper.abstract),
        )
        s.upsert_papers([replace(paper)])  # the same paper again, same texts
        assert s._query("SELECT terms FROM papers")[0]["terms"] == fresh

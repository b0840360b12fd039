"""Message-IDs: unique across lists that send as one address, kept for a resend.

The real CLI in a subprocess, real SQLite state files, the outbox transport (the .eml a
reader would get), the real quant-ph arXiv day read in place.
"""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from cli_support import run_cli

from newsletter.store import Store

ME = "me@example.org"


def _config(folder: Path, feed: Path, keyword: str) -> Path:
    folder.mkdir()
    path = folder / "subscribers.yaml"
    path.write_text(
        f"""\
state: state.db
sources: [{{name: quant-ph, type: arxiv, url: {feed}}}]
delivery: {{from: "Digest <digest@example.org>", transport: outbox, outbox: outbox/}}
defaults: {{timezone: UTC, max_papers: 3, lookback_days: 100000}}
subscribers:
  - email: {ME}
    interests: [{{name: Topic, keywords: [{keyword}]}}]
""",
        encoding="utf-8",
    )
    return path


def _sent_id(folder: Path) -> str:
    (eml,) = (folder / "outbox").rglob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    return str(msg["Message-ID"])


@pytest.mark.parametrize("shared_key", [False, True], ids=["own-keys", "one-secret-key"])
def test_two_lists_sending_as_one_address_never_share_a_message_id(
    tmp_path: Path, shared_data: Path, shared_key: bool
) -> None:
    """A provider drops a second message whose Message-ID it already holds: two digests
    from one address to one reader on one day must not share one."""
    feed = shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml"
    # Without the variable each state makes and keeps its own key.
    env = {"NEWSLETTER_SECRET_KEY": "one-key-for-both" if shared_key else ""}
    ids = []
    for name, keyword in (("ml", "quantum"), ("bio", "entanglement")):
        cfg = _config(tmp_path / name, feed, keyword)
        sent = run_cli("--config", str(cfg), "send", cwd=cfg.parent, env=env)
        assert sent.returncode == 0, sent.stderr
        ids.append(_sent_id(cfg.parent))
    assert ids[0] != ids[1]
    assert all(i.endswith("@example.org>") for i in ids)


def test_an_edition_prepared_before_keeps_its_message_id(tmp_path: Path, shared_data: Path) -> None:
    """A pending row (a crash, a relay that was down; or made by an older version) is
    sent with the Message-ID the ledger holds, so the reader's provider can drop a
    copy it already has; preview --format eml shows the same id."""
    feed = shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml"
    cfg = _config(tmp_path / "list", feed, "quantum")
    folder = cfg.parent
    assert run_cli("--config", str(cfg), "fetch", cwd=folder).returncode == 0
    preview = run_cli("--config", str(cfg), "preview", "-s", ME, "--format", "json", cwd=folder)
    assert preview.returncode == 0, preview.stderr
    edition = json.loads(preview.stdout)["edition"]
    with Store(folder / "state.db") as store:
        store.prepare_delivery(ME, edition, message_id="kept.1234@example.org", paper_ids=[])
    shown = run_cli(
        "--config", str(cfg), "preview", "-s", ME, "--format", "eml", cwd=folder, text=False
    )
    msg = email.message_from_bytes(shown.stdout, policy=email.policy.default)
    assert msg["Message-ID"] == "<kept.1234@example.org>"
    sent = run_cli("--config", str(cfg), "send", "--no-fetch", cwd=folder)
    assert sent.returncode == 0, sent.stderr
    assert _sent_id(folder) == "<kept.1234@example.org>"
    with Store(folder / "state.db") as store:
        row = store.delivery(ME, edition)
    assert row is not None and row.state == "sent" and row.message_id == "kept.1234@example.org"

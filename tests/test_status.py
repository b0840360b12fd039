"""``newsletter status``: the effective subscriber (web preferences applied, as the scheduler
sees it) and no next edition for unsubscribed or suppressed subscribers. Through the real
CLI in a subprocess, on a real SQLite state written with the APIs the web app uses."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from cli_support import run_cli

from newsletter.prefs import validate_prefs
from newsletter.store import UNSUBSCRIBED, Store

ADA, LIN, SAM, GONE = "ada@example.org", "lin@example.org", "sam@example.org", "gone@example.org"
KEYS = {"email", "status", "status_reason", "schedule", "timezone", "next_edition", "last_edition"}


def write_config(tmp: Path, emails: tuple[str, ...]) -> Path:
    subs = "".join(
        f"  - email: {e}\n    interests:\n      - {{name: TS, keywords: [time series]}}\n"
        for e in emails
    )
    path = tmp / "cfg.yaml"
    path.write_text(
        f"state: {tmp / 'state.db'}\n"
        f"sources:\n  - {{name: feed, type: arxiv, url: {tmp / 'feed.xml'}}}\n"
        "delivery: {transport: outbox, outbox: outbox/}\n"
        "web: {base_url: https://digest.example.org}\n"
        'defaults: {timezone: Europe/Berlin, schedule: "daily 07:00"}\n'
        f"subscribers:\n{subs}",
        encoding="utf-8",
    )
    return path


def save_prefs(store: Store, email: str, data: dict[str, Any]) -> None:
    """What the web preferences page does on a valid POST: validate, then store."""
    clean, problems = validate_prefs(data)
    assert problems == []
    store.set_prefs(email, clean)


def status(tmp: Path, cfg: Path, *args: str) -> str:
    proc = run_cli("-c", str(cfg), "status", *args, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return str(proc.stdout)


def line_of(out: str, email: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.strip().startswith(email)]
    return line


def test_status_shows_saved_preferences_and_no_next_edition_for_inactive(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, (ADA, LIN, SAM))
    with Store(tmp_path / "state.db") as store:
        save_prefs(store, ADA, {"schedule": "weekdays 06:30"})
        store.set_subscriber_status(LIN, UNSUBSCRIBED, "one-click unsubscribe link")  # as the web
        assert store.count_permanent_failure(SAM, limit=1, reason="550 no such user")

    data = json.loads(status(tmp_path, cfg, "--format", "json"))
    subs = {s["email"]: s for s in data["subscribers"]}
    assert list(subs) == [ADA, LIN, SAM]
    assert all(set(s) == KEYS for s in subs.values())  # every documented key, none renamed

    ada = subs[ADA]
    assert (ada["status"], ada["schedule"], ada["timezone"]) == (
        "active",
        "weekdays 06:30",
        "Europe/Berlin",
    )
    nxt = datetime.fromisoformat(ada["next_edition"])
    assert (nxt.hour, nxt.minute) == (6, 30) and nxt.weekday() < 5
    assert nxt.utcoffset() is not None and nxt.tzinfo is not None
    assert ada["next_edition"].endswith(("+01:00", "+02:00"))  # Berlin, from the YAML

    for email, state in ((LIN, "unsubscribed"), (SAM, "suppressed")):
        assert subs[email]["status"] == state
        assert "next_edition" in subs[email] and subs[email]["next_edition"] is None
    assert subs[LIN]["status_reason"] == "one-click unsubscribe link"
    assert subs[SAM]["schedule"] == "daily 07:00"  # still shown, as configured

    out = status(tmp_path, cfg)
    ada_line = line_of(out, ADA)
    assert f"next {ada['next_edition']}" in ada_line and "T06:30" in ada_line
    assert "T07:00" not in ada_line
    for email, state in ((LIN, "unsubscribed"), (SAM, "suppressed")):
        line = line_of(out, email)
        assert line.split()[1:4] == [state, "next", "-"], line
        assert "T07:00" not in line
    assert [ln for ln in out.splitlines() if ln != ln.rstrip()] == []


def test_status_with_stale_saved_preferences_does_not_crash(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, (ADA, LIN, GONE))
    with Store(tmp_path / "state.db") as store:
        save_prefs(store, GONE, {"schedule": "weekdays 06:30"})
        store.set_subscriber_status(GONE, UNSUBSCRIBED, "one-click unsubscribe link")
        # Stored before a rule changed: no longer valid, so the YAML value applies (as in
        # the scheduler, which must not stop for one reader's stale preferences).
        store.set_prefs(ADA, {"version": 1, "schedule": "every full moon", "max_papers": 0})
        save_prefs(store, LIN, {"schedule": "weekly mon 08:15"})
    cfg = write_config(tmp_path, (ADA, LIN))  # gone@ removed from the YAML

    data = json.loads(status(tmp_path, cfg, "--format", "json"))
    subs = {s["email"]: s for s in data["subscribers"]}
    assert list(subs) == [ADA, LIN]
    assert subs[ADA]["schedule"] == "daily 07:00"
    assert datetime.fromisoformat(subs[ADA]["next_edition"]).hour == 7
    assert subs[LIN]["schedule"] == "weekly mon 08:15"
    lin_next = datetime.fromisoformat(subs[LIN]["next_edition"])
    assert (lin_next.weekday(), lin_next.hour, lin_next.minute) == (0, 8, 15)

    out = status(tmp_path, cfg)
    assert GONE not in out
    assert "T07:00" in line_of(out, ADA) and "T08:15" in line_of(out, LIN)


def test_the_next_edition_is_not_one_already_sent(tmp_path: Path) -> None:
    """After a move west (Tokyo -> Los Angeles), the reader's next local date can be an
    edition already sent from Tokyo: the scheduler skips it (nothing is sent twice), so
    status must not announce it as the next one."""
    from datetime import UTC, timedelta
    from zoneinfo import ZoneInfo

    from newsletter.config import load_config
    from newsletter.schedule import parse_schedule
    from newsletter.status import collect_status

    cfg = write_config(tmp_path, (ADA,))
    config = load_config(cfg)
    now = datetime.now(UTC)
    sched, tz = parse_schedule("daily 07:00"), ZoneInfo("Europe/Berlin")
    first = sched.next(now, tz)
    with Store(tmp_path / "state.db") as store:
        store.prepare_delivery(ADA, sched.edition_key(first), message_id="m", paper_ids=[])
        store.claim(ADA, sched.edition_key(first), worker="w")
        store.mark_sent(ADA, sched.edition_key(first))
        (sub,) = collect_status(config, store, now=now)["subscribers"]
    assert sub["next_edition"] == (first + timedelta(days=1)).isoformat(timespec="minutes")
    out = json.loads(status(tmp_path, cfg, "--format", "json"))
    assert out["subscribers"][0]["next_edition"] == sub["next_edition"]

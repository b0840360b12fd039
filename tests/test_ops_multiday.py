"""Operating over several days: config edits between runs and what ``status`` says after
them. The real CLI in a subprocess, a real SQLite state, the real feeds served over HTTP
with ETags (a conditional GET gets a 304 while the feed is unchanged)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_support import run_cli

QUANT_PH = "arxiv_rss_quant-ph_2025-04-28.xml"  # 81 items: 50 new or cross, 31 replacements


class FeedServer:
    """Serves one real feed file at ``/arxiv`` with a content ETag; records requests."""

    def __init__(self, feed: Path) -> None:
        self.feed = feed
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append(dict(self.headers))
                body = owner.feed.read_bytes()
                tag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == tag:
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", tag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/arxiv"


@pytest.fixture()
def feed_server(shared_data: Path) -> Iterator[FeedServer]:
    server = FeedServer(shared_data / "feeds" / QUANT_PH)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def write_config(tmp: Path, url: str, *, schedule: str, announce: str = "") -> Path:
    path = tmp / "cfg.yaml"
    path.write_text(
        f"state: {tmp / 'state.db'}\n"
        f"sources:\n  - name: arxiv\n    type: arxiv\n    url: {url}\n{announce}"
        "delivery: {transport: outbox, outbox: outbox/}\n"
        "web: {base_url: https://digest.example.org}\n"
        f'defaults: {{timezone: UTC, schedule: "{schedule}"}}\n'
        "subscribers:\n  - email: q@example.org\n    interests:\n"
        "      - {name: Quantum, keywords: [quantum, qubits, entanglement]}\n",
        encoding="utf-8",
    )
    return path


def fetch_json(tmp: Path, cfg: Path) -> dict[str, object]:
    proc = run_cli("-c", str(cfg), "fetch", "--format", "json", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)["sources"]
    return dict(report)


def test_a_changed_announce_types_takes_effect_on_an_unchanged_feed(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    cfg = write_config(tmp_path, feed_server.url, schedule="daily 07:00")
    first = fetch_json(tmp_path, cfg)
    assert (first["new"], first["skipped"]) == (50, 31)  # replacements skipped by default
    assert fetch_json(tmp_path, cfg)["not_modified"] is True  # same feed, same settings: 304

    # The admin now wants replacements too. The feed has not changed since: without
    # dropping the validators the server answers 304 and the 31 wait for a new feed.
    announce = "    announce_types: [new, cross, replace, replace-cross]\n"
    cfg = write_config(tmp_path, feed_server.url, schedule="daily 07:00", announce=announce)
    third = fetch_json(tmp_path, cfg)
    assert "If-None-Match" not in feed_server.requests[-1]
    assert (third["not_modified"], third["new"], third["skipped"]) == (False, 31, 0)
    # Fetched under the new settings: conditional GETs again.
    assert fetch_json(tmp_path, cfg)["not_modified"] is True
    assert "If-None-Match" in feed_server.requests[-1]


def test_a_changed_source_is_fetched_by_send_even_when_fresh(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    cfg = write_config(tmp_path, feed_server.url, schedule="daily 07:00")
    fetch_json(tmp_path, cfg)
    asked = len(feed_server.requests)
    proc = run_cli("-c", str(cfg), "send", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(feed_server.requests) == asked  # fresh (scheduler.freshness_minutes): no fetch

    announce = "    announce_types: [new, replace]\n"
    cfg = write_config(tmp_path, feed_server.url, schedule="daily 07:00", announce=announce)
    proc = run_cli("-c", str(cfg), "send", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(feed_server.requests) == asked + 1  # the new settings are applied now
    assert "If-None-Match" not in feed_server.requests[-1]


def test_status_shows_the_latest_edition_after_a_schedule_change(
    tmp_path: Path, shared_data: Path
) -> None:
    feed = shared_data / "feeds" / QUANT_PH
    cfg = write_config(tmp_path, str(feed), schedule="weekly mon 07:00")
    weekly = run_cli("-c", str(cfg), "send", cwd=tmp_path)
    assert weekly.returncode == 0, weekly.stderr
    assert "-W" in weekly.stdout  # an ISO-week edition: "2026-W48"

    # The reader asks for a daily digest: the next edition is keyed by date, and it is
    # the latest one, although "2026-11-30" sorts before "2026-W48" as a string.
    cfg = write_config(tmp_path, str(feed), schedule="daily 07:00")
    daily = run_cli("-c", str(cfg), "send", cwd=tmp_path)
    assert daily.returncode == 0, daily.stderr
    (line,) = [ln for ln in daily.stdout.splitlines() if "q@example.org" in ln]
    edition = line.split()[2]
    assert "-W" not in edition

    proc = run_cli("-c", str(cfg), "status", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (sub,) = json.loads(proc.stdout)["subscribers"]
    assert sub["last_edition"]["edition"] == edition
    text = run_cli("-c", str(cfg), "status", cwd=tmp_path).stdout
    assert f"last {edition} " in text


def test_editing_the_case_of_an_address_keeps_the_reader(tmp_path: Path, shared_data: Path) -> None:
    """Schema 2 keyed a reader by the address as written: "Q@Example.org" edited to
    "q@example.org" was a new reader, who got the week's papers again."""
    feed = shared_data / "feeds" / QUANT_PH
    cfg = write_config(tmp_path, str(feed), schedule="daily 07:00")
    cfg.write_text(cfg.read_text().replace("q@example.org", "Q@Example.org"))
    first = run_cli("-c", str(cfg), "send", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Summary: 1 sent" in first.stdout
    cfg.write_text(cfg.read_text().replace("Q@Example.org", "q@EXAMPLE.org"))
    again = run_cli("-c", str(cfg), "send", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Summary: 0 sent, 1 already sent" in again.stdout
    eml = list((tmp_path / "outbox").rglob("*.eml"))
    assert [p.name for p in eml] == ["q@example.org.eml"]

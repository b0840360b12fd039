"""``send`` stopped with SIGTERM (a service manager, a cron timeout): the messages in
flight are finished, nothing new is handed over, the rest stays pending; the next run
sends it, and nobody gets a copy twice.

The real CLI in a subprocess, a real SQLite state, a real (slow) aiosmtpd relay, the real
quant-ph arXiv day read in place.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from cli_support import run_cli, start_cli
from smtp_support import Faults, SmtpServer

from newsletter.store import PENDING, SENT, Store

READERS = [f"reader{i}@example.org" for i in range(12)]


def test_sigterm_finishes_what_is_in_flight_and_the_next_run_sends_the_rest(
    tmp_path: Path, shared_data: Path
) -> None:
    feed = shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml"
    people = "".join(
        f"  - {{email: {who}, interests: [{{name: Q, keywords: [quantum]}}]}}\n" for who in READERS
    )
    with SmtpServer(faults=Faults(delay_rcpt=0.4)) as relay:  # ~0.4 s a message
        (tmp_path / "cfg.yaml").write_text(
            f"""\
state: state.db
sources: [{{name: q, type: arxiv, url: {feed}}}]
delivery:
  from: "Digest <digest@example.org>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {relay.port}, security: none, connections: 1}}
web: {{base_url: https://digest.example.org}}
defaults: {{timezone: UTC, max_papers: 2, lookback_days: 100000}}
subscribers:
{people}""",
            encoding="utf-8",
        )
        assert run_cli("--config", "cfg.yaml", "fetch", cwd=tmp_path).returncode == 0
        proc = start_cli("--config", "cfg.yaml", "send", "--no-fetch", cwd=tmp_path)
        deadline = time.monotonic() + 30
        while len(relay.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(relay.received) >= 2, "the relay got nothing in 30 s"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (out, err)  # stopped early: counted under "to retry"
        assert "Stopping: finishing the messages in flight" in err
        assert "Error: sending stopped early: stop requested (SIGTERM)" in err
        first = [r.rcpt_tos[0] for r in relay.received]
        assert 2 <= len(first) < len(READERS)
        with Store(tmp_path / "state.db") as store:
            states = {d.subscriber: d.state for d in store.deliveries()}
        # Every message the relay has is recorded sent; nothing is left "sending".
        assert {who for who, state in states.items() if state == SENT} == set(first)
        assert set(states.values()) <= {SENT, PENDING}
        assert f"{len(READERS) - len(first)} to retry" in out

        relay.faults.delay_rcpt = 0.0
        again = run_cli("--config", "cfg.yaml", "send", "--no-fetch", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    got = [r.rcpt_tos[0] for r in relay.received]
    assert sorted(got) == sorted(READERS)  # everyone once, nobody twice

"""The real daemon: ``python -m newsletter --config cfg.yaml run`` against aiosmtpd.

One subscriber's edition was due two minutes ago (the catch-up pass sends it at start),
another's is due at the next minute (the timer sends it). Then: a second ``run`` on the
same state is refused naming the holder; an invalid config edit is logged and ignored,
a valid one is reloaded; SIGTERM exits 0; a restart sends nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from smtp_support import SmtpServer
from test_scheduler import FORECAST, write_feed

pytestmark = pytest.mark.slow

CONFIG = """\
state: state.db
sources:
  - name: sample
    type: arxiv
    url: feed.xml
delivery:
  from: "Paper Digest <digest@example.org>"
  transport: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    security: none
web:
  base_url: https://digest.example.org
scheduler:
  grace_hours: 6
  fetch_schedule: every 60m
subscribers:
  - email: early@example.org
    timezone: UTC
    schedule: "daily {early}"
    interests:
      - name: Forecasting
        keywords: [time series, forecasting]
  - email: timer@example.org
    timezone: Europe/London
    schedule: "{cron}"
    interests:
      - name: Forecasting
        keywords: [time series, forecasting]
"""


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Daemon:
    """``newsletter run`` as a subprocess, its stderr in a file."""

    def __init__(self, cfg: Path, log: Path) -> None:
        self.log = log
        self._err = log.open("wb")
        env = {**os.environ, "NEWSLETTER_CONFIG_POLL": "0.3", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "--config", str(cfg), "run"],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=env,
            cwd=cfg.parent,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, needle: str, timeout: float = 20) -> None:
        wait_for(
            f"{needle!r} in the daemon log:\n{self.text()}",
            lambda: needle in self.text() or self.proc.poll() is not None,
            timeout,
        )
        assert needle in self.text(), f"daemon exited ({self.proc.returncode}):\n{self.text()}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._err.close()
        return rc


def test_daemon_sends_on_time_survives_restart_and_never_doubles(tmp_path: Path):
    now = datetime.now(UTC)
    # The timer's edition: the first whole minute at least 12 s away, as a cron line in
    # London time (so the trigger's time-zone handling is on the path too).
    fire = (now + timedelta(seconds=12)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    local = fire.astimezone(ZoneInfo("Europe/London"))
    early = now - timedelta(minutes=2)
    write_feed(tmp_path / "feed.xml", FORECAST)
    with SmtpServer() as smtp:
        cfg = tmp_path / "cfg.yaml"
        text = CONFIG.format(
            port=smtp.port,
            early=early.strftime("%H:%M"),
            cron=f"{local.minute} {local.hour} * * *",
        )
        cfg.write_text(text, encoding="utf-8")

        first = Daemon(cfg, tmp_path / "first.log")
        try:
            # The catch-up pass at start sends the edition that was due two minutes ago.
            wait_for("the catch-up edition", lambda: len(smtp.messages) >= 1, 30)
            assert [m["To"] for m in smtp.messages] == ["early@example.org"]
            first.wait_log("catch-up: 1 source(s) fetched, 2 new paper(s); 1 edition(s): 1 sent")

            # Only one scheduler per state: the second one names the holder and exits.
            second = subprocess.run(
                [sys.executable, "-m", "newsletter", "--config", str(cfg), "run"],
                capture_output=True,
                text=True,
                timeout=30,
                cwd=tmp_path,
            )
            assert second.returncode != 0
            assert second.stderr.startswith(
                f"Error: state '{tmp_path / 'state.db'}' is in use by newsletter run "
                f"(pid {first.proc.pid} on "
            ), second.stderr
            assert second.stderr.rstrip().endswith(
                "stop that process first, or point --config at another state"
            )

            # A broken edit is logged and ignored; the old config keeps running.
            cfg.write_text(text.replace(f'"daily {early:%H:%M}"', '"dayly 07:00"'), "utf-8")
            first.wait_log("config reload failed, keeping the running config: ")
            reload_line = next(
                ln for ln in first.text().splitlines() if "config reload failed" in ln
            )
            assert "dayly 07:00" in reload_line
            cfg.write_text(text, encoding="utf-8")
            first.wait_log("config reloaded from")

            # The timer fires at the subscriber's local time.
            wait_s = (fire - datetime.now(UTC)).total_seconds() + 30
            wait_for("the timed edition", lambda: len(smtp.messages) >= 2, max(wait_s, 5))
            assert datetime.now(UTC) >= fire
            assert sorted(m["To"] for m in smtp.messages) == [
                "early@example.org",
                "timer@example.org",
            ]
            first.wait_log("1 edition(s): 1 sent")
        finally:
            rc = first.stop()
        log = first.text()
        assert rc == 0, log
        assert "SIGTERM received: taking no new work" in log
        assert log.rstrip().endswith("newsletter run stopped")
        assert f"edition [{local.minute} {local.hour} * * * Europe/London]: " in log
        assert "Traceback" not in log
        # Every log line carries a timestamp.
        for line in log.splitlines():
            datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")

        # Restart: the catch-up pass finds both editions sent; nothing goes twice.
        again = Daemon(cfg, tmp_path / "second.log")
        try:
            again.wait_log("catch-up: ")
            again.wait_log("job edition [")  # scheduled and running
            time.sleep(1)
        finally:
            rc = again.stop(signal.SIGINT)
        assert rc == 0, again.text()
        assert "catch-up: 0 edition(s): 0 sent" in again.text()
        ids = smtp.message_ids()
        assert len(ids) == 2 and len(set(ids)) == 2

    # `newsletter status` shows both editions sent and the next edition times.
    status = subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(cfg), "status", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    last = {s["email"]: s["last_edition"]["state"] for s in data["subscribers"]}
    assert last == {"early@example.org": "sent", "timer@example.org": "sent"}
    assert data["sources"][0]["last_status"] == "ok"

"""SMTP throughput through ``deliver`` into a local aiosmtpd sink (another process).

    .venv/bin/python benchmarks/bench_smtp.py [--n 2000]

Each configuration sends the same N composed digests (~60 KB each) with a fresh
ledger. The baseline, measured in the same run, is one new connection per
message over one connection at a time (what a naive ``smtplib.sendmail`` loop
does); the others reuse connections, with 1, 4 and 8 in parallel. The ledger
writes (claim + mark sent, two SQLite transactions per message) are included.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_compose import sample

from newsletter.config import DeliveryConfig, SmtpConfig
from newsletter.delivery import Composer, SmtpTransport, deliver
from newsletter.models import Subscriber
from newsletter.signing import Links
from newsletter.store import Store

SINK = "aiosmtpd.handlers.Sink"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the aiosmtpd sink did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", SINK],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        rendered = sample()
        composer = Composer(DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>"))
        msgs = [
            composer.compose(
                rendered,
                Subscriber(email=f"reader{i}@example.com"),
                edition="2026-11-29",
                links=Links("https://news.example.org", "k", f"reader{i}@example.com"),
            )
            for i in range(n)
        ]
        runs = [
            ("new connection per message, 1 at a time (baseline)", 1, 1),
            ("reused connection, 1", 1, 1000),
            ("reused connections, 4 in parallel", 4, 1000),
            ("reused connections, 8 in parallel", 8, 1000),
        ]
        print(f"{n} messages of {len(msgs[0].data):,} B to an aiosmtpd sink on loopback")
        base = 0.0
        for label, connections, per_conn in runs:
            cfg = SmtpConfig(
                host="127.0.0.1",
                port=port,
                security="none",
                connections=connections,
                max_per_connection=per_conn,
            )
            with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as store:
                started = time.perf_counter()
                summary = deliver(store, SmtpTransport(cfg), msgs, worker="b", max_failures=3)
                rate = n / (time.perf_counter() - started)
            assert summary.sent == n, summary.lines()
            base = base or rate
            print(f"{label:55s} {rate:7,.0f} msg/s  ({rate / base:.2f}x)")
    finally:
        sink.terminate()
        sink.wait(5)


if __name__ == "__main__":
    main()

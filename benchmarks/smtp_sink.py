"""A local SMTP sink for benchmarks: aiosmtpd that accepts every message, discards it and
counts it. It runs in its own process so that it does not share the benchmark's GIL.

    python benchmarks/smtp_sink.py            # binds 127.0.0.1 on port 0

It prints ``port <N>`` once it listens; on SIGTERM (or SIGINT) it prints
``messages <count> bytes <total>`` and exits. ``Sink`` wraps that for a benchmark::

    with Sink() as sink:
        ...send to 127.0.0.1:sink.port...
    sink.messages  # counted by the server
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any

from aiosmtpd.smtp import SMTP


class CountingHandler:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.bytes += len(envelope.content or b"")
        return "250 OK"


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    handler = CountingHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.local", data_size_limit=None), host, port
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    server.close()
    print(f"messages {handler.messages} bytes {handler.bytes}", flush=True)


class Sink:
    """Start the sink in a child process; ``messages`` is set when it stops."""

    def __init__(self) -> None:
        self.port = 0
        self.messages = -1
        self.bytes = -1
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sink:
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self._proc.kill()
            raise SystemExit("Error: the SMTP sink did not start (is aiosmtpd installed?)")
        self.port = int(line[1])
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "messages":
                self.messages, self.bytes = int(parts[1]), int(parts[3])


if __name__ == "__main__":
    asyncio.run(serve())

"""Console transport: prints each message (the RFC 5322 text) to stdout."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from ..models import DeliveryResult, OutgoingMessage


class ConsoleTransport:
    name = "console"
    concurrency = 1

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        out = self.stream or sys.stdout
        text = message.data.decode("utf-8", "replace").replace("\r\n", "\n")
        with self._lock:
            out.write(f"From {message.sender or 'newsletter'}\n{text}\n")
            out.flush()
        return DeliveryResult(
            subscriber=message.subscriber,
            edition=message.edition,
            message_id=message.message_id,
            ok=True,
            reply="printed to stdout",
        )

    def close(self) -> None:
        pass

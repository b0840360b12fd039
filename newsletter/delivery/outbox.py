"""Outbox transport: ``<outbox>/<edition>/<subscriber>.eml`` plus ``.html``.

The ``.eml`` file is the exact message an SMTP server would get; the ``.html``
file is its HTML part, to open in a browser. Both are written atomically (a
temporary file in the same folder, then ``os.replace``): a crash never leaves a
half-written message behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from email import policy
from email.parser import BytesParser
from pathlib import Path

from ..models import DeliveryResult, OutgoingMessage
from .engine import TransportUnavailable

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_name(value: str) -> str:
    """A file name for an address or edition: safe characters only, never hidden or
    empty; a short hash is added when characters had to be replaced."""
    cleaned = _UNSAFE.sub("_", value.strip()).strip(".")
    if cleaned != value or not cleaned:
        cleaned = f"{cleaned[:80] or 'x'}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    return cleaned


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def html_part(data: bytes) -> str | None:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    body = msg.get_body(preferencelist=("html",))
    return None if body is None else str(body.get_content())


class OutboxTransport:
    name = "outbox"
    concurrency = 1

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        folder = self.folder / safe_name(message.edition)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TransportUnavailable(
                f"outbox '{folder}': cannot create the folder ({err});"
                " check delivery.outbox and its permissions",
                permanent=True,
            ) from err
        stem = safe_name(message.subscriber.lower())
        eml = folder / f"{stem}.eml"
        html = html_part(message.data)
        if html is not None:
            write_atomic(folder / f"{stem}.html", html.encode("utf-8"))
        write_atomic(eml, message.data)
        return DeliveryResult(
            subscriber=message.subscriber,
            edition=message.edition,
            message_id=message.message_id,
            ok=True,
            reply=f"written to {eml}",
            path=str(eml),
        )

    def close(self) -> None:
        pass

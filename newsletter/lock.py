"""One sender per state: an advisory file lock beside the database.

``newsletter run`` holds it for its lifetime; ``send`` and ``run --once`` hold it
while they work. A second process gets a ``LockError`` naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from .errors import LockError


class StateLock:
    def __init__(self, state_path: Path, *, purpose: str = "newsletter") -> None:
        self.path = Path(f"{state_path}.lock")
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:  # a read-only folder, a full disk, no permission
            raise LockError(
                f"state '{self.path.with_suffix('')}': cannot open its lock file "
                f"'{self.path}' ({err.strerror or err}); check that folder's permissions "
                "and free space"
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockError(
                f"state '{self.path.with_suffix('')}' is in use by {holder}; "
                "stop that process first, or point --config at another state"
            ) from None
        # Who holds it, for the message above: best effort. The lock is the flock; a full
        # disk must not turn it into a crash (the state's own error says what is wrong).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{self.purpose} (pid {os.getpid()} on {socket.gethostname()})".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

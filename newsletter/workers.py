"""Work fanned out to forked worker processes, results handed back in order.

Selecting, rendering and composing one subscriber's edition is pure CPU work in
Python, so threads do not run it in parallel; processes do. ``FanOut`` forks its
workers at construction, before the caller starts any thread of its own (the send
path starts its SMTP threads afterwards), so a child never inherits a lock another
thread held. Each worker inherits everything built before the fork (the selection
index, the compiled templates, the signing key) instead of rebuilding it, takes the
units ``k, k + n, k + 2n, ...``, and streams each unit's pickled result through its
own pipe. The parent reads unit 0 from worker 0, unit 1 from worker 1, and so on:
results come back in the order of ``units``, and a worker is at most one unit ahead
of the reader (the pipe's back-pressure), so memory stays flat.

The transport is a plain pipe, enlarged to 1 MiB where Linux allows it, carrying an
8-byte length and the pickle; the parent reads each result straight into a buffer it
keeps for that worker (grown when a result is bigger; a fresh one per result would be
zero-filled and page-faulted in every time), and unpickles from a view of it. A unit's
result is tens of MB of messages: this costs the parent a third
of the CPU of ``multiprocessing.Connection`` (64 KiB reads gathered in a BytesIO),
which on 2 cores the workers need (benchmarks/bench_pipeline.py).

An exception raised by ``work`` is raised again in the parent (unpicklable ones as
``WorkerError`` with the original's type and message); a worker that dies is a
``WorkerError`` naming it and its exit code. Closing the iterator (or leaving the
``with`` block) terminates the workers.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from io import FileIO
from typing import Any, Generic, TypeVar

from .errors import NewsletterError

U = TypeVar("U")
R = TypeVar("R")
C = TypeVar("C")

MAX_AUTO_WORKERS = 4
STOPPED = "the workers were stopped (close() was called) before every result was read"
PIPE_SIZE = 1 << 20  # bytes; /proc/sys/fs/pipe-max-size is 1 MiB by default
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (named in the module from Python 3.10, Linux)
_HEADER = struct.Struct("<Q")


class WorkerError(NewsletterError, RuntimeError):
    """A worker process failed or died."""


def can_fork() -> bool:
    """Forked workers are used on Linux only (macOS system libraries are not fork-safe)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def auto_workers() -> int:
    """One worker per usable CPU, at most ``MAX_AUTO_WORKERS``; 1 where fork is not used."""
    return max(1, min(cpu_count(), MAX_AUTO_WORKERS)) if can_fork() else 1


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling, else a WorkerError carrying its type and text."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return WorkerError(f"{type(err).__name__}: {err}")


def _pipe() -> tuple[int, int]:
    """A pipe (read fd, write fd), its buffer enlarged where the system allows it."""
    read_fd, write_fd = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, OSError):  # an older kernel or a lower limit: the default works
        pass
    return read_fd, write_fd


_PR_SET_PDEATHSIG = 1  # prctl(2) option: a signal for this process when its parent dies


def _die_with(parent: int) -> None:
    """Have the kernel kill this (worker) process when its parent dies, as a SIGKILL of
    ``send`` would leave it running on its own otherwise (until its next write fails).
    Linux only; elsewhere (or if prctl is unavailable) nothing happens."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not glibc/Linux
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _write_all(out: FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[out.write(view) or 0 :]


def _read_exactly(src: FileIO, size: int, buf: bytearray | None = None) -> memoryview:
    """``size`` bytes from ``src``, read into ``buf`` (grown to ``size`` if smaller; a
    new buffer if None) and returned as a view of it; EOFError if ``src`` ends first."""
    if buf is None:
        buf = bytearray(size)
    elif len(buf) < size:
        buf.extend(bytes(size - len(buf)))
    view = memoryview(buf)[:size]
    got = 0
    while got < size:
        n = src.readinto(view[got:])
        if not n:
            raise EOFError
        got += n
    return view


class FanOut(Generic[C, U, R]):
    """``work(context, unit)`` for every unit, in ``workers`` forked processes.

    ``init`` runs once in each worker, after the fork, and makes the context its
    ``work`` calls get (a worker's own database connection, say: a connection must
    never cross a fork). ``nice`` raises each worker's nice value by that much (lower
    CPU priority than the parent's).
    """

    def __init__(
        self,
        units: Sequence[U],
        work: Callable[[C, U], R],
        *,
        init: Callable[[], C],
        workers: int,
        nice: int = 0,
    ) -> None:
        if not can_fork():
            raise WorkerError("worker processes need fork (Linux); use workers: 1")
        self._units = units
        self._work = work
        self._init = init
        self._n = max(1, min(workers, len(units)))
        self._nice = nice
        self._procs: list[Any] = []
        self._conns: list[FileIO] = []
        self._parent = os.getpid()
        ctx = multiprocessing.get_context("fork")
        try:
            for k in range(self._n):
                read_fd, write_fd = _pipe()
                reader = FileIO(read_fd, "rb")
                self._conns.append(reader)  # closed by close(), whatever happens next
                try:
                    proc = ctx.Process(
                        target=self._child,
                        args=(k, write_fd, reader),
                        name=f"newsletter-worker-{k + 1}",
                    )
                    proc.daemon = True  # never outlives the parent
                    proc.start()
                finally:
                    os.close(write_fd)  # the child holds the only write end: EOF if it dies
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    # -- in the worker

    def _child(self, k: int, write_fd: int, own_reader: FileIO) -> None:
        # The parent's signal handlers (the daemon's "stop after this batch") are not
        # ours: a worker stops when it is told to, at once.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _die_with(self._parent)
        # Keep no read end of any pipe (ours, or the earlier workers' inherited from the
        # parent): when the parent stops reading, our next write fails and we stop.
        own_reader.close()
        for other in self._conns:
            other.close()
        # Objects inherited from the parent are never collected here: freezing them
        # keeps the collector from walking (and so copying) the parent's whole heap.
        gc.freeze()
        if self._nice > 0:  # background work: sending (and a local relay) go first
            with contextlib.suppress(OSError):
                os.nice(self._nice)
        out = FileIO(write_fd, "wb")

        def send(payload: tuple[bool, Any]) -> None:
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            _write_all(out, _HEADER.pack(len(data)))
            _write_all(out, data)

        try:
            context = self._init()
            for u in range(k, len(self._units), self._n):
                try:
                    payload: tuple[bool, Any] = (True, self._work(context, self._units[u]))
                except BaseException as err:
                    payload = (False, _portable(err))
                send(payload)
                if not payload[0]:
                    return
        except BrokenPipeError:
            pass  # the parent stopped reading: nothing left to do
        except BaseException as err:  # init failed: report it as the next result
            with contextlib.suppress(OSError):
                send((False, _portable(err)))
        finally:
            with contextlib.suppress(OSError):
                out.close()

    # -- in the parent

    def __iter__(self) -> Iterator[R]:
        # One buffer per worker, reused for each of its results (a unit's result is tens
        # of MB: a new buffer each time is zero-filled and page-faulted in again).
        buffers = [bytearray() for _ in range(self._n)]
        try:
            for u in range(len(self._units)):
                k = u % self._n
                if not self._conns:
                    raise WorkerError(STOPPED)
                try:
                    src = self._conns[k]
                    (size,) = _HEADER.unpack(_read_exactly(src, _HEADER.size))
                    data = _read_exactly(src, size, buffers[k])
                except (EOFError, OSError, ValueError):  # ValueError: closed meanwhile
                    if not self._procs:
                        raise WorkerError(STOPPED) from None
                    proc = self._procs[k]
                    proc.join(timeout=5)
                    raise WorkerError(
                        f"worker {k + 1} of {self._n} stopped (exit code {proc.exitcode}) "
                        f"before finishing its share (unit {u + 1} of {len(self._units)}); "
                        "nothing it made was used. Check memory limits, or set "
                        "delivery.workers: 1 to work in one process"
                    ) from None
                try:
                    ok, value = pickle.loads(data)
                finally:
                    data.release()  # (the buffer can grow again for the next result)
                if not ok:
                    raise value
                yield value
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers (if still running) and release the pipes."""
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():  # ignored SIGTERM: not ours to wait for
                proc.kill()
                proc.join(timeout=5)
        self._conns, self._procs = [], []

    def __enter__(self) -> FanOut[C, U, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

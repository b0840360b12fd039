"""Ledger cost per message in ``deliver``: the one-statement claim vs the four-step checks.

    .venv/bin/python benchmarks/bench_ledger.py [--n 5000]

Both run on a real SQLite state file (WAL, as in production) with ``n`` pending rows
prepared beforehand, one message at a time as a delivery worker does:

- baseline (before issue 8): ``subscriber_status`` read, ``delivery`` row read, ``claim``
  (a transaction), then ``mark_sent`` (a transaction): four round trips;
- now: ``claim_active`` (the status check inside the claim's UPDATE: one transaction),
  then ``mark_sent``: two round trips.

The claim and ``mark_sent`` are timed apart: ``mark_sent`` is the same in both and is a
durable (fsynced) commit, whose cost depends on the disk.

Then ``mark_sent`` from 8 threads at once, as 8 SMTP connections call it when the relay
answers faster than the disk syncs: the group commit (marks that queue up while one
transaction syncs are written together) against one synced transaction per mark, as
before it (the same ``_write_marks`` with one mark, serialised by the store's lock).

Each variant gets a fresh copy of the same prepared state. Prints microseconds per
message and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.store import ACTIVE, PENDING, SENT, Store, _SentMark, ts, utcnow


def prepared(folder: Path, n: int) -> Path:
    path = folder / "template.db"
    with Store(path) as store:
        store.prepare_deliveries(
            (f"reader{i}@example.org", "2024-11-28", f"m{i}@x", [f"p{i % 97}", "p2"], None)
            for i in range(n)
        )
        for i in range(0, n, 50):  # a few subscribers with a status row, as in real states
            store.set_subscriber_status(f"reader{i}@example.org", ACTIVE)
    return path


def four_steps(store: Store, who: str, edition: str) -> None:
    status, _ = store.subscriber_status(who)
    row = store.delivery(who, edition)
    assert status == ACTIVE and row is not None and row.state == PENDING
    assert store.claim(who, edition, worker="bench") is not None


def one_statement(store: Store, who: str, edition: str) -> None:
    assert store.claim_active(who, edition, worker="bench") is not None


def run(template: Path, folder: Path, name: str, claim, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Seconds per message: (checks + claim, mark_sent)."""
    path = folder / f"{name}.db"
    shutil.copyfile(template, path)
    claiming = marking = 0.0
    with Store(path) as store:
        for i in range(n):
            who = f"reader{i}@example.org"
            t0 = time.perf_counter()
            claim(store, who, "2024-11-28")
            t1 = time.perf_counter()
            store.mark_sent(who, "2024-11-28", reply="250 ok")
            t2 = time.perf_counter()
            claiming += t1 - t0
            marking += t2 - t1
    return claiming / n, marking / n


def one_per_mark(store: Store, who: str, edition: str) -> None:
    """``mark_sent`` as it was before the group commit: one synced transaction each."""
    mark = _SentMark(who, edition, "250 ok", ts(utcnow()) or "")
    store._write_marks([mark])
    if mark.error is not None:
        raise mark.error


def grouped(store: Store, who: str, edition: str) -> None:
    store.mark_sent(who, edition, reply="250 ok")


def threaded(
    template: Path, folder: Path, name: str, mark: Callable[[Store, str, str], None], n: int
) -> float:
    """Seconds per message for ``n`` marks from ``THREADS`` threads (rows claimed first)."""
    path = folder / f"{name}.db"
    shutil.copyfile(template, path)
    with Store(path) as store:
        for i in range(n):
            store.claim_active(f"reader{i}@example.org", "2024-11-28", worker="bench")
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                for i in range(k, n, THREADS):
                    mark(store, f"reader{i}@example.org", "2024-11-28")
            except BaseException as err:  # reported below: a benchmark must not lie
                errors.append(err)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - started
        if errors:
            raise SystemExit(f"Error: {name}: {errors[0]!r}")
        sent = sum(d.state == SENT for d in store.deliveries(edition="2024-11-28"))
        if sent != n:
            raise SystemExit(f"Error: {name}: {sent} of {n} rows marked sent")
    return took / n


THREADS = 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="messages per variant")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        template = prepared(folder, args.n)
        base, base_mark = run(template, folder, "four", four_steps, args.n)
        ours, ours_mark = run(template, folder, "one", one_statement, args.n)
        single = threaded(template, folder, "single", one_per_mark, args.n)
        group = threaded(template, folder, "group", grouped, args.n)
    print(f"ledger per message in deliver, {args.n} messages, SQLite WAL file, one thread")
    print(f"  baseline: status + row reads + claim: {base * 1e6:6.0f} us/message")
    print(f"  claim_active (one statement):         {ours * 1e6:6.0f} us/message")
    print(f"  speed-up of the claim: {base / ours:.2f}x")
    print(
        f"  mark_sent (durable commit, both): {base_mark * 1e6:.0f} / {ours_mark * 1e6:.0f}"
        " us/message"
    )
    print(f"  mark_sent from {THREADS} threads at once:")
    print(f"    baseline: one synced transaction per mark: {single * 1e6:6.0f} us/message")
    print(f"    group commit:                              {group * 1e6:6.0f} us/message")
    print(f"    speed-up: {single / group:.2f}x")


if __name__ == "__main__":
    main()

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

Each variant gets a fresh copy of the same prepared state. Prints microseconds per
message and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from newsletter.store import ACTIVE, PENDING, Store


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="messages per variant")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        template = prepared(folder, args.n)
        base, base_mark = run(template, folder, "four", four_steps, args.n)
        ours, ours_mark = run(template, folder, "one", one_statement, args.n)
    print(f"ledger per message in deliver, {args.n} messages, SQLite WAL file, one thread")
    print(f"  baseline: status + row reads + claim: {base * 1e6:6.0f} us/message")
    print(f"  claim_active (one statement):         {ours * 1e6:6.0f} us/message")
    print(f"  speed-up of the claim: {base / ours:.2f}x")
    print(
        f"  mark_sent (durable commit, both): {base_mark * 1e6:.0f} / {ours_mark * 1e6:.0f}"
        " us/message"
    )


if __name__ == "__main__":
    main()

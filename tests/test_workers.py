"""Forked workers: results in order, errors and dead workers surface, the pipeline's
parallel build makes the very bytes the in-process build makes (real SQLite, real outbox)."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter import pipeline as pipeline_mod
from newsletter.config import load_config
from newsletter.errors import ConfigError
from newsletter.models import Paper
from newsletter.pipeline import O_ALREADY, O_EMPTY, O_SENT, Outcome, Pipeline
from newsletter.store import SENT, Store
from newsletter.workers import FanOut, WorkerError, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="forked workers are used on Linux only")


def _square(ctx: int, unit: int) -> tuple[int, int, int]:
    return unit, unit * unit + ctx, os.getpid()


def test_results_come_back_in_unit_order_from_other_processes() -> None:
    units = list(range(23))
    out = list(FanOut(units, _square, init=lambda: 1000, workers=3))
    assert [(u, sq) for u, sq, _ in out] == [(u, u * u + 1000) for u in units]
    pids = {pid for _, _, pid in out}
    assert os.getpid() not in pids
    assert len(pids) == 3  # units k, k+3, ... went to worker k


def _blob(ctx: None, unit: int) -> bytes:
    return bytes([unit % 251]) * (unit * 300_000 % 2_100_000 + unit)


def test_results_of_changing_sizes_come_back_whole() -> None:
    """Each worker's results are read into one buffer it keeps: a result bigger than the
    buffer grows it, a smaller one after a bigger one must not carry the bigger one's tail
    (results from a few bytes to 2 MB, more than the 1 MiB pipe)."""
    units = list(range(14))
    out = list(FanOut(units, _blob, init=lambda: None, workers=2))
    assert out == [_blob(None, u) for u in units]
    assert len({len(b) for b in out}) == len(units)  # (all sizes differ)


class Picky(Exception):
    def __init__(self, unit: int, why: str) -> None:  # two arguments: not picklable as is
        super().__init__(f"unit {unit}: {why}")
        self.unit = unit


def test_an_error_in_a_worker_is_raised_in_the_parent_after_the_earlier_results() -> None:
    def work(ctx: None, unit: int) -> int:
        if unit == 5:
            raise ValueError("unit 5 is bad")
        return unit

    got: list[int] = []
    with pytest.raises(ValueError, match="unit 5 is bad"):
        for value in FanOut(list(range(9)), work, init=lambda: None, workers=2):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]

    def picky(ctx: None, unit: int) -> int:
        raise Picky(unit, "no such thing")

    with pytest.raises(WorkerError, match="Picky: unit 0: no such thing"):
        list(FanOut([0, 1], picky, init=lambda: None, workers=2))


def test_a_worker_that_dies_is_named_with_its_exit_code() -> None:
    def work(ctx: None, unit: int) -> int:
        if unit == 3:
            os._exit(7)  # as if killed: no result, no exception
        return unit

    with pytest.raises(WorkerError, match=r"worker 2 of 2 stopped \(exit code 7\)"):
        list(FanOut(list(range(6)), work, init=lambda: None, workers=2))


def test_closing_early_stops_the_workers() -> None:
    def slow(ctx: None, unit: int) -> int:
        time.sleep(0.05)
        return unit

    fan = FanOut(list(range(200)), slow, init=lambda: None, workers=2)
    procs = list(fan._procs)
    it = iter(fan)
    assert next(it) == 0
    fan.close()
    assert all(not p.is_alive() for p in procs)


def test_a_failing_init_is_reported() -> None:
    def init() -> None:
        raise OSError("no database here")

    with pytest.raises(OSError, match="no database here"):
        list(FanOut([1, 2, 3], _square, init=init, workers=2))  # type: ignore[arg-type]


def test_a_reader_store_reads_but_can_not_write(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        store.upsert_papers([Paper(id="2611.00001", title="A paper")], now=datetime.now(UTC))
    reader = Store.reader(tmp_path / "state.db")
    try:
        got = reader.get_paper("2611.00001")
        assert got is not None and got.title == "A paper"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.upsert_papers([Paper(id="2611.00002", title="B")], now=datetime.now(UTC))
    finally:
        reader.close()


# --------------------------------------------------------------------------- the pipeline

TOPICS = [
    ("Forecasting", "time series forecasting", "cs.LG"),
    ("Galaxies", "galaxy cluster lensing", "astro-ph.CO"),
    ("Proteins", "protein structure prediction", "q-bio.BM"),
    ("Qubits", "superconducting qubit readout", "quant-ph"),
]


def _config(tmp_path: Path, subscribers: int, workers: int) -> Path:
    lines = [
        "state: state.db",
        "sources:",
        "  - {name: local, type: arxiv, url: feed.xml}",
        "delivery:",
        '  from: "Digest <digest@example.org>"',
        "  transport: outbox",
        "  outbox: outbox",
        f"  workers: {workers}",
        "web: {base_url: https://digest.example.org}",
        "subscribers:",
    ]
    for i in range(subscribers):
        name, keywords, _ = TOPICS[i % len(TOPICS)]
        # Every fifth reader asks for something no paper is about: an empty edition.
        keywords = "medieval manuscript palaeography" if i % 5 == 4 else keywords
        lines += [
            f"  - email: reader{i}@example.org",
            f"    name: Reader {i}",
            "    interests:",
            f"      - name: {name}",
            f"        keywords: [{keywords}]",
        ]
    path = tmp_path / "subscribers.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _papers() -> list[Paper]:
    out = []
    for n in range(40):
        _, keywords, cat = TOPICS[n % len(TOPICS)]
        out.append(
            Paper(
                id=f"2611.{n:05d}",
                title=f"{keywords.capitalize()} with method {n}",
                abstract=f"We study {keywords} in setting {n}; Zoë Ångström helped.",
                authors=("Zoë Ångström", f"Author {n}"),
                url=f"https://arxiv.org/abs/2611.{n:05d}",
                categories=(cat,),
            )
        )
    return out


NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_parallel_build_makes_the_same_messages_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_mod, "SELECT_CHUNK", 4)  # 14 readers: 4 units
    config = load_config(_config(tmp_path, 14, workers=1))
    with Store(config.state) as store:
        store.upsert_papers(_papers(), now=NOW - timedelta(hours=2))
        pipe = Pipeline(config, store)
        refs = [pipe.edition_ref(s, now=NOW) for s in pipe.subscribers()]
        alone = list(pipe.build(refs, now=NOW, workers=1))
        forked = list(pipe.build(refs, now=NOW, workers=2))
    assert forked == alone  # every message byte for byte, in the same order
    assert [b.subscriber for b in forked] == [r.subscriber.email for r in refs]
    assert sum(b.message is None for b in forked) == 2  # readers 4 and 9: nothing matched
    assert all(b.message and b.size == len(b.message.data) for b in forked if not b.empty)


def test_send_with_two_workers_sends_each_edition_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_mod, "SELECT_CHUNK", 4)
    config = load_config(_config(tmp_path, 10, workers=2))
    assert config.delivery.workers == 2
    with Store(config.state) as store:
        store.upsert_papers(_papers(), now=NOW - timedelta(hours=2))
        pipe = Pipeline(config, store)
        assert pipe.workers_for(10) == 2
        refs = [pipe.edition_ref(s, now=NOW) for s in pipe.subscribers()]
        dry = pipe.send(refs, now=NOW, dry_run=True)
        assert sorted(o.state for o in dry).count("dry run") == 8
        assert not list((tmp_path / "outbox").glob("*/*.eml"))  # a dry run writes nothing
        first = pipe.send(refs, now=NOW)
        states = {o.subscriber: o.state for o in first}
        assert states["reader4@example.org"] == states["reader9@example.org"] == O_EMPTY
        assert sum(s == O_SENT for s in states.values()) == 8
        emls = sorted((tmp_path / "outbox").glob("*/*.eml"))
        assert len(emls) == 8
        for ref in refs:
            row = store.delivery(ref.subscriber.email, ref.edition)
            assert row is not None
            if states[ref.subscriber.email] == O_SENT:
                assert row.state == SENT and row.paper_ids
        again = pipe.send(refs, now=NOW)
        assert sorted({o.state for o in again}) == [O_ALREADY, O_EMPTY]
        assert len(sorted((tmp_path / "outbox").glob("*/*.eml"))) == 8


def test_auto_workers_stay_in_process_for_small_runs(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 3, workers=0))
    with Store(config.state) as store:
        pipe = Pipeline(config, store)
        assert pipe.workers_for(3) == 1
        assert pipe.workers_for(pipeline_mod.PARALLEL_MIN) >= 1


@pytest.mark.parametrize(("value", "message"), [("-1", "at least 0"), ("two", "whole number")])
def test_workers_must_be_a_whole_number(tmp_path: Path, value: str, message: str) -> None:
    path = _config(tmp_path, 1, workers=0)
    path.write_text(path.read_text().replace("workers: 0", f"workers: {value}"))
    with pytest.raises(ConfigError, match=rf"delivery\.workers.*{message}"):
        load_config(path)


def test_close_stops_workers_even_under_the_daemons_sigterm_handler() -> None:
    import multiprocessing
    import signal

    stops: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stops.append(signum))
    try:

        def work(ctx: None, unit: int) -> bytes:
            return b"x" * 200_000  # bigger than a pipe's buffer: workers block writing

        fan = FanOut(list(range(50)), work, init=lambda: None, workers=2)
        it = iter(fan)
        next(it)
        started = time.monotonic()
        fan.close()
        assert time.monotonic() - started < 4  # not 2 x the 5 s join timeout
        assert not multiprocessing.active_children()
        assert stops == []  # the parent's handler never ran for the workers' SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_failing_progress_callback_stops_the_send_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing
    import threading

    monkeypatch.setattr(pipeline_mod, "SELECT_CHUNK", 8)
    config = load_config(_config(tmp_path, 200, workers=2))
    seen: list[str] = []

    def progress(outcome: Outcome) -> None:
        # The first message sent: the build is still running ahead of the senders.
        seen.append(outcome.state)
        if outcome.state == O_SENT:
            raise RuntimeError("the progress bar broke")

    with Store(config.state) as store:
        store.upsert_papers(_papers(), now=NOW - timedelta(hours=2))
        pipe = Pipeline(config, store)
        refs = [pipe.edition_ref(s, now=NOW) for s in pipe.subscribers()]
        for workers in (1, 2):
            with pytest.raises(RuntimeError, match="the progress bar broke"):
                pipe.send(refs, now=NOW, progress=progress, workers=workers)
            seen.clear()
            assert not [t for t in threading.enumerate() if t.name == "compose-ahead"]
            assert not multiprocessing.active_children()
        # Nothing is left claimed, and a clean run completes every edition once.
        done = pipe.send(refs, now=NOW)
        assert sorted({o.state for o in done}) <= [O_ALREADY, O_EMPTY, O_SENT]
        for ref in refs:
            row = store.delivery(ref.subscriber.email, ref.edition)
            assert row is not None and row.state in ("sent", "empty"), row
        assert len(list((tmp_path / "outbox").glob("*/*.eml"))) == 160


def test_semantic_selection_always_builds_in_one_process(tmp_path: Path) -> None:
    from dataclasses import replace

    from newsletter.config import SelectionConfig

    config = load_config(_config(tmp_path, 3, workers=2))
    semantic = replace(config, selection=SelectionConfig(semantic=True))
    with Store(config.state) as store:
        assert Pipeline(config, store).workers_for(5000) == 2
        pipe = Pipeline(semantic, store)
        assert pipe.workers_for(5000) == 1  # torch's threads do not survive a fork
        assert pipe.workers_for(5000, wanted=4) == 1


def _niceness(_: None, unit: int) -> int:
    return os.nice(0)


def test_workers_run_at_a_lower_priority_when_asked() -> None:
    """``nice`` is added to each worker's nice value; the parent keeps its own."""
    before = os.nice(0)
    assert (
        list(FanOut([0, 1], _niceness, init=lambda: None, workers=2, nice=5))
        == [min(before + 5, 19)] * 2
    )
    assert list(FanOut([0], _niceness, init=lambda: None, workers=1)) == [before]
    assert os.nice(0) == before


_ORPHAN_SCRIPT = """
import os, sys, time
from newsletter.workers import FanOut

def work(ctx, unit):
    os.write(1, f"{os.getpid()}\\n".encode())  # the worker's pid: one write, whole
    time.sleep(30)
    return unit

fan = FanOut([0, 1], work, init=lambda: None, workers=2)
next(iter(fan))
"""


def test_workers_die_with_a_killed_parent() -> None:
    """A SIGKILL of ``send`` (a timeout in cron or systemd, the OOM killer) must not leave
    its build workers running on their own."""
    import signal
    import subprocess
    import sys

    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert parent.stdout is not None
        lines = [parent.stdout.readline() for _ in range(2)]
    finally:
        parent.send_signal(signal.SIGKILL)
        _, err = parent.communicate(timeout=10)
    assert all(line.strip().isdigit() for line in lines), (lines, err)  # the workers' pids
    workers = {int(line) for line in lines}
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False

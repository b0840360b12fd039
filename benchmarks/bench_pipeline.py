"""End-to-end pipeline benchmarks: select + render + compose, select at scale, send through
SMTP against the raw smtplib ceiling, and peak memory of a 100,000-subscriber dry run.

    .venv/bin/python benchmarks/bench_pipeline.py [--quick] [--subscribers 10000] ...

Inputs (``synth.py``): the real 1,504-item arXiv day of 2024-11-28 ingested through
``newsletter.sources`` into a temporary SQLite state; synthetic subscribers (fixed
seed) with 1-3 interests from that day's categories and abstract phrases; a
``Config`` built from the dataclasses. Each figure is measured in this run:

- ``compose_per_s``: ``Pipeline.digests`` + ``.render`` + ``.compose`` for every
  subscriber (edition refs made beforehand, not timed);
- ``select_10k_x_1k_s``: ``Selector`` over the first 1,000 papers (index) +
  ``select_many`` for all subscribers;
- ``send_per_s``: ``Pipeline.send`` (select, render, compose, ledger, SMTP) into a
  counting aiosmtpd sink in another process; ``raw_per_s``: plain ``smtplib`` sending
  pre-built messages (the same bytes ``compose`` makes for the first subscribers,
  cycled) over the same number of connections, into a fresh sink; both counted by
  the sink;
- ``peak_rss_mb_100k``: a child process runs ``Pipeline.send(dry_run=True)`` for
  100,000 subscribers; its peak RSS is read with
  ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` by a small probe process that
  has no other children.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from smtp_sink import Sink  # noqa: E402
from synth import DATA, bench_config, ingest_day, make_subscribers  # noqa: E402

from newsletter.config import Config, SelectionConfig  # noqa: E402
from newsletter.models import Digest, OutgoingMessage, Subscriber  # noqa: E402
from newsletter.pipeline import O_EMPTY, O_SENT, Pipeline  # noqa: E402
from newsletter.selection import Selector  # noqa: E402
from newsletter.store import Store  # noqa: E402

# The edition is sent at noon UTC; the day was stored six hours before.
NOW = datetime(2024, 11, 28, 12, 0, tzinfo=UTC)
STORED = NOW - timedelta(hours=6)


@dataclass
class Env:
    """The ingested day (a template state file) and the synthetic subscribers."""

    folder: Path
    template: Path
    papers: int
    ingest_s: float
    subscribers: list[Subscriber] = field(default_factory=list)
    runs: int = 0

    @classmethod
    def make(cls, data: Path, n: int, folder: Path) -> Env:
        template = folder / "template.db"
        papers, ingest_s = ingest_day(data, template, now=STORED)
        with Store(template) as store:
            subs = make_subscribers(store.papers(), n)
        return cls(folder, template, papers, ingest_s, subs)

    def fresh_state(self) -> Path:
        """A copy of the ingested state with an empty ledger."""
        self.runs += 1
        path = self.folder / f"run{self.runs}.db"
        shutil.copyfile(self.template, path)
        return path

    def config(self, state: Path, subs: list[Subscriber], **smtp: Any) -> Config:
        return bench_config(self.folder, state, subs, **smtp)


def log(line: str) -> None:
    print(line, flush=True)


# --------------------------------------------------------------------------- measures


def measure_compose(env: Env, n: int, split_n: int = 2000) -> dict[str, float]:
    """select + render + compose for ``n`` subscribers: ``Pipeline.build`` as ``send``
    runs it (default config: ``delivery.workers`` auto, one process per CPU), the same
    in one process, and a per-stage split of the one-process path on ``split_n``."""
    subs = env.subscribers[:n]
    with Store(env.fresh_state()) as store:
        pipe = Pipeline(env.config(store.path, subs), store)
        pipe.renderer, pipe.composer  # noqa: B018  (compiled once, before timing)
        refs = [pipe.edition_ref(s, now=NOW) for s in subs]
        workers = pipe.workers_for(len(refs))

        def timed(w: int) -> tuple[float, int, int]:
            pipe.forget_selectors()  # each timing builds its own index, as a send does
            started = time.perf_counter()
            size = picks = 0
            for built in pipe.build(refs, now=NOW, workers=w):
                if built.message is not None:
                    size += len(built.message.data)
                    picks += len(built.message.paper_ids)
            return time.perf_counter() - started, size, picks

        total, size, picks = timed(workers)
        one_total, _, _ = timed(1)

        # Per stage, one process, on the first split_n subscribers. The index is timed
        # on its own (``Pipeline.digests`` = ``_plan``, then ``_select`` per unit), so
        # "select" is selection alone.
        pipe.forget_selectors()
        started = time.perf_counter()
        selectors, units = pipe._plan(refs[:split_n])
        index_s = time.perf_counter() - started

        def digests() -> Iterator[Digest]:
            for index, part in units:
                yield from pipe._select(store, selectors[index], part)

        t = {"select": 0.0, "render": 0.0, "compose": 0.0}
        mark = time.perf_counter()
        for digest in digests():
            t1 = time.perf_counter()
            rendered = pipe.render(digest)
            t2 = time.perf_counter()
            pipe.compose(digest, rendered, now=NOW)
            t3 = time.perf_counter()
            t["select"] += t1 - mark
            t["render"] += t2 - t1
            t["compose"] += t3 - t2
            mark = t3
        split = min(n, split_n)
    return {
        "n": n,
        "workers": workers,
        "total_s": total,
        "per_s": n / total,
        "one_process_s": one_total,
        "one_process_per_s": n / one_total,
        "split_n": split,
        "index_s": index_s,
        "select_ms": t["select"] / split * 1000,
        "render_ms": t["render"] / split * 1000,
        "compose_ms": t["compose"] / split * 1000,
        "avg_bytes": size / n,
        "avg_picks": picks / n,
    }


def measure_select(env: Env, n: int, papers: int = 1000) -> dict[str, float]:
    """Index the first ``papers`` stored papers and select for ``n`` subscribers."""
    with Store(env.template) as store:
        candidates = store.papers()[:papers]
    subs = env.subscribers[:n]
    started = time.perf_counter()
    selector = Selector(candidates, SelectionConfig())
    indexed = time.perf_counter()
    digests = selector.select_many(subs, edition="bench", edition_date=NOW.date())
    done = time.perf_counter()
    assert len(digests) == n
    return {
        "papers": len(candidates),
        "n": n,
        "index_s": indexed - started,
        "select_s": done - indexed,
        "total_s": done - started,
    }


def raw_send(
    port: int, messages: list[OutgoingMessage], total: int, connections: int, per_connection: int
) -> float:
    """Plain smtplib: ``total`` sends of pre-built messages over ``connections`` threads."""
    counter = iter(range(total))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        smtp: smtplib.SMTP | None = None
        sent = 0
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", port)
                    smtp.ehlo()
                msg = messages[i % len(messages)]
                smtp.sendmail(msg.sender, [msg.subscriber], msg.data)
                sent += 1
                if sent % per_connection == 0:
                    smtp.quit()
                    smtp = None
            if smtp is not None:
                smtp.quit()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def prebuilt(env: Env, n: int) -> list[OutgoingMessage]:
    """The messages ``compose`` makes for the first ``n`` subscribers (the same bytes)."""
    subs = env.subscribers[:n]
    with Store(env.fresh_state()) as store:
        pipe = Pipeline(env.config(store.path, subs), store)
        refs = [pipe.edition_ref(s, now=NOW) for s in subs]
        return [pipe.compose(d, pipe.render(d), now=NOW) for d in pipe.digests(refs)]


def measure_send(env: Env, n: int, connections: int, distinct: int) -> dict[str, float]:
    per_conn = 1000
    messages = prebuilt(env, min(n, distinct))
    with Sink() as sink:
        raw_s = raw_send(sink.port, messages, n, connections, per_conn)
    if sink.messages != n:
        raise SystemExit(f"Error: raw smtplib: the sink counted {sink.messages} of {n} messages")
    raw_bytes = sink.bytes

    subs = env.subscribers[:n]
    with Sink() as sink, Store(env.fresh_state()) as store:
        config = env.config(
            store.path, subs, port=sink.port, connections=connections, max_per_connection=per_conn
        )
        pipe = Pipeline(config, store)
        refs = [pipe.edition_ref(s, now=NOW) for s in subs]
        started = time.perf_counter()
        outcomes = pipe.send(refs, now=NOW)
        send_s = time.perf_counter() - started
        sent = sum(o.state == O_SENT for o in outcomes)
        empty = sum(o.state == O_EMPTY for o in outcomes)
    if sent + empty != n or sink.messages != sent:
        states: dict[str, int] = {}
        for o in outcomes:
            states[o.state] = states.get(o.state, 0) + 1
        raise SystemExit(
            f"Error: send: {sent} of {n} sent, sink counted {sink.messages}; outcomes {states}"
        )
    return {
        "n": n,
        "connections": connections,
        "distinct_raw_messages": len(messages),
        "raw_s": raw_s,
        "raw_per_s": n / raw_s,
        "raw_avg_bytes": raw_bytes / n,
        "sent": sent,
        "empty": empty,
        "send_s": send_s,
        "send_per_s": sent / send_s,
        "send_avg_bytes": sink.bytes / max(sent, 1),
    }


# ------------------------------------------------------------------------- peak RSS


def rss_child(n: int, data: Path) -> None:
    """Child process: a dry-run send for ``n`` subscribers, nothing else."""
    folder = Path(tempfile.mkdtemp(prefix="bench_rss_"))
    try:
        state = folder / "state.db"
        ingest_day(data, state, now=STORED)
        with Store(state) as store:
            subs = make_subscribers(store.papers(), n)
            pipe = Pipeline(bench_config(folder, state, subs), store)
            refs = [pipe.edition_ref(s, now=NOW) for s in subs]
            outcomes = pipe.send(refs, now=NOW, dry_run=True)
        print(json.dumps({"outcomes": len(outcomes)}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rss_probe(n: int, data: Path) -> None:
    """Probe process: run the child, then print its peak RSS (the probe's only child)."""
    cmd = [sys.executable, __file__, "--rss-child", str(n), "--data", str(data)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"Error: the dry-run child failed: {done.stderr.strip()[-500:]}")
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])["outcomes"]
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"n": n, "outcomes": outcomes, "peak_rss_mb": peak_kb / 1024, "s": elapsed}))


def measure_rss(n: int, data: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--rss-probe", str(n), "--data", str(data)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip() or "Error: the RSS probe failed")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["outcomes"] != n:
        raise SystemExit(f"Error: dry run for {n} gave {result['outcomes']} outcomes")
    return result


# ---------------------------------------------------------------------------- driver


@dataclass
class Sizes:
    compose: int = 10_000
    select: int = 10_000
    send: int = 10_000
    rss: int = 100_000
    connections: int = 8
    distinct: int = 1_000  # distinct pre-built messages cycled by the raw baseline

    @classmethod
    def quick(cls) -> Sizes:
        return cls(compose=200, select=500, send=200, rss=1_000, distinct=100)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def run(sizes: Sizes, data: Path, step: Callable[[str], None] = log) -> dict[str, Any]:
    """Every measurement; returns the figures (also the JSON line's content)."""
    folder = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        env = Env.make(data, max(sizes.compose, sizes.select, sizes.send), folder)
        step(
            f"ingested {env.papers} papers in {env.ingest_s:.2f} s; "
            f"{len(env.subscribers):,} subscribers"
        )
        c = measure_compose(env, sizes.compose)
        step(f"compose: {c['per_s']:,.0f} subscribers/s")
        s = measure_select(env, sizes.select)
        step(f"select: {s['total_s']:.2f} s")
        d = measure_send(env, sizes.send, sizes.connections, sizes.distinct)
        step(f"send: {d['send_per_s']:,.0f} msg/s, raw: {d['raw_per_s']:,.0f} msg/s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    r = measure_rss(sizes.rss, data)
    step(f"dry run {sizes.rss:,}: peak RSS {r['peak_rss_mb']:.0f} MB in {r['s']:.0f} s")
    return {
        "machine": machine(),
        "papers": env.papers,
        "compose": c,
        "select": s,
        "send": d,
        "rss": r,
    }


def table(res: dict[str, Any]) -> str:
    c, s, d, r = res["compose"], res["select"], res["send"], res["rss"]
    m = res["machine"]
    rows = [
        ("figure", "measured", "target", "detail"),
        (
            "compose_per_s",
            f"{c['per_s']:,.0f}/s",
            ">= 5,000",
            f"{c['n']:,} subs x {res['papers']:,} papers, {c['workers']} worker process(es); "
            f"one process {c['one_process_per_s']:,.0f}/s: index {c['index_s']:.2f} s, "
            f"then select {c['select_ms']:.2f} ms, "
            f"render {c['render_ms']:.2f} ms, compose {c['compose_ms']:.2f} ms per subscriber",
        ),
        (
            "select_10k_x_1k_s",
            f"{s['total_s']:.2f} s",
            "<= 2",
            f"{s['n']:,} subs x {s['papers']:,} papers: index {s['index_s']:.2f} s "
            f"+ select_many {s['select_s']:.2f} s",
        ),
        (
            "send_per_s",
            f"{d['send_per_s']:,.0f}/s",
            "",
            f"Pipeline.send, {d['n']:,} subscribers ({d['empty']} empty), "
            f"{d['connections']} connections, "
            f"{d['send_avg_bytes'] / 1000:.0f} KB avg",
        ),
        (
            "raw_per_s",
            f"{d['raw_per_s']:,.0f}/s",
            "(ceiling)",
            f"plain smtplib, same connections, {d['distinct_raw_messages']:,} pre-built msgs "
            "cycled",
        ),
        ("ratio_vs_raw", f"{d['send_per_s'] / d['raw_per_s']:.2f}", ">= 0.8", ""),
        (
            "peak_rss_mb_100k",
            f"{r['peak_rss_mb']:,.0f} MB",
            "< 1,024",
            f"dry-run send for {r['n']:,} subscribers in a child ({r['s']:.0f} s)",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"machine: {m['cpus']} CPUs, Python {m['python']} ({m['platform']}), "
        f"load average {m['load_avg_1m']}"
    ]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(f"{v:<{w}}" for v, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)


def summary(res: dict[str, Any]) -> dict[str, Any]:
    """The JSON line: the issue's keys first, then context."""
    c, s, d, r = res["compose"], res["select"], res["send"], res["rss"]
    return {
        "compose_per_s": round(c["per_s"], 1),
        "compose_workers": c["workers"],
        "compose_one_process_per_s": round(c["one_process_per_s"], 1),
        "select_10k_x_1k_s": round(s["total_s"], 3),
        "send_per_s": round(d["send_per_s"], 1),
        "raw_per_s": round(d["raw_per_s"], 1),
        "ratio_vs_raw": round(d["send_per_s"] / d["raw_per_s"], 3),
        "peak_rss_mb_100k": round(r["peak_rss_mb"], 1),
        "sizes": {"compose": c["n"], "select": s["n"], "send": d["n"], "rss": r["n"]},
        "papers": res["papers"],
        "connections": d["connections"],
        "machine": res["machine"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--subscribers", type=int, help="compose, select and send size")
    ap.add_argument("--rss-subscribers", type=int, help="dry-run size for peak RSS")
    ap.add_argument("--connections", type=int, help="SMTP connections (default 8)")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    ap.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rss-probe", type=int, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.subscribers:
        sizes.compose = sizes.select = sizes.send = args.subscribers
        sizes.distinct = min(sizes.distinct, args.subscribers)
    if args.rss_subscribers:
        sizes.rss = args.rss_subscribers
    if args.connections:
        sizes.connections = args.connections
    return sizes


def check_data(data: Path) -> None:
    if not (data / "feeds").is_dir():
        raise SystemExit(f"Error: no feed data at {data} (pass --data PATH to ../shared/data)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_data(args.data)
    if args.rss_child:
        return rss_child(args.rss_child, args.data)
    if args.rss_probe:
        return rss_probe(args.rss_probe, args.data)
    res = run(sizes_from(args), args.data)
    print(table(res))
    print(json.dumps(summary(res)))


if __name__ == "__main__":
    main()

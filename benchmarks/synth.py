"""Synthetic but realistic benchmark inputs: the real arXiv day in a SQLite store, and
subscribers whose interests come from that day's categories and abstract phrases.

Everything is derived from a fixed seed, so two runs see the same subscribers.

- ``ingest_day(data, state, now=...)``: the 1,504-item arXiv RSS day of 2024-11-28,
  read through ``newsletter.sources.fetch_source`` (the file path as the source URL)
  into a fresh SQLite state. All four announce types are kept, so every item
  is a candidate (1,504; the default ``new, cross`` keeps 935).
- ``make_subscribers(papers, n, seed=...)``: 1-3 interests each. An interest has 2-4
  keywords (word pairs and single words taken from the day's abstracts), and in
  about half the cases one or two real arXiv categories (drawn by how often the
  day uses them); 1 in 5 has a one-sentence description, 1 in 10 an exclusion,
  1 in 20 a followed author.
- ``bench_config(...)``: a ``Config`` built directly from the dataclasses.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from newsletter.config import Config, DeliveryConfig, SmtpConfig, SourceConfig, WebConfig
from newsletter.models import Interest, Paper, Subscriber
from newsletter.store import Store

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DAY_FEED = "feeds/arxiv_rss_all-archives_2024-11-28.xml"
ALL_ANNOUNCE = ("new", "cross", "replace", "replace-cross")

SENTENCES = (
    "Work on {a}, especially {b}.",
    "Methods for {a} applied to {b}.",
    "Theory and experiments about {a}.",
)
# Function words and filler that make poor interests on their own.
_STOP = frozenset(
    """about above after again against also among been being below between both could
    does doing down during each from further have having here into itself more most
    only other over same should some such than that their them then there these they
    this those through under until very were what when where which while with would
    your paper propose proposed show shows results using based approach method methods
    novel new work study present framework model models data task tasks however while
    well various existing further first second third across within without""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{3,}")


def source_config(data: Path = DATA) -> SourceConfig:
    return SourceConfig(
        name="arxiv-day", type="arxiv", url=str(data / DAY_FEED), announce_types=ALL_ANNOUNCE
    )


def ingest_day(data: Path, state: Path, *, now: datetime) -> tuple[int, float]:
    """Ingest the arXiv day into ``state``; return (papers stored, seconds)."""
    import time

    from newsletter.sources import fetch_source

    started = time.perf_counter()
    with Store(state) as store:
        report = fetch_source(source_config(data), store, now=now)
        if report.errors:
            raise SystemExit(f"Error: ingesting {DAY_FEED}: {report.errors[0]}")
        return store.count_papers(), time.perf_counter() - started


def vocabulary(papers: Sequence[Paper]) -> tuple[list[str], list[str], list[int], list[str]]:
    """(phrases, categories, category weights, authors) of a day of papers."""
    phrases: list[str] = []
    for p in papers:
        words = [w.lower() for w in _WORD.findall(p.abstract)]
        words = [w for w in words if w not in _STOP]
        phrases += [f"{words[i]} {words[i + 1]}" for i in range(0, len(words) - 1, 5)]
        phrases += words[::7]
    counts = Counter(c for p in papers for c in p.categories)
    cats = sorted(counts)
    authors = [p.authors[0] for p in papers if p.authors]
    return phrases, cats, [counts[c] for c in cats], authors


def make_subscribers(
    papers: Sequence[Paper], n: int, *, seed: int = 8, start: int = 0
) -> list[Subscriber]:
    """``n`` subscribers with 1-3 interests each, drawn with a fixed seed."""
    rng = random.Random(seed)
    phrases, cats, weights, authors = vocabulary(papers)
    out = []
    for i in range(start, start + n):
        interests = []
        for j in range(rng.randint(1, 3)):
            keywords = tuple(dict.fromkeys(rng.sample(phrases, rng.randint(2, 4))))
            categories = (
                tuple(dict.fromkeys(rng.choices(cats, weights, k=rng.randint(1, 2))))
                if rng.random() < 0.5
                else ()
            )
            desc = ""
            if rng.random() < 0.2:
                desc = rng.choice(SENTENCES).format(a=rng.choice(phrases), b=rng.choice(phrases))
            interests.append(
                Interest(
                    name=f"Topic {j + 1}: {keywords[0]}",
                    description=desc,
                    keywords=keywords,
                    categories=categories,
                    authors=(rng.choice(authors),) if rng.random() < 0.05 else (),
                    exclude=(rng.choice(phrases),) if rng.random() < 0.1 else (),
                )
            )
        out.append(
            Subscriber(
                email=f"reader{i}@example.org",
                name=f"Reader {i}",
                max_papers=rng.choice((5, 10, 10, 15)),
                interests=tuple(interests),
            )
        )
    return out


def bench_config(
    folder: Path,
    state: Path,
    subscribers: Sequence[Subscriber],
    *,
    data: Path = DATA,
    port: int = 25,
    connections: int = 8,
    max_per_connection: int = 1000,
) -> Config:
    """A ``Config`` made from the dataclasses: SMTP (no TLS) to 127.0.0.1:``port``."""
    return Config(
        path=folder / "bench.yaml",
        state=str(state),
        sources=(source_config(data),),
        subscribers=tuple(subscribers),
        delivery=DeliveryConfig(
            from_addr="Paper Digest <digest@news.example.org>",
            transport="smtp",
            smtp=SmtpConfig(
                host="127.0.0.1",
                port=port,
                security="none",
                connections=connections,
                max_per_connection=max_per_connection,
                retries=1,
                backoff=0.1,
            ),
        ),
        web=WebConfig(base_url="https://news.example.org"),
        secret_key="benchmark-secret-key-not-for-production",
    )

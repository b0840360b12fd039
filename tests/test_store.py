"""The state database: papers, the ledger's atomic claims, and subscriber state."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from newsletter.models import Paper
from newsletter.store import (
    ARXIV,
    EMPTY,
    FAILED,
    FEED,
    HF,
    PENDING,
    SCHEMA_VERSION,
    SENDING,
    SENT,
    Store,
)


def paper(pid: str, **kw) -> Paper:
    return Paper(id=pid, title=f"Title {pid}", **kw)


def test_upsert_counts_new_and_duplicates_and_keeps_first_seen(store: Store) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    assert store.upsert_papers([paper("2411.00001", version=1), paper("2411.00002")], now=t0) == (
        2,
        0,
    )
    later = t0 + timedelta(days=1)
    new, dup = store.upsert_papers(
        [paper("2411.00001", version=2, signals={"upvotes": 5}, source="hf")], now=later
    )
    assert (new, dup) == (0, 1)
    got = store.get_paper("2411.00001")
    assert got is not None
    assert got.first_seen == t0
    assert got.version == 2
    assert got.upvotes == 5
    assert [p.id for p in store.papers(since=t0 - timedelta(seconds=1), until=t0)] == [
        "2411.00001",
        "2411.00002",
    ]
    assert store.papers(since=t0) == []


def test_claim_is_atomic_across_threads(store: Store) -> None:
    store.prepare_delivery("a@example.org", "2026-11-29", message_id="m1", paper_ids=["p1"])
    wins: list[str] = []

    def worker(name: str) -> None:
        if store.claim("a@example.org", "2026-11-29", worker=name):
            wins.append(name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    d = store.delivery("a@example.org", "2026-11-29")
    assert d is not None and d.state == SENDING and d.attempts == 1


def test_mark_sent_records_papers_and_prepare_keeps_message_id(store: Store) -> None:
    store.prepare_delivery("a@example.org", "E1", message_id="m1", paper_ids=["p1", "p2"])
    again = store.prepare_delivery("a@example.org", "E1", message_id="m2", paper_ids=["p3"])
    assert again.message_id == "m1" and again.paper_ids == ("p3",)
    assert store.claim("a@example.org", "E1", worker="w")
    store.mark_sent("a@example.org", "E1", reply="250 OK")
    assert store.sent_paper_ids("a@example.org") == {"p3"}
    # A sent row is never reopened by a later prepare.
    after = store.prepare_delivery("a@example.org", "E1", message_id="m3", paper_ids=["p9"])
    assert after.state == SENT and after.paper_ids == ("p3",)
    assert store.claim("a@example.org", "E1", worker="w") is None


def test_failures_and_stale_claims(store: Store) -> None:
    store.prepare_delivery("a@example.org", "E1", message_id="m1", paper_ids=[])
    store.claim("a@example.org", "E1", worker="w")
    store.mark_failed("a@example.org", "E1", reason="451 try later", permanent=False)
    assert store.delivery("a@example.org", "E1").state == PENDING  # type: ignore[union-attr]
    store.claim("a@example.org", "E1", worker="w")
    assert store.release_stale_claims() == 1
    store.claim("a@example.org", "E1", worker="w")
    store.mark_failed("a@example.org", "E1", reason="550 no such user", permanent=True)
    assert store.delivery("a@example.org", "E1").state == FAILED  # type: ignore[union-attr]


def test_claims_released_after_crashes_count_as_unknown_outcomes(store: Store) -> None:
    store.prepare_delivery("a@example.org", "E1", message_id="m1", paper_ids=[])
    store.prepare_delivery("b@example.org", "E1", message_id="m2", paper_ids=[])
    store.claim("a@example.org", "E1", worker="w")
    assert store.release_stale_claims(limit=2) == 1  # first crash: sent again
    row = store.delivery("a@example.org", "E1")
    assert row is not None and row.state == PENDING and row.uncertain == 1
    store.claim("a@example.org", "E1", worker="w")
    store.claim("b@example.org", "E1", worker="w")
    assert store.release_stale_claims(limit=2) == 1  # only b goes back
    row = store.delivery("a@example.org", "E1")
    assert row is not None and row.state == FAILED and row.uncertain == 2
    assert row.reason and "stopped while this message was with the server, 2 times" in row.reason
    assert "send --retry-failed" in row.reason
    b = store.delivery("b@example.org", "E1")
    assert b is not None and b.state == PENDING and b.uncertain == 1
    store.reset_failed("a@example.org", "E1")
    row = store.delivery("a@example.org", "E1")
    assert row is not None and row.state == PENDING and row.uncertain == 0


def test_empty_edition_recorded_and_reopened_when_papers_arrive(store: Store) -> None:
    store.record_empty("a@example.org", "E1", "no new papers since the last edition")
    d = store.delivery("a@example.org", "E1")
    assert d is not None and d.state == EMPTY and d.reason and "no new papers" in d.reason
    d2 = store.prepare_delivery("a@example.org", "E1", message_id="m", paper_ids=["p"])
    assert d2.state == PENDING


def test_suppression_after_repeated_permanent_failures(store: Store) -> None:
    assert not store.count_permanent_failure("b@example.org", limit=2, reason="550")
    assert store.count_permanent_failure("b@example.org", limit=2, reason="550")
    assert store.subscriber_status("b@example.org")[0] == "suppressed"


def test_state_survives_reopen_and_secret_key_is_stable(tmp_path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        key = s.secret_key()
        s.upsert_papers([paper("2411.00001")])
    with Store(f"sqlite:///{path}") as s:
        assert s.secret_key() == key
        assert s.count_papers() == 1


def test_sequence_numbers_follow_commit_order(store: Store) -> None:
    assert store.max_seq() == 0
    store.upsert_papers([paper("2411.00001"), paper("2411.00002")])
    cut = store.max_seq()
    store.upsert_papers([paper("2411.00003"), paper("2411.00001", version=2)])
    assert store.max_seq() == cut + 1  # a duplicate takes no number
    assert [p.id for p in store.papers(until_seq=cut)] == ["2411.00001", "2411.00002"]
    assert [p.id for p in store.papers(since_seq=cut)] == ["2411.00003"]


def test_schema_1_state_is_migrated(tmp_path) -> None:
    path = tmp_path / "old.db"
    with Store(path) as s:
        s.upsert_papers([paper("2411.00001"), paper("2411.00002")])
        s._db.execute("DROP INDEX papers_seq")
        s._db.execute("ALTER TABLE papers DROP COLUMN seq")
        s._db.execute("ALTER TABLE deliveries DROP COLUMN cutoff_seq")
        s._db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    with Store(path) as s:
        assert s.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert s.max_seq() == 2
        s.prepare_delivery("a@example.org", "E1", message_id="m", paper_ids=[], cutoff_seq=2)
        assert s.delivery("a@example.org", "E1").cutoff_seq == 2  # type: ignore[union-attr]


def test_last_sent_orders_by_cutoff_not_by_edition_key(store: Store) -> None:
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    # A weekly edition, then (after a schedule change) a daily one: "2026-W47" sorts
    # after "2026-11-27" as text, but the daily edition is the later one.
    store.record_empty("a@example.org", "2026-W47", "nothing", cutoff=t0)
    store.record_empty("a@example.org", "2026-11-27", "nothing", cutoff=t0 + timedelta(days=7))
    last = store.last_sent("a@example.org", before="2026-11-28")
    assert last is not None and last.edition == "2026-11-27"
    older = store.last_sent("a@example.org", cutoff_before=t0 + timedelta(days=1))
    assert older is not None and older.edition == "2026-W47"


def test_a_pending_edition_that_turns_out_empty_is_recorded_empty(store: Store) -> None:
    store.prepare_delivery("a@example.org", "E1", message_id="m1", paper_ids=["p1"])
    store.record_empty("a@example.org", "E1", "nothing scored above min_score 0.5")
    d = store.delivery("a@example.org", "E1")
    assert d is not None and d.state == EMPTY and d.paper_ids == ()
    # ... but never over a sent one.
    store.prepare_delivery("a@example.org", "E2", message_id="m2", paper_ids=["p2"])
    store.claim("a@example.org", "E2", worker="w")
    store.mark_sent("a@example.org", "E2")
    store.record_empty("a@example.org", "E2", "late")
    assert store.delivery("a@example.org", "E2").state == SENT  # type: ignore[union-attr]


# -- source authority: whose metadata wins when one paper comes from several sources -----


def _meta(store: Store, pid: str) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    got = store.get_paper(pid)
    assert got is not None
    return got.title, got.abstract, got.authors, got.categories


BLOG = Paper(
    id="2411.00001",
    title="Blog title",
    abstract="A blog's much longer abstract, with a link to https://evil.example/login. " * 3,
    authors=("Mallory",),
    categories=("blog",),
    url="https://arxiv.org/abs/2411.00001",
    pdf_url="https://evil.example/p.pdf",
    source="blog",
)
ARXIV_META = Paper(
    id="2411.00001",
    title="arXiv title",
    abstract="The real abstract.",
    authors=("Ada",),
    categories=("cs.LG",),
    url="https://arxiv.org/abs/2411.00001",
    pdf_url="https://arxiv.org/pdf/2411.00001",
    source="arxiv",
)
HF_META = Paper(
    id="2411.00001",
    title="HF title",
    abstract="Hugging Face's copy of the abstract, a little longer.",
    authors=("Ada", "Grace"),
    hf_url="https://huggingface.co/papers/2411.00001",
    source="hf",
    signals={"upvotes": 7},
)
REAL = ("arXiv title", "The real abstract.", ("Ada",), ("cs.LG",))


def test_arxiv_metadata_wins_over_a_feed_whichever_comes_first(tmp_path) -> None:
    for order in ((BLOG, ARXIV_META), (ARXIV_META, BLOG)):
        with Store(tmp_path / f"{order[0].source}.db") as store:
            for p in order:
                store.upsert_papers([p], authority=ARXIV if p is ARXIV_META else FEED)
            assert _meta(store, "2411.00001") == REAL, order[0].source
            got = store.get_paper("2411.00001")
            assert got is not None and got.pdf_url == "https://arxiv.org/pdf/2411.00001"


def test_a_feed_only_fills_what_arxiv_left_empty(store: Store) -> None:
    bare = Paper(id="2411.00001", title="arXiv title", source="arxiv")  # no abstract, ...
    store.upsert_papers([bare], authority=ARXIV)
    store.upsert_papers([BLOG], authority=FEED)
    assert _meta(store, "2411.00001") == ("arXiv title", BLOG.abstract, ("Mallory",), ("blog",))
    # ... but never what arXiv gave (the title; nor the rank: a feed stays a feed).
    store.upsert_papers([replace(BLOG, title="Another blog title")], authority=FEED)
    assert _meta(store, "2411.00001")[0] == "arXiv title"


def test_hugging_face_ranks_between_a_feed_and_arxiv(store: Store) -> None:
    store.upsert_papers([BLOG], authority=FEED)
    store.upsert_papers([HF_META], authority=HF)
    assert _meta(store, "2411.00001") == (
        "HF title",
        HF_META.abstract,
        ("Ada", "Grace"),
        ("blog",),  # HF has no categories: the feed's stay until arXiv's come
    )
    store.upsert_papers([BLOG], authority=FEED)  # a feed again: no change
    assert _meta(store, "2411.00001")[0] == "HF title"
    store.upsert_papers([ARXIV_META], authority=ARXIV)
    assert _meta(store, "2411.00001") == REAL
    store.upsert_papers([HF_META], authority=HF)  # HF after arXiv: signals and links only
    got = store.get_paper("2411.00001")
    assert got is not None and _meta(store, "2411.00001") == REAL
    assert got.upvotes == 7 and got.hf_url == "https://huggingface.co/papers/2411.00001"


def test_equal_authority_merges_as_before(store: Store) -> None:
    """Two feeds: the longer abstract wins, the first title stays, missing fields fill."""
    short = replace(BLOG, title="First", abstract="Short.", authors=(), categories=())
    store.upsert_papers([short], authority=FEED)
    store.upsert_papers([BLOG], authority=FEED)
    assert _meta(store, "2411.00001") == ("First", BLOG.abstract, ("Mallory",), ("blog",))
    store.upsert_papers([replace(BLOG, abstract="Shorter.")], authority=FEED)
    assert _meta(store, "2411.00001")[1] == BLOG.abstract


def test_a_state_from_before_source_authority_is_migrated(tmp_path) -> None:
    path = tmp_path / "old.db"
    planted = "https://evil.example/phish?huggingface.co/papers/2411.00001"
    genuine = replace(HF_META, id="2411.00002", hf_url="https://huggingface.co/papers/2411.00002")
    with Store(path) as s:
        s.upsert_papers([replace(BLOG, hf_url=planted), genuine])
        s._db.execute("ALTER TABLE papers DROP COLUMN authority")
    with Store(path) as s:
        assert s.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert {r["name"] for r in s._query("PRAGMA table_info(papers)")} >= {"authority"}
        old = s.get_paper("2411.00001")
        assert old is not None and old.hf_url is None  # the planted link is gone
        assert s.get_paper("2411.00002").hf_url == genuine.hf_url  # type: ignore[union-attr]
        # Old rows rank as a feed: arXiv's metadata replaces theirs, a feed's does not.
        s.upsert_papers([ARXIV_META], authority=ARXIV)
        assert _meta(s, "2411.00001") == REAL
        s.upsert_papers([BLOG], authority=FEED)
        assert _meta(s, "2411.00001") == REAL
        assert s.count_papers() == 2


# --------------------------------------------------------------------------- index terms


def _fresh(store: Store, paper_id: str) -> bool:
    """Whether the stored terms of ``paper_id`` are this analyser's, for its texts."""
    from newsletter.selection.text import ANALYSIS_VERSION, _checksum

    got = store.get_paper(paper_id)
    assert got is not None and got.terms
    return got.terms.split("\t")[0] == f"{ANALYSIS_VERSION}:{_checksum(got.title, got.abstract)}"


def test_stored_terms_are_the_analysis_of_the_real_arxiv_day(tmp_path, shared_data) -> None:
    """Every paper of the real 1,504-item day is stored with its index terms, and they
    decode to exactly what analysing its title and abstract gives (what Index reads)."""
    from newsletter.config import SourceConfig
    from newsletter.selection.text import analyze_index, decode_analysis
    from newsletter.sources import fetch_source

    day = shared_data / "feeds" / "arxiv_rss_all-archives_2024-11-28.xml"
    source = SourceConfig(
        name="day", type="arxiv", url=str(day), announce_types=("new", "cross", "replace")
    )
    with Store(tmp_path / "s.db") as s:
        fetch_source(source, s, now=datetime(2024, 11, 28, 6, tzinfo=UTC))
        papers = s.papers()
    assert len(papers) > 1000
    compounds = 0
    for p in papers:
        assert p.terms is not None, p.id
        want = (analyze_index(p.title), analyze_index(p.abstract))
        assert decode_analysis(p.terms, p.title, p.abstract) == want, p.id
        compounds += bool(want[1][1])
    assert compounds > 50  # (the day has many "Q-learning"-like compounds to round-trip)


def test_terms_of_other_texts_or_another_analyser_are_not_used() -> None:
    from newsletter.selection.text import analyze_index, decode_analysis, encode_analysis

    terms = encode_analysis("Deep Q-learning", "We study k-NN graphs.")
    other = ("Time series", "Forecasting GPT-4 outputs.")
    # Stale terms (the paper's texts changed since; a Paper copied with replace()):
    assert decode_analysis(terms, *other) == tuple(map(analyze_index, other))
    # Terms from another version of the analyser: the version is part of the check.
    version, _, rest = terms.partition(":")
    changed = "0" * len(version) + ":" + rest
    texts = ("Deep Q-learning", "We study k-NN graphs.")
    assert decode_analysis(changed, *texts) == tuple(map(analyze_index, texts))
    assert decode_analysis(terms.replace("qlearn", "planted"), *texts) != decode_analysis(
        terms, *texts
    )  # (the stored terms are what is read when they check out)


def test_a_merge_that_changes_the_texts_stores_new_terms(store: Store) -> None:
    store.upsert_papers([BLOG], authority=FEED)
    assert _fresh(store, "2411.00001")
    store.upsert_papers([ARXIV_META], authority=ARXIV)  # arXiv's title and abstract win
    assert _meta(store, "2411.00001")[:2] == ("arXiv title", "The real abstract.")
    assert _fresh(store, "2411.00001")
    store.upsert_papers([replace(BLOG, title="Another")], authority=FEED)  # no change
    assert _fresh(store, "2411.00001")


def test_a_state_from_before_stored_terms_is_migrated_and_indexed_the_same(tmp_path) -> None:
    from newsletter.selection.index import Index

    path = tmp_path / "old.db"
    with Store(path) as s:
        s.upsert_papers([ARXIV_META, replace(BLOG, id="2411.00002")])
        with_terms = s.papers()
        s._db.execute("ALTER TABLE papers DROP COLUMN terms")
    with Store(path) as s:
        old = s.papers()
        assert [p.terms for p in old] == [None, None]  # analysed when indexed
        a, b = Index(with_terms), Index(old)
        assert a.vocab == b.vocab and (a.weights != b.weights).nnz == 0
        s.upsert_papers([replace(BLOG, id="2411.00002")])  # a merge fills the column
        assert _fresh(s, "2411.00002")


# --------------------------------------------------------------------------- address case


def test_a_state_keyed_by_mixed_case_addresses_is_migrated_to_lower_case(tmp_path) -> None:
    """Schema 2 kept each reader under the address as configured: editing its case made
    a new reader (a week of papers again, an unsubscribe lost). Schema 3 keys readers in
    lower case; rows under two spellings merge without losing a send or an unsubscribe."""
    path = tmp_path / "old.db"
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with Store(path) as s:
        # Ada under two spellings (her case was edited once): E1 sent as "Ada@...", then
        # prepared again as "ada@..." (the duplicate the bug made); E2 only as "ADA@...".
        s.prepare_delivery("Ada@Example.org", "E1", message_id="m1", paper_ids=["p1"], now=t0)
        s.claim("Ada@Example.org", "E1", worker="w", now=t0)
        s.mark_sent("Ada@Example.org", "E1", now=t0)
        s.prepare_delivery("ada@example.org", "E1", message_id="m1b", paper_ids=["p2"], now=t0)
        s.prepare_delivery("ADA@example.org", "E2", message_id="m2", paper_ids=["p3"], now=t0)
        s.set_subscriber_status("Ada@Example.org", "unsubscribed", "one-click link")
        s.set_subscriber_status("ada@example.org", "active", None)
        s.set_prefs("Ada@Example.org", {"version": 1, "max_papers": 3})
        s.set_feedback("Ada@Example.org", "p1", 1)
        s.set_feedback("Grace@Example.org", "p9", -1)
        s._db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    with Store(path) as s:
        assert s.get_meta("schema_version") == str(SCHEMA_VERSION)
        keys = {
            r["subscriber"]
            for t in ("deliveries", "sent_papers", "feedback", "subscriber_status")
            for r in s._query(f"SELECT subscriber FROM {t}")
        }
        assert keys == {"ada@example.org", "grace@example.org"}
        e1 = s.delivery("ada@example.org", "E1")
        assert e1 is not None and e1.state == SENT and e1.message_id == "m1"  # never resent
        e2 = s.delivery("ada@example.org", "E2")
        assert e2 is not None and e2.state == PENDING
        assert s.subscriber_status("ada@example.org")[0] == "unsubscribed"  # never lost
        assert s.sent_paper_ids("ada@example.org") == {"p1"}
        assert s.get_prefs("ada@example.org") == {"version": 1, "max_papers": 3}
        assert s.feedback("ada@example.org") == {"p1": 1}
        assert s.feedback("grace@example.org") == {"p9": -1}


def test_old_job_runs_are_removed_as_new_ones_are_logged(store: Store) -> None:
    """The daemon logs every job run; with a per-minute schedule that was ~14,000 rows a
    day kept for good. Runs older than JOB_RUNS_KEEP_DAYS go, now and then."""
    from newsletter.store import JOB_RUNS_KEEP_DAYS, JOB_RUNS_PRUNE_EVERY, ts

    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    old = now - timedelta(days=JOB_RUNS_KEEP_DAYS + 1)
    for i in range(JOB_RUNS_PRUNE_EVERY - 1):
        when = old if i < 200 else now - timedelta(days=1)
        store.log_job("edition [* * * * * UTC]", started=when, finished=when, outcome="ok")
    assert store._query("SELECT COUNT(*) AS n FROM job_runs")[0]["n"] == JOB_RUNS_PRUNE_EVERY - 1
    store.log_job("fetch [all]", started=now, finished=now, outcome="ok")  # the 256th
    left = store._query("SELECT started_at FROM job_runs")
    assert len(left) == JOB_RUNS_PRUNE_EVERY - 200
    assert all(r["started_at"] >= ts(now - timedelta(days=1)) for r in left)  # the old went
    assert store.last_job("fetch [all]") is not None

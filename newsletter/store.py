"""The state: papers, fetch state, the delivery ledger, and subscriber state.

SQLite by default, opened from a path or a ``sqlite:///`` URL. Rows never leave
this module: callers get ``Paper`` objects and plain values.

The ledger hands out work by atomic claims (``UPDATE ... WHERE state = 'pending'
... RETURNING``), never by a position kept in one process's memory, so several
workers (or, later, several machines on PostgreSQL) can share it.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import StoreError
from .models import Paper
from .selection.text import ANALYSIS_VERSION, encode_analysis

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS papers (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    abstract TEXT NOT NULL DEFAULT '',
    authors TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    url TEXT NOT NULL DEFAULT '',
    pdf_url TEXT,
    hf_url TEXT,
    doi TEXT,
    version INTEGER,
    announce_type TEXT,
    published TEXT,
    source TEXT NOT NULL DEFAULT '',
    sources TEXT NOT NULL DEFAULT '[]',
    signals TEXT NOT NULL DEFAULT '{}',
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER,
    authority INTEGER NOT NULL DEFAULT 0,
    terms TEXT
);
CREATE INDEX IF NOT EXISTS papers_first_seen ON papers(first_seen);
CREATE TABLE IF NOT EXISTS fetch_state (
    source TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    last_fetch_at TEXT,
    last_success_at TEXT,
    last_status TEXT,
    last_error TEXT,
    last_new INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    subscriber TEXT NOT NULL,
    edition TEXT NOT NULL,
    state TEXT NOT NULL,
    message_id TEXT,
    paper_ids TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    server_reply TEXT,
    claimed_by TEXT,
    claimed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    cutoff TEXT,
    cutoff_seq INTEGER,
    PRIMARY KEY (subscriber, edition)
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state);
CREATE TABLE IF NOT EXISTS sent_papers (
    subscriber TEXT NOT NULL,
    paper_id TEXT NOT NULL,
    edition TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (subscriber, paper_id)
);
CREATE TABLE IF NOT EXISTS subscriber_status (
    subscriber TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    permanent_failures INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriber_prefs (
    subscriber TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    subscriber TEXT NOT NULL,
    paper_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (subscriber, paper_id)
);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    vector BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (model, key)
);
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_started ON job_runs(started_at);
"""

_STATE_RANK = {"empty": 0, "pending": 1, "failed": 2, "sending": 3, "sent": 4}


def _kept_delivery(a: sqlite3.Row, b: sqlite3.Row) -> sqlite3.Row:
    """Of two ledger rows for one reader and edition, the one furthest along (a sent one
    over anything): what is sent is never sent again."""
    return a if _STATE_RANK.get(a["state"], 0) >= _STATE_RANK.get(b["state"], 0) else b


# The reader's own unsubscribe over a pause (``reactivate`` lifts a pause, never an
# unsubscribe, without --include-unsubscribed) over active; an unknown status as a pause.
_STATUS_RANK = {"active": 0, "suppressed": 1, "unsubscribed": 2}


def _kept_status(a: sqlite3.Row, b: sqlite3.Row) -> sqlite3.Row:
    """An unsubscribe over a pause over active (never lost), else the later one."""
    rank_a, rank_b = (_STATUS_RANK.get(r["status"], 1) for r in (a, b))
    if rank_a != rank_b:
        return a if rank_a > rank_b else b
    return a if a["updated_at"] >= b["updated_at"] else b


def _kept_later(column: str) -> Any:
    return lambda a, b: a if (a[column] or "") >= (b[column] or "") else b


def _lowercase_subscribers(db: sqlite3.Connection) -> None:
    """Every subscriber key of the state in lower case. Rows of one reader stored under
    two spellings (its case edited in the config before this) are merged: per edition the
    ledger row furthest along, an unsubscribe over a pause over active, the later preferences
    and votes. Only rows with an upper-case or non-ASCII character are read."""
    tables = (
        ("deliveries", "edition", _kept_delivery),
        ("sent_papers", "paper_id", _kept_later("sent_at")),
        ("feedback", "paper_id", _kept_later("created_at")),
        ("subscriber_status", None, _kept_status),
        ("subscriber_prefs", None, _kept_later("updated_at")),
    )
    for table, rest, keep in tables:
        mixed = db.execute(
            f"SELECT rowid AS rid, * FROM {table}"  # (table names from the tuple above)
            " WHERE subscriber != lower(subscriber) OR subscriber GLOB '*[^ -~]*'"
        ).fetchall()
        for row in mixed:
            target = row["subscriber"].strip().lower()
            if target == row["subscriber"]:
                continue
            where, args = "subscriber=?", [target]
            if rest is not None:
                where += f" AND {rest}=?"
                args.append(row[rest])
            other = db.execute(
                f"SELECT rowid AS rid, * FROM {table} WHERE {where}",
                args,
            ).fetchone()
            if other is not None:
                if keep(row, other) is other:
                    db.execute(f"DELETE FROM {table} WHERE rowid=?", (row["rid"],))
                    continue
                db.execute(f"DELETE FROM {table} WHERE rowid=?", (other["rid"],))
            db.execute(
                f"UPDATE {table} SET subscriber=? WHERE rowid=?",
                (target, row["rid"]),
            )


JOB_RUNS_KEEP_DAYS = 90  # daemon job runs (job_runs) are kept this long
JOB_RUNS_PRUNE_EVERY = 256  # runs between two removals of the older ones

# Source authority (``upsert_papers``): whose metadata wins when sources disagree.
FEED, HF, ARXIV = 0, 1, 2  # a generic feed < Hugging Face's API < arXiv itself

# Delivery states. ``sending`` is a claim: a worker took the row and is talking to
# the server. ``empty`` records an edition with nothing to send, and why.
PENDING, SENDING, SENT, FAILED, EMPTY = "pending", "sending", "sent", "failed", "empty"
ACTIVE, UNSUBSCRIBED, SUPPRESSED = "active", "unsubscribed", "suppressed"


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts(value: datetime | None) -> str | None:
    """A datetime as a sortable UTC ISO string (naive values are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def sqlite_path(url: str) -> Path:
    """The file behind a state setting: a plain path or ``sqlite:///path``."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(
            f"state '{url}': unsupported database '{scheme}'; use a file path or sqlite:///PATH"
        )
    return Path(url)


_PREPARE_SQL = (
    "INSERT INTO deliveries(subscriber, edition, state, message_id, paper_ids,"
    " created_at, updated_at, cutoff, cutoff_seq) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(subscriber, edition) DO UPDATE SET paper_ids=excluded.paper_ids,"
    # a prepare without a cutoff (the delivery engine's) keeps the recorded one
    " cutoff=CASE WHEN ? THEN excluded.cutoff ELSE deliveries.cutoff END,"
    " cutoff_seq=CASE WHEN ? THEN excluded.cutoff_seq ELSE deliveries.cutoff_seq END,"
    " state='pending', message_id=COALESCE(deliveries.message_id, excluded.message_id),"
    " updated_at=excluded.updated_at WHERE deliveries.state IN ('pending', 'empty')"
)


def _prepare_params(
    subscriber: str,
    edition: str,
    message_id: str,
    paper_ids: Sequence[str],
    cutoff: datetime | None,
    now_s: str | None,
    cutoff_seq: int | None = None,
) -> tuple[Any, ...]:
    return (
        subscriber,
        edition,
        PENDING,
        message_id,
        json.dumps(list(paper_ids)),
        now_s,
        now_s,
        ts(cutoff) or now_s,
        cutoff_seq,
        cutoff is not None,
        cutoff is not None,
    )


_IN_CHUNK = 500  # values per ``IN (...)`` list, well under SQLite's variable limit


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class FetchState:
    source: str
    etag: str | None = None
    last_modified: str | None = None
    last_fetch_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: str | None = None  # ok | not_modified | error
    last_error: str | None = None
    last_new: int = 0
    disabled: bool = False
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    subscriber: str
    edition: str
    state: str
    message_id: str | None
    paper_ids: tuple[str, ...]
    attempts: int
    reason: str | None
    server_reply: str | None
    updated_at: datetime | None
    sent_at: datetime | None
    cutoff: datetime | None = None  # papers first seen up to here were considered
    cutoff_seq: int | None = None  # ... and committed up to this sequence number
    uncertain: int = 0  # sends whose outcome was unknown (no reply after DATA)


@dataclass(slots=True)
class _SentMark:
    """One ``mark_sent`` call waiting for its group commit."""

    subscriber: str
    edition: str
    reply: str
    at: str
    done: bool = False
    error: BaseException | None = None


class Store:
    """A connection to the state database. Safe to share between threads."""

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = str(url)
        self.path = sqlite_path(self.url)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.RLock()
            # Group commit of mark_sent (see there): marks waiting for the next sync.
            self._marks: list[_SentMark] = []
            self._marking = False
            self._marks_changed = threading.Condition(threading.Lock())
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            raise StoreError(
                f"state '{self.path}': cannot open the database ({err}); "
                "check the path and its permissions"
            ) from err

    @classmethod
    def reader(cls, url: str | os.PathLike[str]) -> Store:
        """A read-only connection to an existing state: no migration, no writes.

        For worker processes that look things up while their parent writes (a
        connection must never cross a fork, so each worker opens its own). WAL mode
        lets it read while the parent's writes go on.
        """
        self = cls.__new__(cls)
        self.url = str(url)
        self.path = sqlite_path(self.url)
        try:
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.row_factory = sqlite3.Row
        except sqlite3.Error as err:
            raise StoreError(
                f"state '{self.path}': cannot open the database to read ({err}); "
                "check the path and its permissions"
            ) from err
        self._lock = threading.RLock()
        return self

    # -- plumbing ---------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), committed on success.

        ``durable`` syncs the commit to disk (``synchronous=FULL``), so it survives a
        power loss, not only a process crash: used where losing the commit would
        send mail again (marking a message sent). Other commits are crash-safe
        (WAL, ``synchronous=NORMAL``) and much cheaper (~17 us against ~250 us here).
        """
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    # SQLite has rolled back already after some errors (a full disk, an
                    # I/O error): a second ROLLBACK would fail and hide the real error.
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                else:
                    self._db.execute("COMMIT")
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _migrate(self) -> None:
        with self._lock:
            self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self.transaction() as db:
            # Schema 1 -> 2: papers get a commit-order sequence number, ledger rows the
            # sequence number their edition covered (edition windows by commit order).
            cols = {r["name"] for r in db.execute("PRAGMA table_info(papers)")}
            if "seq" not in cols:
                db.execute("ALTER TABLE papers ADD COLUMN seq INTEGER")
                db.execute("UPDATE papers SET seq = rowid")
            if "authority" not in cols:
                # Rows stored before source authority are of unknown provenance: they rank
                # as a generic feed (arXiv's metadata replaces theirs when it comes). Their
                # Hugging Face links were taken from any link that merely contained
                # "huggingface.co/papers/": only the canonical page of the paper is kept.
                db.execute("ALTER TABLE papers ADD COLUMN authority INTEGER NOT NULL DEFAULT 0")
                db.execute(
                    "UPDATE papers SET hf_url = NULL WHERE hf_url IS NOT NULL"
                    " AND hf_url != 'https://huggingface.co/papers/' || id"
                )
            if "terms" not in cols:
                # The index terms of a paper, made when it is stored (Paper.terms); rows
                # stored before have none and are analysed when an index is built.
                db.execute("ALTER TABLE papers ADD COLUMN terms TEXT")
            cols = {r["name"] for r in db.execute("PRAGMA table_info(deliveries)")}
            if "cutoff_seq" not in cols:
                db.execute("ALTER TABLE deliveries ADD COLUMN cutoff_seq INTEGER")
            if "uncertain" not in cols:  # sends with an unknown outcome (mark_uncertain)
                db.execute("ALTER TABLE deliveries ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0")
            db.execute("CREATE INDEX IF NOT EXISTS papers_seq ON papers(seq)")
            stored = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if stored is not None and int(stored["value"]) < 3:
                # Schema 2 -> 3: subscribers are keyed by their address in lower case
                # (models.Subscriber), so that editing its case in the config keeps them.
                _lowercase_subscribers(db)
            db.execute(
                "UPDATE meta SET value=? WHERE key='schema_version' AND CAST(value AS INTEGER) < ?",
                (str(SCHEMA_VERSION), SCHEMA_VERSION),
            )
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row["value"]) > SCHEMA_VERSION:
                raise StoreError(
                    f"state '{self.path}' was written by a newer newsletter "
                    f"(schema {row['value']} > {SCHEMA_VERSION}); upgrade newsletter"
                )

    # -- meta -------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def secret_key(self) -> str:
        """A signing key kept in the state, made on first use.

        Used only when ``NEWSLETTER_SECRET_KEY`` is not set, so that links in the
        demo still verify; production deployments set the environment variable.
        """
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key='secret_key'").fetchone()
            if row:
                return str(row["value"])
            key = secrets.token_urlsafe(32)
            db.execute("INSERT INTO meta(key, value) VALUES ('secret_key', ?)", (key,))
            return key

    # -- embeddings (selection.semantic) ------------------------------------------

    def embeddings(self, model: str, keys: Sequence[str]) -> dict[str, bytes]:
        """Stored vectors (raw float32 bytes) of ``model`` for those of ``keys`` it has."""
        out: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, vector FROM embeddings WHERE model=? AND key IN ({marks})",
                    [model, *part],
                )
                out.update((r["key"], bytes(r["vector"])) for r in rows)
        return out

    def put_embeddings(self, model: str, vectors: dict[str, bytes]) -> None:
        """Keep vectors of ``model`` for later runs (one transaction)."""
        if not vectors:
            return
        now = utcnow().isoformat()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings(model, key, vector, created_at) "
                "VALUES (?, ?, ?, ?)",
                [(model, k, v, now) for k, v in vectors.items()],
            )

    def prune_embeddings(self, before: datetime) -> int:
        """Forget vectors made before ``before``; return how many."""
        with self.transaction() as db:
            cur = db.execute("DELETE FROM embeddings WHERE created_at < ?", (before.isoformat(),))
            return cur.rowcount

    # -- papers -----------------------------------------------------------------

    def upsert_papers(
        self, papers: Iterable[Paper], *, now: datetime | None = None, authority: int = FEED
    ) -> tuple[int, int]:
        """Store papers; return ``(new, duplicate)``.

        A paper already stored (same canonical id, any version, any source) is not
        new: its signals and missing fields are merged, its ``first_seen`` kept.

        ``authority`` ranks the source of these papers (``FEED`` < ``HF`` < ``ARXIV``;
        see ``sources.ingest.AUTHORITY``). Of one paper, the metadata of the highest
        authority seen wins (title, abstract, authors, categories, links), whichever
        came first; a lower one only fills fields that are empty; an equal one merges
        as it always did (the longer abstract, missing fields).
        """
        now_s = ts(now or utcnow())
        new = dup = 0
        seen_in_batch: set[str] = set()
        with self.transaction() as db:
            # Sequence numbers are taken under the write lock, so they follow commit
            # order: a paper committed after an edition read max_seq() is in the next.
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM papers").fetchone()[0]
            for paper in papers:
                row = db.execute("SELECT * FROM papers WHERE id=?", (paper.id,)).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO papers(id, title, abstract, authors, categories, url,"
                        " pdf_url, hf_url, doi, version, announce_type, published, source,"
                        " sources, signals, first_seen, updated_at, seq, authority, terms)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            paper.id,
                            paper.title,
                            paper.abstract,
                            json.dumps(list(paper.authors)),
                            json.dumps(list(paper.categories)),
                            paper.url,
                            paper.pdf_url,
                            paper.hf_url,
                            paper.doi,
                            paper.version,
                            paper.announce_type,
                            ts(paper.published),
                            paper.source,
                            json.dumps([paper.source] if paper.source else []),
                            json.dumps(paper.signals, default=str),
                            now_s,
                            now_s,
                            seq + 1,
                            authority,
                            encode_analysis(paper.title, paper.abstract),
                        ),
                    )
                    seq += 1
                    new += 1
                    seen_in_batch.add(paper.id)
                    continue
                if paper.id not in seen_in_batch:
                    dup += 1
                    seen_in_batch.add(paper.id)
                self._merge(db, row, paper, now_s, authority)
        return new, dup

    @staticmethod
    def _merge(
        db: sqlite3.Connection, row: sqlite3.Row, paper: Paper, now_s: str | None, authority: int
    ) -> None:
        signals = json.loads(row["signals"])
        signals.update({k: v for k, v in paper.signals.items() if v not in (None, "", [])})
        sources = json.loads(row["sources"])
        if paper.source and paper.source not in sources:
            sources.append(paper.source)
        version = max(v for v in (row["version"], paper.version, 0) if v is not None) or None
        authors, categories = json.loads(row["authors"]), json.loads(row["categories"])
        title, abstract = row["title"], row["abstract"]
        url, pdf_url, hf_url = row["url"], row["pdf_url"], row["hf_url"]
        if authority > row["authority"]:
            # A more authoritative source (arXiv over a blog): its metadata replaces
            # what a lesser source stored first (what it lacks is kept).
            title = paper.title or title
            abstract = paper.abstract or abstract
            authors = list(paper.authors) or authors
            categories = list(paper.categories) or categories
            url, pdf_url, hf_url = (
                paper.url or url,
                paper.pdf_url or pdf_url,
                paper.hf_url or hf_url,
            )
        else:
            # An equal or lesser source fills what is missing; only an equal one may
            # bring a longer abstract (a blog must not rewrite arXiv's abstract).
            title = title or paper.title
            if not abstract or (
                authority == row["authority"] and len(paper.abstract) > len(abstract)
            ):
                abstract = paper.abstract
            authors = authors or list(paper.authors)
            categories = categories or list(paper.categories)
            url, pdf_url, hf_url = (
                url or paper.url,
                pdf_url or paper.pdf_url,
                hf_url or paper.hf_url,
            )
        terms = row["terms"]
        if (
            title != row["title"]
            or abstract != row["abstract"]
            or not terms
            or not terms.startswith(ANALYSIS_VERSION + ":")  # made by another analyser
        ):
            terms = encode_analysis(title, abstract)
        db.execute(
            "UPDATE papers SET title=?, abstract=?, authors=?, categories=?, url=?, pdf_url=?,"
            " hf_url=?, doi=?, version=?, published=?, sources=?, signals=?, updated_at=?,"
            " authority=?, terms=? WHERE id=?",
            (
                title,
                abstract,
                json.dumps(authors),
                json.dumps(categories),
                url,
                pdf_url,
                hf_url,
                row["doi"] or paper.doi,
                version,
                row["published"] or ts(paper.published),
                json.dumps(sources),
                json.dumps(signals, default=str),
                now_s,
                max(authority, row["authority"]),
                terms,
                row["id"],
            ),
        )

    @staticmethod
    def _paper(row: sqlite3.Row) -> Paper:
        return Paper(
            id=row["id"],
            title=row["title"],
            abstract=row["abstract"],
            authors=tuple(json.loads(row["authors"])),
            categories=tuple(json.loads(row["categories"])),
            url=row["url"],
            pdf_url=row["pdf_url"],
            hf_url=row["hf_url"],
            doi=row["doi"],
            version=row["version"],
            announce_type=row["announce_type"],
            published=parse_ts(row["published"]),
            source=row["source"],
            first_seen=parse_ts(row["first_seen"]),
            signals=json.loads(row["signals"]),
            terms=row["terms"],
        )

    def get_paper(self, paper_id: str) -> Paper | None:
        rows = self._query("SELECT * FROM papers WHERE id=?", (paper_id,))
        return self._paper(rows[0]) if rows else None

    def max_seq(self) -> int:
        """The sequence number of the last paper committed (0 for an empty store)."""
        return int(self._query("SELECT COALESCE(MAX(seq), 0) AS n FROM papers")[0]["n"])

    def papers(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        since_seq: int | None = None,
        until_seq: int | None = None,
    ) -> list[Paper]:
        """Papers first seen in ``(since, until]`` and committed in ``(since_seq, until_seq]``
        (each bound optional), oldest first."""
        sql, params = "SELECT * FROM papers WHERE 1=1", list[Any]()
        if since_seq is not None:
            sql += " AND seq > ?"
            params.append(since_seq)
        if until_seq is not None:
            sql += " AND seq <= ?"
            params.append(until_seq)
        if since is not None:
            sql += " AND first_seen > ?"
            params.append(ts(since))
        if until is not None:
            sql += " AND first_seen <= ?"
            params.append(ts(until))
        sql += " ORDER BY first_seen, id"
        return [self._paper(r) for r in self._query(sql, params)]

    def count_papers(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM papers")[0]["n"])

    # -- fetch state ------------------------------------------------------------

    def fetch_state(self, source: str) -> FetchState:
        rows = self._query("SELECT * FROM fetch_state WHERE source=?", (source,))
        if not rows:
            return FetchState(source=source)
        r = rows[0]
        return FetchState(
            source=r["source"],
            etag=r["etag"],
            last_modified=r["last_modified"],
            last_fetch_at=parse_ts(r["last_fetch_at"]),
            last_success_at=parse_ts(r["last_success_at"]),
            last_status=r["last_status"],
            last_error=r["last_error"],
            last_new=r["last_new"],
            disabled=bool(r["disabled"]),
            disabled_reason=r["disabled_reason"],
        )

    def all_fetch_states(self) -> list[FetchState]:
        names = [r["source"] for r in self._query("SELECT source FROM fetch_state ORDER BY source")]
        return [self.fetch_state(n) for n in names]

    def save_fetch_state(self, state: FetchState) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO fetch_state(source, etag, last_modified, last_fetch_at,"
                " last_success_at, last_status, last_error, last_new, disabled, disabled_reason)"
                " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(source) DO UPDATE SET"
                " etag=excluded.etag, last_modified=excluded.last_modified,"
                " last_fetch_at=excluded.last_fetch_at, last_success_at=excluded.last_success_at,"
                " last_status=excluded.last_status, last_error=excluded.last_error,"
                " last_new=excluded.last_new, disabled=excluded.disabled,"
                " disabled_reason=excluded.disabled_reason",
                (
                    state.source,
                    state.etag,
                    state.last_modified,
                    ts(state.last_fetch_at),
                    ts(state.last_success_at),
                    state.last_status,
                    state.last_error,
                    state.last_new,
                    int(state.disabled),
                    state.disabled_reason,
                ),
            )

    def update_fetch_state(self, source: str, **changes: Any) -> FetchState:
        state = replace(self.fetch_state(source), **changes)
        self.save_fetch_state(state)
        return state

    # -- the delivery ledger ----------------------------------------------------

    @staticmethod
    def _delivery(r: sqlite3.Row) -> Delivery:
        return Delivery(
            subscriber=r["subscriber"],
            edition=r["edition"],
            state=r["state"],
            message_id=r["message_id"],
            paper_ids=tuple(json.loads(r["paper_ids"])),
            attempts=r["attempts"],
            reason=r["reason"],
            server_reply=r["server_reply"],
            updated_at=parse_ts(r["updated_at"]),
            sent_at=parse_ts(r["sent_at"]),
            cutoff=parse_ts(r["cutoff"]),
            cutoff_seq=r["cutoff_seq"],
            uncertain=r["uncertain"],
        )

    def delivery(self, subscriber: str, edition: str) -> Delivery | None:
        rows = self._query(
            "SELECT * FROM deliveries WHERE subscriber=? AND edition=?", (subscriber, edition)
        )
        return self._delivery(rows[0]) if rows else None

    def deliveries(
        self, *, subscriber: str | None = None, edition: str | None = None
    ) -> list[Delivery]:
        sql, params = "SELECT * FROM deliveries WHERE 1=1", []
        if subscriber is not None:
            sql += " AND subscriber=?"
            params.append(subscriber)
        if edition is not None:
            sql += " AND edition=?"
            params.append(edition)
        sql += " ORDER BY created_at, subscriber"
        return [self._delivery(r) for r in self._query(sql, params)]

    def pending_subscribers(self, *, since: datetime | None = None) -> set[str]:
        """Subscribers with a ``pending`` or ``sending`` row (created at or after ``since``):
        the editions a retry pass looks at."""
        sql = "SELECT DISTINCT subscriber FROM deliveries WHERE state IN (?, ?)"
        params: list[Any] = [PENDING, SENDING]
        if since is not None:
            sql += " AND created_at >= ?"
            params.append(ts(since))
        return {r["subscriber"] for r in self._query(sql, params)}

    def prepare_delivery(
        self,
        subscriber: str,
        edition: str,
        *,
        message_id: str,
        paper_ids: Sequence[str],
        cutoff: datetime | None = None,
        cutoff_seq: int | None = None,
        now: datetime | None = None,
    ) -> Delivery:
        """Create the ledger row as ``pending``; return the row as it now stands.

        A row that is still ``pending`` (nothing reached a server yet) takes the new
        paper list; its Message-ID stays the first one. A row that is ``sending``,
        ``sent`` or ``failed`` is returned unchanged: the caller checks its state.
        An ``empty`` row becomes pending again when papers have since arrived.
        """
        now_s = ts(now or utcnow())
        with self.transaction() as db:
            db.execute(
                _PREPARE_SQL,
                _prepare_params(
                    subscriber, edition, message_id, paper_ids, cutoff, now_s, cutoff_seq
                ),
            )
            row = db.execute(
                "SELECT * FROM deliveries WHERE subscriber=? AND edition=?", (subscriber, edition)
            ).fetchone()
        return self._delivery(row)

    def prepare_deliveries(
        self,
        rows: Iterable[tuple[Any, ...]],
        *,
        now: datetime | None = None,
    ) -> None:
        """``prepare_delivery`` for many rows in one transaction (same rules, no return).

        Each row is ``(subscriber, edition, message_id, paper_ids, cutoff[, cutoff_seq])``. One
        transaction per batch instead of one per message: every row is ``pending``
        (committed) before the caller hands any of them to a transport.
        """
        now_s = ts(now or utcnow())
        params = [
            _prepare_params(
                row[0], row[1], row[2], row[3], row[4], now_s, row[5] if len(row) > 5 else None
            )
            for row in rows
        ]
        if params:
            with self.transaction() as db:
                db.executemany(_PREPARE_SQL, params)

    def record_empty(
        self,
        subscriber: str,
        edition: str,
        reason: str,
        *,
        cutoff: datetime | None = None,
        cutoff_seq: int | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record that an edition had nothing to send, and why.

        Never over a real send: only a new row, an ``empty`` one, or a ``pending``
        one (nothing of it reached a server) becomes ``empty``.
        """
        now_s = ts(now or utcnow())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deliveries(subscriber, edition, state, reason, created_at, updated_at,"
                " cutoff, cutoff_seq) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(subscriber, edition)"
                " DO UPDATE SET state=excluded.state, reason=excluded.reason,"
                " updated_at=excluded.updated_at, cutoff=excluded.cutoff,"
                " cutoff_seq=excluded.cutoff_seq, paper_ids='[]'"
                " WHERE deliveries.state IN ('empty', 'pending')",
                (subscriber, edition, EMPTY, reason, now_s, now_s, ts(cutoff) or now_s, cutoff_seq),
            )

    def claim(
        self, subscriber: str, edition: str, *, worker: str, now: datetime | None = None
    ) -> Delivery | None:
        """Atomically move a ``pending`` row to ``sending``; None if someone else has it."""
        now_s = ts(now or utcnow())
        with self.transaction() as db:
            row = db.execute(
                "UPDATE deliveries SET state=?, claimed_by=?, claimed_at=?, updated_at=?,"
                " attempts=attempts+1 WHERE subscriber=? AND edition=? AND state=? RETURNING *",
                (SENDING, worker, now_s, now_s, subscriber, edition, PENDING),
            ).fetchone()
        return self._delivery(row) if row else None

    def claim_active(
        self, subscriber: str, edition: str, *, worker: str, now: datetime | None = None
    ) -> Delivery | None:
        """``claim``, only while the subscriber is active: one statement instead of a
        status read, a row read and a claim. None when the row is not ``pending`` (or
        missing) or the subscriber is not active; the caller then looks at why."""
        now_s = ts(now or utcnow())
        with self.transaction() as db:
            row = db.execute(
                "UPDATE deliveries SET state=?, claimed_by=?, claimed_at=?, updated_at=?,"
                " attempts=attempts+1 WHERE subscriber=? AND edition=? AND state=?"
                " AND NOT EXISTS (SELECT 1 FROM subscriber_status WHERE subscriber=?"
                " AND status != ?) RETURNING *",
                (SENDING, worker, now_s, now_s, subscriber, edition, PENDING, subscriber, ACTIVE),
            ).fetchone()
        return self._delivery(row) if row else None

    def mark_sent(
        self,
        subscriber: str,
        edition: str,
        *,
        reply: str = "",
        now: datetime | None = None,
    ) -> None:
        """The server accepted the message: record it and its papers in one transaction.

        The commit is synced to disk before this returns: a power loss must not forget
        a sent message. Calls from several threads share syncs (group commit): while
        one thread's transaction syncs (~250 us, under the store's lock), the marks that
        arrive queue up, and the next of them writes them all in one synced
        transaction. Nothing waits for a batch to fill; alone, a mark is one
        transaction as before. Marks overlap when the relay answers faster than the
        disk syncs; into the benchmark's Python sink they rarely do.
        """
        mark = _SentMark(subscriber, edition, reply, ts(now or utcnow()) or "")
        with self._marks_changed:
            self._marks.append(mark)
            while not mark.done and self._marking:
                self._marks_changed.wait()
            if mark.done:
                if mark.error is not None:
                    raise mark.error
                return
            # Lead: write everything queued so far (this mark included).
            batch, self._marks = self._marks, []
            self._marking = True
        try:
            self._write_marks(batch)
        finally:
            with self._marks_changed:
                self._marking = False
                self._marks_changed.notify_all()
        if mark.error is not None:
            raise mark.error

    def _write_marks(self, batch: list[_SentMark]) -> None:
        """Record ``batch`` in one synced transaction; if that fails and the batch holds
        several marks, each in a transaction of its own, so that one bad row (or one
        busy moment) fails only its own mark: the others were accepted by the server."""
        settled = 0  # marks whose outcome (recorded, or its error) is final
        try:
            try:
                self._write_batch(batch)
                settled = len(batch)
            except Exception as err:  # rolled back: no mark of the batch was recorded
                if len(batch) == 1:
                    batch[0].error = err
                    settled = 1
                else:
                    for i, mark in enumerate(batch):
                        mark.error = None
                        try:
                            self._write_batch([mark])
                        except Exception as one:
                            mark.error = one
                        settled = i + 1
        except BaseException as err:  # interrupted: the marks not settled get a plain error
            for mark in batch[settled:]:
                mark.error = StoreError(f"recording sent messages was interrupted ({err!r})")
            raise
        finally:
            for mark in batch:
                mark.done = True

    def _write_batch(self, batch: list[_SentMark]) -> None:
        with self.transaction(durable=True) as db:
            for mark in batch:
                row = db.execute(
                    "UPDATE deliveries SET state=?, server_reply=?, sent_at=?, updated_at=?,"
                    " reason=NULL WHERE subscriber=? AND edition=? RETURNING paper_ids",
                    (SENT, mark.reply, mark.at, mark.at, mark.subscriber, mark.edition),
                ).fetchone()
                if row is None:  # this mark fails alone; nothing of it was written
                    mark.error = StoreError(f"no ledger row for {mark.subscriber} / {mark.edition}")
                    continue
                db.executemany(
                    "INSERT INTO sent_papers(subscriber, paper_id, edition, sent_at)"
                    " VALUES (?,?,?,?) ON CONFLICT(subscriber, paper_id) DO NOTHING",
                    [
                        (mark.subscriber, pid, mark.edition, mark.at)
                        for pid in json.loads(row["paper_ids"])
                    ],
                )
                db.execute(
                    "UPDATE subscriber_status SET permanent_failures=0 WHERE subscriber=?",
                    (mark.subscriber,),
                )

    def mark_failed(
        self,
        subscriber: str,
        edition: str,
        *,
        reason: str,
        permanent: bool,
        now: datetime | None = None,
    ) -> None:
        """A send did not go through: ``failed`` if permanent, else back to ``pending``."""
        now_s = ts(now or utcnow())
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET state=?, reason=?, updated_at=?, claimed_by=NULL"
                " WHERE subscriber=? AND edition=? AND state != ?",
                (FAILED if permanent else PENDING, reason, now_s, subscriber, edition, SENT),
            )

    def mark_uncertain(
        self,
        subscriber: str,
        edition: str,
        *,
        reason: str,
        limit: int,
        now: datetime | None = None,
    ) -> Delivery | None:
        """A send whose outcome is unknown (the connection failed after the end of DATA:
        the server may have accepted it). Count it; below ``limit`` such sends the row
        goes back to ``pending`` (a later run resends it, same Message-ID); at
        ``limit`` it becomes ``failed`` and is not sent again, so one message is
        never delivered more than ``limit`` times. Return the row (None if missing)."""
        now_s = ts(now or utcnow())
        limit = max(1, limit)
        with self.transaction() as db:
            cur = db.execute(
                "SELECT uncertain FROM deliveries WHERE subscriber=? AND edition=? AND state != ?",
                (subscriber, edition, SENT),
            ).fetchone()
            if cur is None:
                return None
            count = cur["uncertain"] + 1
            state = FAILED if count >= limit else PENDING
            if state == FAILED:
                why = (
                    f"{reason} ({count} sends with an unknown outcome: not sent again, to"
                    " avoid more duplicates; check the relay's log, then send --retry-failed)"
                )
            else:
                why = (
                    f"{reason} (unknown outcome {count} of {limit}:"
                    " sent again by the next run, same Message-ID)"
                )
            row = db.execute(
                "UPDATE deliveries SET uncertain=?, state=?, reason=?, updated_at=?,"
                " claimed_by=NULL WHERE subscriber=? AND edition=? RETURNING *",
                (count, state, why, now_s, subscriber, edition),
            ).fetchone()
        return self._delivery(row) if row else None

    def release_stale_claims(
        self, *, older_than: datetime | None = None, limit: int | None = None
    ) -> int:
        """Put ``sending`` rows back to ``pending`` (after a crash); return how many.

        Such a message may or may not have reached the server before the crash: it
        is sent again, with the same Message-ID. This is the documented in-flight
        policy: at most the messages in flight at the crash are duplicated.

        With ``limit`` (the SMTP transport's ``max_uncertain``), each release also
        counts as a send with an unknown outcome (``mark_uncertain``): a message
        caught in flight by ``limit`` crashes becomes ``failed`` instead of being
        sent again, so repeated crashes can not multiply its copies. The rows that
        failed that way are not counted in the result.
        """
        where = " WHERE state=?"
        params: list[Any] = [SENDING]
        if older_than is not None:
            where += " AND claimed_at <= ?"
            params.append(ts(older_than))
        with self.transaction() as db:
            if limit is None:
                sql = "UPDATE deliveries SET state=?, claimed_by=NULL" + where
                return db.execute(sql, [PENDING, *params]).rowcount
            limit = max(1, limit)
            rows = db.execute(
                "UPDATE deliveries SET claimed_by=NULL, uncertain=uncertain + 1,"
                " state=CASE WHEN uncertain + 1 >= ? THEN ? ELSE ? END,"
                " reason=CASE WHEN uncertain + 1 >= ? THEN"
                " 'the process stopped while this message was with the server, '"
                " || (uncertain + 1) || ' times: not sent again, to avoid more duplicates;"
                " check the relay''s log, then send --retry-failed' ELSE reason END,"
                " updated_at=?" + where + " RETURNING state",
                [limit, FAILED, PENDING, limit, ts(utcnow()), *params],
            ).fetchall()
            return sum(r["state"] == PENDING for r in rows)

    def reset_failed(self, subscriber: str, edition: str) -> None:
        """Let a permanently failed delivery be tried again (an explicit resend)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET state=?, uncertain=0"
                " WHERE subscriber=? AND edition=? AND state=?",
                (PENDING, subscriber, edition, FAILED),
            )

    def sent_paper_ids(self, subscriber: str) -> set[str]:
        rows = self._query("SELECT paper_id FROM sent_papers WHERE subscriber=?", (subscriber,))
        return {r["paper_id"] for r in rows}

    def sent_paper_ids_many(self, subscribers: Sequence[str]) -> dict[str, set[str]]:
        """``sent_paper_ids`` for many subscribers in a few queries (every one is a key)."""
        out: dict[str, set[str]] = {s: set() for s in subscribers}
        for part in _chunks(list(out), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            rows = self._query(
                f"SELECT subscriber, paper_id FROM sent_papers WHERE subscriber IN ({marks})", part
            )
            for r in rows:
                out[r["subscriber"]].add(r["paper_id"])
        return out

    def feedback_many(self, subscribers: Sequence[str]) -> dict[str, dict[str, int]]:
        """``feedback`` for many subscribers in a few queries (only those with votes)."""
        out: dict[str, dict[str, int]] = {}
        for part in _chunks(list(dict.fromkeys(subscribers)), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            rows = self._query(
                f"SELECT subscriber, paper_id, value FROM feedback WHERE subscriber IN ({marks})",
                part,
            )
            for r in rows:
                out.setdefault(r["subscriber"], {})[r["paper_id"]] = r["value"]
        return out

    def last_sent(
        self,
        subscriber: str,
        *,
        before: str | None = None,
        cutoff_before: datetime | None = None,
    ) -> Delivery | None:
        """The latest sent or empty edition of a subscriber, by its cutoff.

        ``before`` leaves out that edition itself; ``cutoff_before`` keeps only
        editions whose window ended before that time (for replays of past dates).
        Ordered by cutoff, not by edition key: after a schedule change a daily key
        (``2026-12-05``) and a weekly one (``2026-W48``) do not sort by time.
        """
        sql = "SELECT * FROM deliveries WHERE subscriber=? AND state IN (?, ?)"
        params: list[Any] = [subscriber, SENT, EMPTY]
        if before is not None:
            sql += " AND edition != ?"
            params.append(before)
        if cutoff_before is not None:
            sql += " AND COALESCE(cutoff, updated_at) < ?"
            params.append(ts(cutoff_before))
        sql += " ORDER BY COALESCE(cutoff, updated_at) DESC, updated_at DESC LIMIT 1"
        rows = self._query(sql, params)
        return self._delivery(rows[0]) if rows else None

    # -- subscriber state -------------------------------------------------------

    def subscriber_status(self, subscriber: str) -> tuple[str, str | None]:
        rows = self._query(
            "SELECT status, reason FROM subscriber_status WHERE subscriber=?", (subscriber,)
        )
        return (rows[0]["status"], rows[0]["reason"]) if rows else (ACTIVE, None)

    def set_subscriber_status(
        self, subscriber: str, status: str, reason: str | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO subscriber_status(subscriber, status, reason, updated_at)"
                " VALUES (?,?,?,?) ON CONFLICT(subscriber) DO UPDATE SET"
                " status=excluded.status, reason=excluded.reason, updated_at=excluded.updated_at",
                (subscriber, status, reason, ts(utcnow())),
            )

    def reactivate(
        self, subscriber: str, reason: str | None = None, *, unsubscribed_too: bool = False
    ) -> bool:
        """Set ``subscriber`` active with its count of permanent failures reset (what
        ``newsletter reactivate`` does after a suppression). One who unsubscribed is left
        alone unless ``unsubscribed_too``, checked in the same statement (an unsubscribe
        from the web app a moment before is not undone). True if the row was written."""
        keep = "" if unsubscribed_too else " WHERE subscriber_status.status != ?"
        params: tuple[Any, ...] = (subscriber, ACTIVE, reason, ts(utcnow()))
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO subscriber_status(subscriber, status, reason,"
                " permanent_failures, updated_at) VALUES (?,?,?,0,?)"
                " ON CONFLICT(subscriber) DO UPDATE SET status=excluded.status,"
                " reason=excluded.reason, permanent_failures=0, updated_at=excluded.updated_at"
                + keep,
                params if unsubscribed_too else (*params, UNSUBSCRIBED),
            )
            return cur.rowcount > 0

    def inactive_subscribers(self) -> dict[str, tuple[str, str | None]]:
        rows = self._query(
            "SELECT subscriber, status, reason FROM subscriber_status WHERE status != ?",
            (ACTIVE,),
        )
        return {r["subscriber"]: (r["status"], r["reason"]) for r in rows}

    def count_permanent_failure(self, subscriber: str, *, limit: int, reason: str) -> bool:
        """Count one permanent failure; suppress the subscriber at ``limit``. True if suppressed."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO subscriber_status(subscriber, status, permanent_failures, updated_at)"
                " VALUES (?, ?, 1, ?) ON CONFLICT(subscriber) DO UPDATE SET"
                " permanent_failures = permanent_failures + 1, updated_at=excluded.updated_at",
                (subscriber, ACTIVE, ts(utcnow())),
            )
            row = db.execute(
                "SELECT permanent_failures, status FROM subscriber_status WHERE subscriber=?",
                (subscriber,),
            ).fetchone()
            if row["permanent_failures"] >= limit and row["status"] == ACTIVE:
                db.execute(
                    "UPDATE subscriber_status SET status=?, reason=? WHERE subscriber=?",
                    (
                        SUPPRESSED,
                        f"{row['permanent_failures']} permanent failures: {reason}",
                        subscriber,
                    ),
                )
                return True
        return False

    def get_prefs(self, subscriber: str) -> dict[str, Any] | None:
        rows = self._query("SELECT data FROM subscriber_prefs WHERE subscriber=?", (subscriber,))
        return json.loads(rows[0]["data"]) if rows else None

    def set_prefs(self, subscriber: str, data: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO subscriber_prefs(subscriber, data, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(subscriber) DO UPDATE SET data=excluded.data,"
                " updated_at=excluded.updated_at",
                (subscriber, json.dumps(data), ts(utcnow())),
            )

    def set_feedback(self, subscriber: str, paper_id: str, value: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO feedback(subscriber, paper_id, value, created_at) VALUES (?,?,?,?)"
                " ON CONFLICT(subscriber, paper_id) DO UPDATE SET value=excluded.value,"
                " created_at=excluded.created_at",
                (subscriber, paper_id, value, ts(utcnow())),
            )

    def feedback(self, subscriber: str) -> dict[str, int]:
        rows = self._query("SELECT paper_id, value FROM feedback WHERE subscriber=?", (subscriber,))
        return {r["paper_id"]: r["value"] for r in rows}

    # -- job log (for `newsletter status`) ---------------------------------------

    def log_job(
        self,
        job: str,
        *,
        started: datetime,
        finished: datetime,
        outcome: str,
        detail: str = "",
    ) -> None:
        """Record one run of a daemon job. Runs older than ``JOB_RUNS_KEEP_DAYS`` are
        removed now and then (every ``JOB_RUNS_PRUNE_EVERY`` runs): a per-minute schedule
        logs ~14,000 runs a day, which would otherwise pile up for good."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO job_runs(job, started_at, finished_at, outcome, detail)"
                " VALUES (?,?,?,?,?)",
                (job, ts(started), ts(finished), outcome, detail),
            )
            if (cur.lastrowid or 0) % JOB_RUNS_PRUNE_EVERY == 0:
                old = ts(finished - timedelta(days=JOB_RUNS_KEEP_DAYS))
                db.execute("DELETE FROM job_runs WHERE started_at < ?", (old,))

    def last_job(self, job: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM job_runs WHERE job=? ORDER BY id DESC LIMIT 1", (job,))
        return dict(rows[0]) if rows else None

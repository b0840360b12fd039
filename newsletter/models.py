"""Plain typed objects that cross module boundaries.

Nothing here imports a third-party library: feedparser dicts, SMTP exceptions and
database rows are turned into these at the edge of the module that owns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper, normalised from any source.

    ``id`` is the canonical identity: the bare arXiv id without version
    (``2411.17700``) when one is known, else ``doi:<DOI>``, else ``url:<hash>``.
    """

    id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # primary first
    url: str = ""  # abstract / landing page
    pdf_url: str | None = None
    hf_url: str | None = None
    doi: str | None = None
    version: int | None = None
    announce_type: str | None = None  # new | cross | replace | replace-cross
    published: datetime | None = None
    source: str = ""  # name of the source that first supplied it
    first_seen: datetime | None = None  # when this store first saw it (UTC)
    # Source signals, e.g. {"upvotes": 118, "comments": 4, "ai_summary": "...",
    # "ai_keywords": [...]}; merged across sources.
    signals: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # The title's and abstract's index terms as stored at ingest (selection.text
    # .encode_analysis); checked against the texts and ignored when stale or absent.
    terms: str | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def arxiv_id(self) -> str | None:
        return None if ":" in self.id else self.id

    @property
    def upvotes(self) -> int | None:
        value = self.signals.get("upvotes")
        return int(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class Interest:
    """One named interest of a subscriber."""

    name: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # arXiv codes, wildcards such as ``cs.*``
    authors: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_papers: int | None = None
    trending: bool = False


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One reader. ``email`` is kept in lower case (``__post_init__``): it is the key of
    the reader's ledger, status, preferences and feedback in the state, and an address
    whose case is edited in the config must stay the same reader (mailbox providers
    treat the case of an address as insignificant)."""

    email: str
    name: str = ""
    timezone: str = "UTC"
    schedule: str = "daily 07:00"
    max_papers: int = 10
    min_score: float = 0.0
    interests: tuple[Interest, ...] = ()
    trending: bool = False
    exclude: tuple[str, ...] = ()  # subscriber-wide exclusions
    language: str = "en"

    def __post_init__(self) -> None:
        if not self.email.islower() or self.email != self.email.strip():
            object.__setattr__(self, "email", self.email.strip().lower())


@dataclass(frozen=True, slots=True)
class Pick:
    """A paper chosen for a subscriber, with why."""

    paper: Paper
    score: float
    interest: str  # name of the interest (section) it was chosen for
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    interest: str
    picks: tuple[Pick, ...] = ()


@dataclass(frozen=True, slots=True)
class Digest:
    """What one subscriber gets in one edition.

    ``empty_reason`` is set when there is nothing to send, and says why.
    """

    subscriber: Subscriber
    edition: str  # edition key: local date ``2026-11-29`` or ISO week ``2026-W48``
    edition_date: date
    sections: tuple[Section, ...] = ()
    empty_reason: str | None = None
    candidates: int = 0  # how many papers were considered

    @property
    def picks(self) -> tuple[Pick, ...]:
        return tuple(p for s in self.sections for p in s.picks)

    @property
    def is_empty(self) -> bool:
        return not any(s.picks for s in self.sections)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    preheader: str = ""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A composed message ready for a transport."""

    subscriber: str  # email address
    edition: str
    message_id: str  # without angle brackets
    data: bytes  # RFC 5322 bytes, CRLF line endings
    sender: str = ""  # envelope sender (bare address)
    paper_ids: tuple[str, ...] = ()
    # Envelope recipient: the address in ASCII (IDNA domain, e.g. ``ada@xn--bcher-kva.example``
    # for ``ada@bücher.example``); empty means ``subscriber`` (transports convert it).
    recipient: str = ""
    # Set by the composer when ``data`` has CRLF line ends only and no line starts with
    # ".": SMTP sends it after DATA as it is, without scanning ~60 KB for what to fix.
    wire_ready: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    subscriber: str
    edition: str
    message_id: str
    ok: bool
    permanent: bool = False  # for failures: 5xx, do not retry
    reply: str = ""  # the server's reply, or the reason
    attempts: int = 1
    path: str | None = None  # for outbox: where the files are
    # For failures: the connection failed after the end of DATA, so the server may have
    # accepted the message. Not retried in the same run; see docs/delivery.md.
    uncertain: bool = False
    # For permanent failures: the reply blames the address (no such user), so it counts
    # towards suppressing the subscriber; False for a refusal any reader would get (the
    # sender unauthenticated, content, policy: ``smtp.blames_recipient``).
    recipient_fault: bool = True


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What fetching one source did."""

    name: str
    fetched: int = 0  # entries read from the feed
    new: int = 0  # papers stored for the first time
    duplicate: int = 0  # papers already stored (same id, any version/source)
    skipped: int = 0  # entries dropped (replacements, not papers, ...)
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    not_modified: bool = False  # HTTP 304
    malformed: str | None = None  # malformed XML, entries partly recovered: what and where
    # Not fetched: the source is disabled (its server answered 410 Gone, now or before;
    # a warning says how to re-enable it). Neither ok nor an error.
    disabled: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and not self.disabled

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fetched": self.fetched,
            "new": self.new,
            "duplicate": self.duplicate,
            "skipped": self.skipped,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "not_modified": self.not_modified,
            "malformed": self.malformed,
            "disabled": self.disabled,
        }

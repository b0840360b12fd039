"""Paper sources: fetch over HTTP (or from files), parse, normalise to ``Paper``.

Public API (implemented by the ingestion work, issue 3):

    fetch_source(source: SourceConfig, store: Store, *, client: httpx.Client | None = None,
                 now: datetime | None = None) -> SourceReport
        Fetch one source (conditional GET with the stored ETag/Last-Modified), parse,
        normalise, store new papers, update fetch state. Never raises for a bad feed:
        problems go into ``SourceReport.errors`` / ``warnings``.

    fetch_all(config: Config, store: Store, *, now: datetime | None = None)
        -> list[SourceReport]
        Every enabled source, one failure never stopping the others.

    fetch_status(report: SourceReport) -> str
        The status column of ``newsletter fetch`` (ok, not modified, partial, error).

    parse_bytes(source: SourceConfig, body: bytes) -> ParseResult
        Pure parsing of a feed body into papers (no I/O), for tests and replays.
"""

from .base import ParseResult
from .http import USER_AGENT
from .ingest import enable_source, fetch_all, fetch_source, fetch_status, parse_bytes

__all__ = [
    "USER_AGENT",
    "ParseResult",
    "enable_source",
    "fetch_all",
    "fetch_source",
    "fetch_status",
    "parse_bytes",
]

"""What every parser returns, and the shared feedparser plumbing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.sax import SAXParseException

import feedparser

from ..config import SourceConfig
from ..models import Paper


@dataclass(slots=True)
class ParseResult:
    """Papers parsed from one feed body, and what was dropped or went wrong.

    ``fetched`` counts entries read; ``skipped`` the entries dropped (replacements not
    in ``announce_types``, entries that are not papers, ...). ``errors`` make the
    source fail (nothing is stored); ``warnings`` are kept with the papers.
    """

    papers: list[Paper] = field(default_factory=list)
    fetched: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Set when the body is malformed XML whose entries were partly recovered: where it
    # came from, what the parser said and how many entries were recovered.
    malformed: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


class NotAFeed(ValueError):
    """The body is not what the source's type expects (raised inside parsers only)."""


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def parse_feed(source: SourceConfig, body: bytes, result: ParseResult) -> Any:
    """Run feedparser on bytes (never a URL); raise ``NotAFeed`` for non-feeds.

    An HTML error page or an empty body parses as ``bozo=False`` with 0 entries, so
    the version and the entries are checked, not only ``bozo``. A malformed feed
    whose entries could be recovered is a warning and its entries are kept.
    """
    if not body.strip():
        raise NotAFeed("empty response body (the server sent no feed)")
    # Hand feedparser bytes only: no URL, no file name, no HTTP from inside it. Its HTML
    # sanitizer is off: it mangles LaTeX ("$0<s<1$"); normalize.clean_text strips markup.
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    problem = parsed.get("bozo_exception")
    reason = _bozo_reason(problem, _added_lines(body))
    if not version and not entries:
        if _looks_like_html(body):
            raise NotAFeed("not a feed: the server sent an HTML page (an error or login page?)")
        if body.lstrip()[:1] in (b"{", b"["):
            raise NotAFeed(
                "not a feed: the body is JSON; use type 'hf_daily' or 'jsonfeed' for JSON sources"
            )
        raise NotAFeed(f"not a feed{': ' + reason if reason else ''}")
    if parsed.get("bozo") and not entries:
        raise NotAFeed(
            f"{MALFORMED} from {source.url} ({reason}) and no entries could be recovered"
            " (a truncated download or a broken file?)"
        )
    if parsed.get("bozo"):
        result.malformed = (
            f"{MALFORMED} from {source.url} ({reason}); {len(entries)} "
            f"entr{'y' if len(entries) == 1 else 'ies'} recovered"
        )
        result.warnings.append(f"source '{source.name}': {result.malformed} and kept")
    return parsed


MALFORMED = "malformed feed"  # how every malformed-XML message starts


def _added_lines(body: bytes) -> int:
    """Lines feedparser put in front of ``body`` before parsing: it adds an XML
    declaration line to an 8-bit body that does not start with one, and replaces one
    that does with a declaration on one line (fewer lines, if the file's took several:
    a negative count)."""
    head = body.removeprefix(b"\xef\xbb\xbf")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head[:4]:
        return 0  # UTF-16/32: not worth guessing
    if not head.startswith(b"<?xml"):
        return 1
    end = head.find(b">")  # (feedparser's declaration pattern: "<?xml", then up to ">")
    return -head.count(b"\n", 0, end) if end >= 0 else 1  # no ">": a line put in front


def _bozo_reason(problem: Any, added_lines: int = 0) -> str:
    """What the parser said, e.g. ``XML error at line 47, column 1: no element found``."""
    if problem is None:
        return ""
    if isinstance(problem, SAXParseException):
        line, column = problem.getLineNumber() or 1, problem.getColumnNumber() or 0
        return (
            f"XML error at line {max(1, line - added_lines)}, column {column + 1}: "
            f"{problem.getMessage()}"
        )[:200]
    text = " ".join(str(problem).split())
    name = type(problem).__name__
    return f"{name}: {text}"[:200] if text else name

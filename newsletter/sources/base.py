"""What every parser returns, and the shared feedparser plumbing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    reason = _bozo_reason(problem)
    if not version and not entries:
        if _looks_like_html(body):
            raise NotAFeed("not a feed: the server sent an HTML page (an error or login page?)")
        if body.lstrip()[:1] in (b"{", b"["):
            raise NotAFeed(
                "not a feed: the body is JSON; use type 'hf_daily' or 'jsonfeed' for JSON sources"
            )
        raise NotAFeed(f"not a feed{': ' + reason if reason else ''}")
    if parsed.get("bozo") and not entries:
        raise NotAFeed(f"malformed feed and no entries could be recovered ({reason})")
    if parsed.get("bozo"):
        result.warnings.append(
            f"source '{source.name}': malformed feed ({reason}); "
            f"{len(entries)} entries recovered and kept"
        )
    return parsed


def _bozo_reason(problem: Any) -> str:
    if problem is None:
        return ""
    text = " ".join(str(problem).split())
    name = type(problem).__name__
    return f"{name}: {text}"[:200] if text else name

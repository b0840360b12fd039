"""``type: arxiv``: arXiv's RSS feeds.

* rss.arxiv.org (RSS 2.0, since 2024): ``arxiv:announce_type`` new / cross / replace /
  replace-cross, ``dc:creator`` as one comma-joined string, one ``<category>`` each,
  the abstract prefixed with ``arXiv:2411.17700v1 Announce Type: new Abstract:``.
* export.arxiv.org/rss (RSS 1.0/RDF, before 2024): titles such as
  ``Title. (arXiv:1805.09166v1 [hep-ex] UPDATED)`` carry the id, version, primary
  category and announce type (``UPDATED`` = replace, ``CROSS LISTED`` = cross).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from ..config import SourceConfig
from .base import NotAFeed, ParseResult, parse_feed
from .feed import entry_to_paper, keep_announce

_OLD_TITLE = re.compile(
    r"\s*\(arXiv:(?P<id>[^\s\[\]()]+?)(?:v(?P<version>\d+))?\s*"
    r"(?:\[(?P<cat>[^\]]+)\])?\s*(?P<flag>UPDATED|CROSS LISTED|REPLACED)?\)\s*$"
)
_FLAGS = {None: "new", "UPDATED": "replace", "REPLACED": "replace", "CROSS LISTED": "cross"}


_ARXIV_NS = "{http://arxiv.org/schemas/atom}"
_DC_NS = "{http://purl.org/dc/elements/1.1/}"
_PLAIN = {"type": "text/plain"}
_HTML = {"type": "text/html"}


def _date(value: str | None) -> Any:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def _fast_entries(body: bytes) -> list[dict[str, Any]] | None:
    """Entries of a well-formed rss.arxiv.org RSS 2.0 document, read with ElementTree.

    About ten times faster than feedparser on a 1,500-item day. Returns ``None`` for
    anything else (old RDF, malformed XML, other feeds), which then goes through
    feedparser. The dicts carry the keys ``entry_to_paper`` reads from feedparser.
    """
    if b"arxiv.org/schemas/atom" not in body[:4096]:
        return None
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, ValueError):
        return None
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        return None
    entries = []
    for item in channel.iterfind("item"):
        entries.append(
            {
                "title": item.findtext("title") or "",
                "title_detail": _PLAIN,
                "summary": item.findtext("description") or "",
                "summary_detail": _HTML,
                "link": (item.findtext("link") or "").strip(),
                "id": (item.findtext("guid") or "").strip(),
                "tags": [{"term": c.text or ""} for c in item.iterfind("category")],
                "authors": [{"name": c.text or ""} for c in item.iterfind(f"{_DC_NS}creator")],
                "arxiv_announce_type": item.findtext(f"{_ARXIV_NS}announce_type") or "",
                "arxiv_doi": item.findtext(f"{_ARXIV_NS}DOI"),
                "arxiv_journal_reference": item.findtext(f"{_ARXIV_NS}journal_reference"),
                "published_dt": _date(item.findtext("pubDate")),
            }
        )
    return entries


def parse(source: SourceConfig, body: bytes) -> ParseResult:
    result = ParseResult()
    entries = _fast_entries(body)
    if entries is None:
        entries = parse_feed(source, body, result).entries
    with_id = 0
    for index, entry in enumerate(entries, 1):
        result.fetched += 1
        paper = entry_to_paper(source, entry, result, index=index)
        if paper is None:
            continue
        match = _OLD_TITLE.search(paper.title)
        if match:
            announce = paper.announce_type or _FLAGS.get(match.group("flag"), "new")
            primary = match.group("cat")
            categories = paper.categories
            if primary and primary not in categories:
                categories = (primary, *categories)
            elif primary:
                categories = (primary, *(c for c in categories if c != primary))
            version = match.group("version")
            paper = replace(
                paper,
                title=paper.title[: match.start()].rstrip().removesuffix("."),
                announce_type=announce,
                categories=categories,
                version=paper.version or (int(version) if version else None),
            )
        if paper.arxiv_id:
            with_id += 1
        if keep_announce(source, paper, result):
            result.papers.append(paper)
    if result.fetched and not with_id and result.malformed:
        # Broken XML (a truncated download): say so, not "this is not an arXiv feed".
        raise NotAFeed(
            f"{result.malformed}, none with an arXiv id, so nothing was stored"
            " (a truncated download or a broken file? the next fetch tries again)"
        )
    if result.fetched and not with_id:
        raise NotAFeed(
            f"no arXiv ids in {result.fetched} entries: this is not an arXiv feed "
            "(use type 'feed' for other RSS/Atom feeds)"
        )
    if not result.fetched:
        result.warnings.append(
            f"source '{source.name}': the arXiv feed has no entries "
            "(no announcements today: weekends and holidays are normal)"
        )
    return result

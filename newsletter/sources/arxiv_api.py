"""``type: arxiv_api``: Atom responses of export.arxiv.org/api/query.

An entry titled ``Error`` (with an ``.../api/errors#...`` id) is the API reporting a
bad query: that is a source error, never a paper. Zero results is not an error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..config import SourceConfig
from . import normalize as n
from .base import NotAFeed, ParseResult, parse_feed
from .feed import entry_to_paper


def _is_error_entry(entry: Any) -> bool:
    entry_id = str(entry.get("id") or "")
    title = str(entry.get("title") or "").strip()
    return "/api/errors" in entry_id or (title == "Error" and "arxiv_primary_category" not in entry)


def parse(source: SourceConfig, body: bytes) -> ParseResult:
    result = ParseResult()
    parsed = parse_feed(source, body, result)
    if not str(parsed.get("version") or "").startswith("atom"):
        raise NotAFeed(
            f"not an arXiv API response (got a {parsed.get('version') or 'non-Atom'} feed); "
            "use type 'arxiv' for arXiv RSS or 'feed' for other feeds"
        )
    for index, entry in enumerate(parsed.entries, 1):
        if _is_error_entry(entry):
            message = n.clean_line(entry.get("summary")) or "unspecified error"
            raise NotAFeed(f"the arXiv API reported an error: {message} (check the query URL)")
        result.fetched += 1
        paper = entry_to_paper(source, entry, result, index=index)
        if paper is None:
            continue
        primary = entry.get("arxiv_primary_category") or {}
        term = n.clean_line(primary.get("term") if isinstance(primary, dict) else primary)
        if term:
            paper = replace(paper, categories=(term, *(c for c in paper.categories if c != term)))
        comment = n.clean_line(entry.get("arxiv_comment"))
        if comment:
            signals = {"comment": comment}
            paper = replace(paper, signals={**paper.signals, **signals})
        result.papers.append(paper)
    if not result.fetched:
        result.warnings.append(f"source '{source.name}': the arXiv API query returned no results")
    return result

"""``type: jsonfeed``: JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1)."""

from __future__ import annotations

from typing import Any

from ..config import SourceConfig
from ..models import Paper
from . import normalize as n
from .base import NotAFeed, ParseResult
from .feed import hf_paper_url, safe_url
from .hf_daily import load_json


def _authors(item: dict[str, Any], feed: dict[str, Any]) -> tuple[str, ...]:
    raw = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
    if not raw:
        raw = feed.get("authors") or []
    names: list[str] = []
    for author in raw if isinstance(raw, list) else ():
        if isinstance(author, dict) and isinstance(author.get("name"), str):
            names.extend(n.split_authors(author["name"]))
    return n.unique(names)


def item_to_paper(
    source: SourceConfig, item: Any, feed: dict[str, Any], result: ParseResult, index: int
) -> Paper | None:
    if not isinstance(item, dict):
        result.skipped += 1
        result.warnings.append(f"source '{source.name}': item {index} is not an object; skipped")
        return None
    title = n.clean_line(item.get("title"))
    if isinstance(item.get("content_html"), str) and item["content_html"].strip():
        abstract = n.clean_text(item["content_html"])
    else:
        abstract = n.clean_text(item.get("content_text") or item.get("summary"), is_html=False)
    link = safe_url(item.get("url") if isinstance(item.get("url"), str) else "")
    item_id = str(item.get("id") or "")
    external = item.get("external_url") if isinstance(item.get("external_url"), str) else None
    arxiv, version = n.arxiv_id(item_id, link, external)
    doi = n.find_doi(external, link if "doi.org/" in link else None)
    paper_id = n.canonical_id(arxiv=arxiv, doi=doi, link=link or item_id, fallback=title)
    if paper_id is None or not (title or abstract):
        result.skipped += 1
        result.warnings.append(
            f"source '{source.name}': item {index} has no id, link or title; skipped"
        )
        return None
    hf_url = None
    pdf = None
    if arxiv:
        hf_url = hf_paper_url(link, arxiv)
        if hf_url:
            abstract = n.hf_page_abstract(abstract)
        link, pdf = n.arxiv_links(arxiv)
    tags = [n.clean_line(t) for t in item.get("tags") or () if isinstance(t, str)]
    return Paper(
        id=paper_id,
        title=title or abstract[:120],
        abstract=abstract,
        authors=_authors(item, feed),
        categories=n.unique(tags),
        url=link,
        pdf_url=pdf,
        hf_url=hf_url,
        doi=None if arxiv else doi,
        version=version,
        published=n.parse_iso(item.get("date_published")) or n.parse_iso(item.get("date_modified")),
        source=source.name,
    )


def parse(source: SourceConfig, body: bytes) -> ParseResult:
    result = ParseResult()
    data = load_json(body, "a JSON Feed")
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/1" not in version:
        raise NotAFeed(
            "not a JSON Feed: no 'version': 'https://jsonfeed.org/version/1.x' "
            "(use type 'hf_daily' for the Hugging Face API, 'feed' for RSS/Atom)"
        )
    items = data.get("items")
    if not isinstance(items, list):
        raise NotAFeed("not a JSON Feed: 'items' is missing or not a list")
    for index, item in enumerate(items, 1):
        result.fetched += 1
        paper = item_to_paper(source, item, data, result, index)
        if paper is not None:
            result.papers.append(paper)
    if not result.fetched:
        result.warnings.append(f"source '{source.name}': the JSON Feed has no items")
    return result

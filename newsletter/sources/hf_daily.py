"""``type: hf_daily``: the Hugging Face Daily Papers JSON API (``/api/daily_papers``).

A list of objects, each with a ``paper`` holding the arXiv id, authors, abstract
(``summary``), ``upvotes``, ``ai_summary`` and ``ai_keywords``; ``numComments`` sits
on the outer object. Upvotes, comments, the AI summary and keywords become signals.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import SourceConfig
from ..models import Paper
from . import normalize as n
from .base import NotAFeed, ParseResult


def load_json(body: bytes, what: str) -> Any:
    if not body.strip():
        raise NotAFeed("empty response body (the server sent nothing)")
    try:
        return json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise NotAFeed(f"not {what}: the body is not UTF-8 text ({err.reason})") from err
    except json.JSONDecodeError as err:
        head = body.lstrip()[:1]
        kind = "XML/HTML" if head == b"<" else "text"
        raise NotAFeed(
            f"not {what}: the body is {kind}, not JSON (line {err.lineno}: {err.msg}); "
            "check the source's type"
        ) from err


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def item_to_paper(source: SourceConfig, item: Any, result: ParseResult, index: int) -> Paper | None:
    if not isinstance(item, dict):
        result.skipped += 1
        result.warnings.append(f"source '{source.name}': item {index} is not an object; skipped")
        return None
    inner = item.get("paper")
    paper: dict[str, Any] = inner if isinstance(inner, dict) else item
    arxiv, version = n.bare_arxiv_id(paper.get("id"))
    title = n.clean_line(paper.get("title") or item.get("title"))
    if not arxiv or not title:
        result.skipped += 1
        result.warnings.append(
            f"source '{source.name}': item {index} has no arXiv id or title; skipped"
        )
        return None
    names = []
    for author in paper.get("authors") or ():
        name = author.get("name") if isinstance(author, dict) else author
        if isinstance(name, str):
            names.append(n.clean_line(name))
    upvotes = _int(paper.get("upvotes"))
    comments = _int(item.get("numComments"))
    keywords = [n.clean_line(k) for k in paper.get("ai_keywords") or () if isinstance(k, str)]
    signals: dict[str, Any] = {
        "upvotes": upvotes,
        "comments": comments,
        "ai_summary": n.clean_text(paper.get("ai_summary")) or None,
        "ai_keywords": [k for k in keywords if k] or None,
        "hf_submitted": paper.get("submittedOnDailyAt")
        if isinstance(paper.get("submittedOnDailyAt"), str)
        else None,
    }
    url, pdf = n.arxiv_links(arxiv)
    return Paper(
        id=arxiv,
        title=title,
        abstract=n.clean_text(paper.get("summary") or item.get("summary")),
        authors=n.unique(names),
        url=url,
        pdf_url=pdf,
        hf_url=f"https://huggingface.co/papers/{arxiv}",
        version=version,
        published=n.parse_iso(paper.get("publishedAt")) or n.parse_iso(item.get("publishedAt")),
        source=source.name,
        signals={k: v for k, v in signals.items() if v is not None},
    )


def parse(source: SourceConfig, body: bytes) -> ParseResult:
    result = ParseResult()
    data = load_json(body, "a Hugging Face Daily Papers response")
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise NotAFeed(f"the Hugging Face API reported an error: {n.clean_line(data['error'])}")
    if not isinstance(data, list):
        raise NotAFeed(
            "not a Hugging Face Daily Papers response: expected a JSON list of papers "
            "(use type 'jsonfeed' for JSON Feed)"
        )
    for index, item in enumerate(data, 1):
        result.fetched += 1
        paper = item_to_paper(source, item, result, index)
        if paper is not None:
            result.papers.append(paper)
    if not result.fetched:
        result.warnings.append(f"source '{source.name}': Hugging Face listed no papers")
    return result

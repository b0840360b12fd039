"""``type: feed``: any RSS 0.9x/1.0/2.0 or Atom feed (journals, bioRxiv/medRxiv, blogs).

Entries that carry arXiv markers (``arxiv:announce_type``, arXiv links or
``oai:arXiv.org`` guids) are normalised like arXiv entries, so an arXiv feed read
as a generic feed still dedupes by arXiv id.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..config import SourceConfig
from ..models import Paper
from . import normalize as n
from .base import ParseResult, parse_feed

_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")


def _is_html(detail: Any) -> bool:
    kind = (detail or {}).get("type") or "text/html"
    return str(kind).lower() in _HTML_TYPES


def entry_text(entry: Any, key: str) -> tuple[str, bool]:
    """The raw value of ``title``/``summary`` and whether feedparser says it is HTML."""
    value = entry.get(key)
    if value is None:
        return "", False
    return str(value), _is_html(entry.get(f"{key}_detail"))


def entry_abstract(entry: Any) -> tuple[str, bool]:
    """The longest of summary and content (Nature puts the standfirst in content)."""
    best, best_html = entry_text(entry, "summary")
    for content in entry.get("content") or ():
        value = str(content.get("value") or "")
        if len(value) > len(best):
            best, best_html = value, _is_html(content)
    return best, best_html


def entry_authors(entry: Any) -> tuple[str, ...]:
    names: list[str] = []
    authors = entry.get("authors") or []
    if not authors and entry.get("author"):
        authors = [{"name": entry.get("author")}]
    for author in authors:
        raw = author.get("name") if isinstance(author, dict) else author
        names.extend(n.split_authors(raw))
    return n.unique(names)


def entry_categories(entry: Any) -> list[str]:
    terms = []
    for tag in entry.get("tags") or ():
        term = n.clean_line(tag.get("term") if isinstance(tag, dict) else tag)
        if term:
            terms.append(term)
    return terms


def entry_links(entry: Any) -> tuple[str, str | None]:
    """The landing page and a PDF link if the entry names one."""
    link = str(entry.get("link") or "").strip()
    pdf = None
    for item in entry.get("links") or ():
        href = str(item.get("href") or "").strip()
        if not href:
            continue
        if item.get("type") == "application/pdf" or item.get("title") == "pdf":
            pdf = pdf or href
        elif not link and item.get("rel", "alternate") == "alternate":
            link = href
    return link, pdf


def entry_date(entry: Any) -> Any:
    if entry.get("published_dt") is not None:
        return entry["published_dt"]
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = n.from_struct(entry.get(key))
        if value is not None:
            return value
    return None


def safe_url(url: str | None) -> str:
    """Only http(s) URLs are kept from a feed (no ``javascript:`` or ``data:``)."""
    value = n.clean_line(url, is_html=False) if url else ""
    return value if value.lower().startswith(("http://", "https://")) else ""


#: Hosts whose ``/papers/<arXiv id>`` pages are Hugging Face paper pages.
HF_HOSTS = frozenset({"huggingface.co", "hf.co"})


def hf_paper_url(link: str, arxiv: str | None) -> str | None:
    """The Hugging Face page of paper ``arxiv`` if ``link`` is one, else ``None``.

    Only ``https://huggingface.co/papers/<id>`` (or ``hf.co``) for this very id counts,
    optionally with a version, a trailing slash, a query or a fragment: a link that
    merely *contains* that text (``https://evil.example/?huggingface.co/papers/<id>``),
    another host, plain http, a login part or another paper's page is not. The URL
    returned is rebuilt from the id, never the feed's own string.
    """
    if not arxiv or not link:
        return None
    try:
        parts = urlsplit(link.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    if (
        parts.scheme.lower() != "https"
        or (parts.hostname or "").lower() not in HF_HOSTS
        or parts.username is not None
        or parts.password is not None
        or port not in (None, 443)
    ):
        return None
    found = re.fullmatch(r"/papers/(?P<id>.+?)(?:v\d+)?/?", parts.path)
    if found is None or found.group("id") != arxiv:
        return None
    return f"https://huggingface.co/papers/{arxiv}"


def entry_to_paper(
    source: SourceConfig,
    entry: Any,
    result: ParseResult,
    *,
    index: int,
    abstract_is_html: bool | None = None,
) -> Paper | None:
    """One feedparser entry as a ``Paper``; ``None`` (and a skip) if it is not one."""
    raw_title, title_html = entry_text(entry, "title")
    title = n.clean_line(raw_title, is_html=title_html)
    raw_abstract, html_abstract = entry_abstract(entry)
    if abstract_is_html is not None:
        html_abstract = abstract_is_html
    abstract = n.clean_text(raw_abstract, is_html=html_abstract)
    abstract, announce = n.strip_announce_prefix(abstract)
    announce = n.clean_line(entry.get("arxiv_announce_type") or "").lower() or announce
    link, pdf = entry_links(entry)
    link = safe_url(link)
    pdf = safe_url(pdf) or None
    guid = str(entry.get("id") or "")
    doi = n.find_doi(
        entry.get("prism_doi"),
        entry.get("arxiv_doi"),
        entry.get("dc_identifier"),
        guid if "doi" in guid.lower() else None,
        link if "doi.org/" in link else None,
    )
    lead = raw_abstract.lstrip()[:40]
    arxiv, version = n.arxiv_id(guid, link, lead if lead.startswith("arXiv:") else None, doi, pdf)
    if arxiv and doi and doi.lower().startswith("10.48550/"):
        doi = None
    paper_id = n.canonical_id(arxiv=arxiv, doi=doi, link=link, fallback=guid or title or abstract)
    if not title and not abstract:
        result.skipped += 1
        result.warnings.append(
            f"source '{source.name}': entry {index} has no title and no text; skipped"
        )
        return None
    if paper_id is None:
        result.skipped += 1
        result.warnings.append(
            f"source '{source.name}': entry {index} ('{title[:60]}') has no link or id; skipped"
        )
        return None
    categories = entry_categories(entry)
    hf_url = None
    if arxiv:
        hf_url = hf_paper_url(link, arxiv)
        if hf_url:
            abstract = n.hf_page_abstract(abstract)
        link, default_pdf = n.arxiv_links(arxiv)
        pdf = pdf or default_pdf
    journal = n.clean_line(
        entry.get("arxiv_journal_reference") or entry.get("arxiv_journal_ref") or ""
    )
    return Paper(
        id=paper_id,
        title=title or abstract[:120],
        abstract=abstract,
        authors=entry_authors(entry),
        categories=n.unique(categories),
        url=link,
        pdf_url=pdf,
        hf_url=hf_url,
        doi=doi,
        version=version,
        announce_type=announce or None,
        published=entry_date(entry),
        source=source.name,
        signals={"journal_ref": journal} if journal else {},
    )


def keep_announce(source: SourceConfig, paper: Paper, result: ParseResult) -> bool:
    """Apply ``announce_types``: replacements are dropped unless the source asks for them."""
    if paper.announce_type and paper.announce_type not in source.announce_types:
        result.skipped += 1
        return False
    return True


def parse(source: SourceConfig, body: bytes) -> ParseResult:
    result = ParseResult()
    parsed = parse_feed(source, body, result)
    for index, entry in enumerate(parsed.entries, 1):
        result.fetched += 1
        paper = entry_to_paper(source, entry, result, index=index)
        if paper is not None and keep_announce(source, paper, result):
            result.papers.append(paper)
    if not result.fetched:
        result.warnings.append(f"source '{source.name}': the feed has no entries")
    return result

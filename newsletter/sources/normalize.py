"""Turning untrusted feed text into clean plain values: text, ids, authors, dates.

Everything a feed supplies is untrusted. Titles and abstracts become plain text:
HTML tags are dropped (the content of ``script``/``style``/... with them), entities
decoded, LaTeX text accents (``Schr\\"odinger``) decoded to Unicode, whitespace
collapsed, control characters removed. Other LaTeX (math) is left as is.
HTML escaping happens later, in the renderer; a ``Paper`` never holds raw HTML.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..models import Paper
from ..textutil import truncate

_VOID_OR_INLINE = (
    "a|abbr|b|bdi|bdo|big|cite|code|data|del|dfn|em|font|i|img|ins|kbd|mark|q|s|samp|"
    "small|span|strike|strong|sub|sup|time|tt|u|var|wbr|label|input|button|select|"
    "option|textarea|form|link|meta|base|area|map|source|track|video|audio|picture|"
    "canvas|col|colgroup|caption|thead|tbody|tfoot|nav|aside|main|summary|details|"
    "body|html|center|abstract|jats:[a-z-]+|mml:[a-z-]+"
)
_PARAGRAPH = "p|div|blockquote|pre|ul|ol|table|h[1-6]|section|article|header|footer|dl|figure|hr"
_LINE = "br|li|tr|dt|dd|figcaption|td|th"
# Elements whose *content* goes with the tags.
_DROP = (
    "script|style|iframe|object|embed|noscript|template|svg|math|head|title|applet|"
    "frameset|frame|noembed|noframes|xmp"
)
_ATTRS = r"""(?:\s+[a-zA-Z_:][\w:.-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*/?"""


def _tag(names: str) -> re.Pattern[str]:
    # A tag only when the name is followed by whitespace-separated attributes, "/" or
    # ">": so LaTeX such as ``$0<s<1$`` or ``$x<p$ and $q>y$`` is left alone.
    return re.compile(rf"</?(?:{names})(?={_ATTRS}>){_ATTRS}>", re.IGNORECASE)


_DROP_BLOCK = re.compile(
    rf"<({_DROP})(?={_ATTRS}>){_ATTRS}>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL
)
_DROP_TAG = _tag(_DROP)
_PARAGRAPH_TAG = _tag(_PARAGRAPH)
_LINE_TAG = _tag(_LINE)
_INLINE_TAG = _tag(_VOID_OR_INLINE)
_COMMENT = re.compile(
    r"<!--.*?(?:-->|$)|<!\[CDATA\[|\]\]>|<![a-zA-Z][^<>]*>|<\?[^<>]*\?>", re.DOTALL
)

# Control characters (C0 except tab/newline handled separately, DEL, C1), bidi
# overrides and line/paragraph separators: nothing a title or header should carry.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# Markup that must never survive, even when a feed double-escaped it.
_DANGER = re.compile(
    r"<\s*/?\s*(?:script|style|iframe|object|embed|svg|math|template|noscript|meta|link|base)\b"
    r"|<[a-zA-Z][^<>]*?[\s\"'/](?:on[a-zA-Z]+|style|href|src|srcdoc|formaction)\s*="
    r"|\bjavascript\s*:",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"</?[a-zA-Z][^<>]*(?:>|$)")


def html_to_text(text: str, *, is_html: bool = True) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded (no collapsing).

    Only well-formed tags of HTML elements are removed, so the ``<`` of LaTeX stays.
    ``is_html=False`` (text that feedparser already decoded) keeps entities as they are.
    """
    if not text or ("<" not in text and "&" not in text):
        return text or ""
    if "<" in text:
        text = _COMMENT.sub("", text)
        text = _DROP_BLOCK.sub("", text)
        text = _DROP_TAG.sub("", text)
        text = _PARAGRAPH_TAG.sub("\n\n", text)
        text = _LINE_TAG.sub("\n", text)
        text = _INLINE_TAG.sub("", text)
    if is_html and "&" in text:
        text = html.unescape(text)
    return text


def _defuse(text: str) -> str:
    """Strip markup again while dangerous markup is still visible (double-escaped feeds)."""
    if "<" not in text and "script" not in text.lower():
        return text
    for _ in range(3):
        if not _DANGER.search(text):
            return text
        text = html_to_text(text)
    # Still there after three rounds: remove the offending pieces outright.
    while _DANGER.search(text):
        text = _DANGER.sub(" ", _ANY_TAG.sub(" ", text))
    return text


# LaTeX text accents, as arXiv writes names and words ("Schr\"odinger", "Vavry\v{c}uk"):
# the accent's combining character, composed with its letter by NFC.
_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
    "t": "\u0361",
}
_LATEX_LETTERS = {
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "aa": "å",
    "AA": "Å",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
# The accented letter: a letter, or a dotless \i / \j (which takes the accent as i / j).
# A control word eats the space after it when the word goes on: "Stra\ss e", "na\"\i ve".
_BASE = r"(?:\\[ij](?![A-Za-z])(?:\s(?=[a-z]))?|[A-Za-z])"
_ACCENT = re.compile(
    r"(?P<open>\{)?"  # "{\"o}": the group's braces go too
    r"\\(?:(?P<sym>[\"'`^~=.])|(?P<word>[uvHckrdb])(?=[\s{])\s*)"
    rf"(?:\{{\s*(?P<braced>{_BASE})\s*\}}|(?P<bare>{_BASE}))"
    r"(?(open)\})"
    r"|(?P<topen>\{)?\\t\s*\{(?P<tie>[A-Za-z]{2})\}(?(topen)\})"  # tie: "\t{oo}"
    r"|(?P<lopen>\{)?\\(?P<letter>ss|aa|AA|ae|AE|oe|OE|[oOlLij])(?![A-Za-z])"
    r"(?:\{\}|(?(lopen)\}|(?:\s(?=[a-z]))?))"  # "{\l}", "\l{}", "\l", "\ss e"
)
# Math, left as it is: $...$, $$...$$, \(...\), \[...\] (an escaped \$ is no delimiter).
_MATH_DELIMITER = re.compile(r"\\\$|\$\$|\$|\\[()\[\]]")
_MATH_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}


def _math_spans(text: str) -> list[tuple[int, int]]:
    """Where math is in ``text``, in one pass (an unclosed ``$`` opens no math)."""
    spans: list[tuple[int, int]] = []
    closer, start = None, 0
    for delimiter in _MATH_DELIMITER.finditer(text):
        token = delimiter.group()
        if closer is None:
            if token in _MATH_CLOSER:
                closer, start = _MATH_CLOSER[token], delimiter.start()
        elif token == closer:
            spans.append((start, delimiter.end()))
            closer = None
    return spans


def _accent(match: re.Match[str]) -> str:
    if match.group("letter"):
        return _LATEX_LETTERS[match.group("letter")]
    if match.group("tie"):
        pair = match.group("tie")
        return pair[0] + _ACCENTS["t"] + pair[1]
    base = match.group("braced") or match.group("bare")
    base = base.rstrip()
    if base.startswith("\\"):
        base = base[1]  # \'\i is í
    accented = unicodedata.normalize(
        "NFC", base + _ACCENTS[match.group("sym") or match.group("word")]
    )
    # Only a letter Unicode has: \"mind\" in badly escaped text stays as it is.
    return accented if len(accented) == 1 else match.group()


def decode_latex(text: str) -> str:
    """LaTeX text accents as Unicode (NFC): ``Schr\\"odinger``, ``Schr\\"{o}dinger`` and
    ``{\\"o}`` give ö, ``\\v{c}`` č, ``{\\l}`` ł, ``\\ss`` ß... Math (``$...$``) is left
    as it is; so is anything else."""
    if "\\" not in text:
        return text
    out: list[str] = []
    start = 0
    for math_start, math_end in _math_spans(text):
        out.append(_ACCENT.sub(_accent, text[start:math_start]))
        out.append(text[math_start:math_end])
        start = math_end
    out.append(_ACCENT.sub(_accent, text[start:]))
    return unicodedata.normalize("NFC", "".join(out))


def clean_line(text: Any, *, is_html: bool = True) -> str:
    """One line of plain text (titles, names): HTML stripped, whitespace collapsed.

    CR, LF and other control characters never survive, so the value is safe to put
    in a mail header later (after encoding).
    """
    if text is None:
        return ""
    value = str(text)
    value = html_to_text(value, is_html=is_html)
    value = decode_latex(_defuse(value))
    value = _CONTROL.sub(" ", value)
    return _SPACES.sub(" ", value).strip()


# Hugging Face paper pages, as community feeds scrape them: "Abstract", an AI-written
# one-sentence summary, "Generated by <org>/<model>" (or "AI-generated summary"), then
# the authors' abstract.
_HF_PAGE = re.compile(
    r"Abstract\s+(?:(?P<summary>[^\n]{1,600}?)\s+"
    r"(?:Generated by [\w.-]+/[\w.-]+|AI-generated summary)\s+)?(?P<abstract>\S.*)",
    re.S,
)


def hf_page_abstract(text: str) -> str:
    """The authors' abstract from a scraped Hugging Face paper page's text: without the
    leading "Abstract" and the AI-written summary before it (that summary, and the
    model's name after it, would otherwise be shown as the abstract and indexed for
    every such paper). Any other text is returned as it is."""
    found = _HF_PAGE.fullmatch(text)
    return found.group("abstract") if found else text


def clean_text(text: Any, *, is_html: bool = True) -> str:
    """Plain text with paragraphs (abstracts): like ``clean_line`` but keeps paragraph breaks.

    Line wraps inside a paragraph become spaces; paragraphs are separated by one blank
    line.
    """
    if text is None:
        return ""
    value = str(text)
    value = html_to_text(value, is_html=is_html)
    value = decode_latex(_defuse(value))
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub(" ", value)
    paragraphs = re.split(r"\n[ \t]*\n", value)
    out = []
    for para in paragraphs:
        para = _SPACES.sub(" ", para).strip()
        if para:
            out.append(para)
    return "\n\n".join(out)


# -- arXiv ids --------------------------------------------------------------------

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Za-z]{2})?/\d{7}"
_ID_VERSION = rf"(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?"
# Places where an arXiv id can be trusted to be one: arxiv.org URLs, oai ids,
# "arXiv:" prefixes, Hugging Face paper pages and the arXiv DOI prefix.
_ARXIV_CONTEXT = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html|format)/"
    r"|oai:arxiv\.org:"
    r"|\barxiv:\s*"
    r"|huggingface\.co/papers/"
    r"|hf\.co/papers/"
    r"|10\.48550/arxiv\.)" + _ID_VERSION + r"(?![\d])",
    re.IGNORECASE,
)
_BARE_ID = re.compile(rf"^\s*{_ID_VERSION}\s*$")


def arxiv_id(*candidates: Any) -> tuple[str | None, int | None]:
    """The first arXiv id (without version) and its version found in the candidates.

    Candidates are URLs, guids, DOIs, ``oai:arXiv.org:...`` strings. A number that
    merely looks like an id is only trusted in an arXiv context (see ``_ARXIV_CONTEXT``).
    """
    for value in candidates:
        if not value:
            continue
        match = _ARXIV_CONTEXT.search(str(value))
        if match:
            version = match.group("version")
            return match.group("id"), int(version) if version else None
    return None, None


def bare_arxiv_id(value: Any) -> tuple[str | None, int | None]:
    """An id given on its own (``2411.17700v2``, as in the HF API), else ``(None, None)``."""
    match = _BARE_ID.match(str(value or ""))
    if not match:
        return arxiv_id(value)
    version = match.group("version")
    return match.group("id"), int(version) if version else None


_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+)", re.IGNORECASE)


def find_doi(*candidates: Any) -> str | None:
    """The first DOI in the candidates (``doi:10.1/x``, ``https://doi.org/10.1/x``...)."""
    for value in candidates:
        if not value:
            continue
        match = _DOI.search(str(value))
        if match:
            return match.group(1).rstrip(".,;)")
    return None


def canonical_id(
    *, arxiv: str | None, doi: str | None, link: str | None, fallback: str | None = None
) -> str | None:
    """``2411.17700``, else ``doi:<doi lower-cased>``, else ``url:<hash of the link>``."""
    if arxiv:
        return arxiv
    if doi:
        return "doi:" + doi.lower()
    key = (link or "").strip() or (fallback or "").strip()
    if not key:
        return None
    return "url:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:20]


def arxiv_links(paper_id: str) -> tuple[str, str]:
    """Abstract page and PDF of an arXiv paper (latest version)."""
    return f"https://arxiv.org/abs/{paper_id}", f"https://arxiv.org/pdf/{paper_id}"


# -- arXiv RSS text ------------------------------------------------------------------

_ANNOUNCE_PREFIX = re.compile(
    r"^\s*arXiv:\S+\s+Announce\s+Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)


def strip_announce_prefix(abstract: str) -> tuple[str, str | None]:
    """Remove arXiv's ``arXiv:2411.17700v1 Announce Type: new Abstract:`` prefix."""
    match = _ANNOUNCE_PREFIX.match(abstract)
    if not match:
        return abstract, None
    return abstract[match.end() :].lstrip(), match.group("type").lower()


# -- authors ----------------------------------------------------------------------

_AND = re.compile(r"\s+(?:and|&)\s+", re.IGNORECASE)
_INITIALS = re.compile(r"^(?:[A-Z][a-z]?\.?(?:\s*-\s*|\s+)?)+$")
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "phd", "ph.d.", "md"})


def _split_top_level(text: str, sep: str) -> list[str]:
    if "(" not in text and "[" not in text and "{" not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _split_and(text: str) -> list[str]:
    """``text`` split on "and" / "&" outside brackets: "A (Physics and Astronomy) and B"
    is two names."""
    parts: list[str] = []
    start = seen = depth = 0
    for match in _AND.finditer(text):
        for ch in text[seen : match.start()]:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
        seen = match.start()
        if depth == 0:
            parts.append(text[start : match.start()])
            start = match.end()
    parts.append(text[start:])
    return parts


def split_authors(value: Any) -> list[str]:
    """Author names from one ``dc:creator``-style string: ``A, B and C`` -> ``[A, B, C]``.

    Commas and ``and`` inside parentheses (affiliations, collaborations) do not split;
    ``Smith, Jr.`` stays one name.
    """
    text = clean_line(value)
    if not text:
        return []
    sep = ";" if ";" in text else ","
    chunks = [c.strip() for c in _split_top_level(text, sep)]
    if (
        sep == ","
        and len(chunks) >= 2
        and len(chunks) % 2 == 0
        and all(_INITIALS.match(c) for c in chunks[1::2])
    ):
        # bioRxiv style "LAPALU, N., SIMON, A.": pairs of surname and initials.
        chunks = [f"{first} {last}" for last, first in zip(chunks[::2], chunks[1::2], strict=True)]
    names: list[str] = []
    for chunk in chunks:
        if not chunk:
            continue
        if names and chunk.lower() in _SUFFIXES:
            names[-1] = f"{names[-1]}, {chunk}"
            continue
        for name in _split_and(chunk):
            name = name.strip(" ,;")
            if name:
                names.append(name)
    return names


def unique(items: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return tuple(seen)


# -- dates ----------------------------------------------------------------------------


def from_struct(value: Any) -> datetime | None:
    """A feedparser ``*_parsed`` time tuple (always UTC) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 string (``2026-06-12T00:00:00.000Z``) as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# -- size bounds ------------------------------------------------------------------------

# A paper is at most this big, whatever a feed sends (one 15 MB title made a 35 MB email
# that relays refuse with 552, a permanent failure that counts towards suppression).
# Real papers are far inside: arXiv titles run to ~300 characters, abstracts to ~2,000,
# the largest collaborations to ~3,000 authors.
TITLE_MAX = 1_000
ABSTRACT_MAX = 20_000
AUTHOR_MAX = 300  # characters of one name
AUTHORS_MAX = 5_000
CATEGORY_MAX = 100
CATEGORIES_MAX = 50
URL_MAX = 2_048  # a longer link is dropped, not cut (a cut link is a broken link)
SIGNAL_ITEMS_MAX = 100


def _url(value: str | None) -> str | None:
    return value if value is None or len(value) <= URL_MAX else None


def _signal(value: Any) -> Any:
    if isinstance(value, str):
        return truncate(value, ABSTRACT_MAX)
    if isinstance(value, list):
        return [_signal(v) for v in value[:SIGNAL_ITEMS_MAX]]
    return value


def bounded(paper: Paper) -> Paper:
    """``paper`` with every field within the bounds above; the same object when it
    already is (the usual case)."""
    authors, categories = paper.authors, paper.categories
    fits = (
        len(paper.title) <= TITLE_MAX
        and len(paper.abstract) <= ABSTRACT_MAX
        and len(authors) <= AUTHORS_MAX
        and all(len(a) <= AUTHOR_MAX for a in authors)
        and len(categories) <= CATEGORIES_MAX
        and all(len(c) <= CATEGORY_MAX for c in categories)
        and all(len(u or "") <= URL_MAX for u in (paper.url, paper.pdf_url, paper.hf_url))
        and all(
            len(v) <= (ABSTRACT_MAX if isinstance(v, str) else SIGNAL_ITEMS_MAX)
            for v in paper.signals.values()
            if isinstance(v, str | list)
        )
    )
    if fits:
        return paper
    return replace(
        paper,
        title=truncate(paper.title, TITLE_MAX),
        abstract=truncate(paper.abstract, ABSTRACT_MAX),
        authors=tuple(truncate(a, AUTHOR_MAX) for a in authors[:AUTHORS_MAX]),
        categories=tuple(c for c in categories[:CATEGORIES_MAX] if len(c) <= CATEGORY_MAX),
        url=_url(paper.url) or "",
        pdf_url=_url(paper.pdf_url),
        hf_url=_url(paper.hf_url),
        signals={k: _signal(v) for k, v in paper.signals.items()},
    )

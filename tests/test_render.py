"""Rendering: golden files, hostile feed content, size, email-client hygiene, template errors.

Regenerate the golden files after an intended change with

    NEWSLETTER_REGEN=1 .venv/bin/python -m pytest tests/test_render.py

then review them with ``git diff tests/expected/`` before committing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from test_render_fixtures import LINKS, fixed_digest, paper, subscriber

from newsletter import render as render_mod
from newsletter.errors import NewsletterError, TemplateError
from newsletter.models import Digest, Interest, Paper, Pick, Section, Subscriber
from newsletter.render import (
    Renderer,
    clean,
    cut_abstract,
    default_templates,
    safe_url,
    short_authors,
    wrap,
)

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).parent / "expected"
REGEN = os.environ.get("NEWSLETTER_REGEN") == "1"
GMAIL_CLIP = 102 * 1024


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _compare_golden(name: str, actual: str) -> None:
    path = EXPECTED / name
    if REGEN:
        if os.environ.get("CI"):
            pytest.fail(
                "NEWSLETTER_REGEN=1 is not allowed in CI: golden files are reviewed by people"
            )
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == actual:
            return
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
        # Never green on a regeneration: a person must look at the change first.
        pytest.fail(
            f"regenerated {path}; review it with `git diff {path.relative_to(ROOT)}`, "
            "then re-run without NEWSLETTER_REGEN"
        )
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with NEWSLETTER_REGEN=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        # The HTML is one long line: diff it tag by tag so the change is readable.
        def split(s: str) -> list[str]:
            return re.sub(r">(?=<)", ">\n", s).splitlines(keepends=True)

        diff = "".join(
            difflib.unified_diff(
                split(expected), split(actual), f"expected/{name}", f"rendered/{name}", n=2
            )
        )
        print(diff)
        pytest.fail(
            f"{name} differs from {path} (diff above); if intended, regenerate with "
            "NEWSLETTER_REGEN=1 and review `git diff tests/expected/`"
        )


# --------------------------------------------------------------------------- golden files


def test_golden_html(renderer: Renderer) -> None:
    _compare_golden("digest.html", renderer.render(fixed_digest(), links=LINKS).html)


def test_golden_text(renderer: Renderer) -> None:
    _compare_golden("digest.txt", renderer.render(fixed_digest(), links=LINKS).text)


def test_golden_files_show_up_in_git_diff() -> None:
    """A regenerated golden file must be visible to review: present and not git-ignored."""
    for name in ("digest.html", "digest.txt"):
        path = EXPECTED / name
        assert path.is_file() and path.stat().st_size > 1000, f"{path} missing or tiny"
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip(
            "not a git checkout (or git missing): cannot check that tests/expected is tracked"
        )
    ignored = subprocess.run(
        [git, "check-ignore", "tests/expected/digest.html", "tests/expected/digest.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.returncode in (0, 1), ignored.stderr
    assert ignored.stdout == "", f"git-ignored, so a regeneration would hide: {ignored.stdout}"


def test_rendering_is_deterministic(renderer: Renderer) -> None:
    a = renderer.render(fixed_digest(), links=LINKS)
    b = Renderer().render(fixed_digest(), links=LINKS)
    assert a == b


# --------------------------------------------------------------------------- content


def test_subject_preheader_and_content(renderer: Renderer) -> None:
    digest = fixed_digest()
    email = renderer.render(digest, links=LINKS)
    assert email.subject == "Your paper digest, 29 Nov 2026: 8 papers on Time series and LLMs"
    assert email.preheader.startswith("Test-Time Adaptation for Long-Horizon Forecasting")
    assert email.preheader in email.html
    for pick in digest.picks:
        p = pick.paper
        for part in (email.html, email.text):
            assert p.title in part
            assert p.url in part
            assert p.pdf_url and p.pdf_url in part
            assert LINKS.feedback(p.id, +1) in part
            assert LINKS.feedback(p.id, -1) in part
            if p.hf_url:
                assert p.hf_url in part
        for reason in pick.reasons:
            assert reason.replace("'", "&#39;") in email.html
            assert reason in email.text
    for part in (email.html, email.text):
        assert LINKS.unsubscribe in part
        assert LINKS.preferences in part
        assert "29 November 2026" in part
        assert "ana@example.org" in part
    assert "&#9650; 31 upvotes" in email.html  # as a character reference: the HTML is ASCII
    assert "▲ 31 upvotes" in unescape(email.html)
    assert "Upvotes: 31" in email.text
    assert "AuthorA Surname2, AuthorB Surname2, AuthorC Surname2 et al." in email.text


def test_html_and_text_carry_the_same_links(renderer: Renderer) -> None:
    email = renderer.render(fixed_digest(10), links=LINKS)
    html_urls = set(re.findall(r'href="(https?://[^"]+)"', email.html))
    text_urls = set(re.findall(r"https?://\S+", email.text))
    assert text_urls == html_urls
    assert len(text_urls) > 40


def test_subject_pluralises_and_names_many_interests(renderer: Renderer) -> None:
    one = fixed_digest(1)
    assert renderer.render(one, links=LINKS).subject == (
        "Your paper digest, 29 Nov 2026: 1 paper on Time series"
    )
    p = paper(1, "x", "Title", "cs.LG", "x")
    sections = tuple(Section(f"Topic {i}", (Pick(p, 1.0, f"Topic {i}"),)) for i in range(5))
    many = replace(one, sections=sections)
    assert renderer.render(many, links=LINKS).subject == (
        "Your paper digest, 29 Nov 2026: 5 papers on Topic 0, Topic 1, Topic 2 and 2 more"
    )


def test_empty_digest_renders_its_reason(renderer: Renderer) -> None:
    digest = Digest(
        subscriber=subscriber(),
        edition="2026-11-29",
        edition_date=date(2026, 11, 29),
        empty_reason="no papers scored above min_score 0.4",
    )
    email = renderer.render(digest, links=LINKS)
    assert email.subject == "Your paper digest, 29 Nov 2026: no new papers"
    assert "no papers scored above min_score 0.4" in email.html
    assert "no papers scored above min_score 0.4" in email.text
    assert LINKS.unsubscribe in email.html and LINKS.unsubscribe in email.text
    # New papers, none for this reader: the subject does not say there were none.
    some = renderer.render(replace(digest, candidates=1096), links=LINKS)
    assert some.subject == "Your paper digest, 29 Nov 2026: nothing new for you"
    assert "Picked from 1096 new papers." in some.text


def test_paper_without_links_or_authors(renderer: Renderer) -> None:
    bare = Paper(id="doi:10.1/abc", title="Only a title")
    digest = replace(fixed_digest(1), sections=(Section("Misc", (Pick(bare, 0.1, "Misc"),)),))
    email = renderer.render(digest, links=LINKS)
    assert "Only a title" in email.html and "Only a title" in email.text
    assert ">Abstract<" not in email.html
    assert "Abstract:" not in email.text
    assert LINKS.feedback("doi:10.1/abc", -1) in email.text


# --------------------------------------------------------------------------- hostile content

HOSTILE = "<script>alert(1)</script></mj-text>{{ 7*7 }}{% raw %}\r\nBcc: evil@x.test\u202e"


def _hostile_digest() -> Digest:
    evil = Paper(
        id="2611.66666",
        title=HOSTILE,
        abstract=f"Abstract with {HOSTILE} and <img src=x onerror=alert(1)> inside.",
        authors=(HOSTILE, "B. Normal"),
        categories=("cs.LG", "<b>bold</b>"),
        url="javascript:alert(1)",
        pdf_url='https://x.test/a.pdf" onmouseover="alert(1)',
        hf_url="https://huggingface.co/papers/2611.66666",
        signals={"upvotes": "99<script>"},
    )
    sub = Subscriber(
        email="ana@example.org",
        name="Ana </mj-text>{{ name }}",
        interests=(Interest("Evil {% if %}\r\nX-Header: 1", description=HOSTILE),),
    )
    return Digest(
        subscriber=sub,
        edition="2026-11-29",
        edition_date=date(2026, 11, 29),
        sections=(Section(sub.interests[0].name, (Pick(evil, 1.0, "x", (HOSTILE,)),)),),
    )


def test_hostile_feed_content_renders_as_text(renderer: Renderer) -> None:
    email = renderer.render(_hostile_digest(), links=LINKS)
    html, text = email.html, email.text
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/mj-text&gt;{{ 7*7 }}{% raw %}" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "{{ 7*7 }}" in text and "49" not in text  # never evaluated
    assert "{% raw %}" in text
    assert "<script>alert(1)</script></mj-text>{{ 7*7 }}{% raw %} Bcc: evil@x.test" in text
    assert "\r" not in html and "\r" not in text
    assert "\u202e" not in html and "\u202e" not in text
    assert "javascript:" not in html and "javascript:" not in text
    assert "onmouseover" not in html and "onmouseover" not in text
    assert "99&lt;script" not in html and "99<script>" not in text  # non-int upvotes dropped
    assert "\n" not in email.subject and "\r" not in email.subject
    assert "\n" not in email.preheader
    assert "Ana &lt;/mj-text&gt;{{ name }}" in html


def test_clean_and_safe_url() -> None:
    assert clean("a\r\n\tb\x00c\u202ed  ") == "a bcd"
    assert clean(None) == ""
    assert safe_url("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "//x.test/a",
        "http://a b",
        "ftp://x/y",
        'https://x.test/"',
        "https://x.test/a\nb",
        None,
        42,
        "https://",
    ):
        assert safe_url(bad) is None, bad


# --------------------------------------------------------------------------- helpers


def test_cut_abstract_at_sentence_boundary() -> None:
    sentence = "This is a sentence about forecasting with transformers and more words. "
    text = sentence * 20
    cut = cut_abstract(text)
    assert len(cut) <= 600 and cut.endswith("more words.")
    assert len(cut) > 500
    assert cut_abstract("Short. Abstract.") == "Short. Abstract."
    # "e.g." is not a sentence end
    tricky = "A" * 560 + " e.g. Bbb is long and continues well past the limit " + "x " * 100
    assert not cut_abstract(tricky).endswith("e.g.")
    # one enormous sentence: cut at a word, with an ellipsis
    long = "word " * 300
    cut = cut_abstract(long)
    assert cut.endswith("…") and len(cut) <= 600 and " wor…" not in cut


def test_short_authors() -> None:
    assert short_authors(["A", "B", "C", "D", "E"]) == "A, B, C, D, E"
    assert short_authors(["A", "B", "C", "D", "E", "F"]) == "A, B, C et al."
    assert short_authors([]) == ""


def test_text_wraps_at_78_and_never_breaks_urls(renderer: Renderer) -> None:
    long_title = "Supercalifragilistic " * 12
    p = replace(
        paper(3, "x", long_title, "cs.LG", "x"),
        url="https://example.org/" + "very-long-path-segment/" * 6,
    )
    digest = replace(fixed_digest(3), sections=(Section("Long", (Pick(p, 1.0, "Long"),)),))
    text = renderer.render(digest, links=LINKS).text
    for line in text.splitlines():
        if len(line) > 78:
            assert re.search(r"https?://\S+$", line), f"overlong line without a URL: {line!r}"
    assert p.url in text.split()
    assert wrap("x " * 100, "  ").count("\n") >= 2


# --------------------------------------------------------------------------- email clients


def test_ten_paper_digest_is_well_under_gmail_clip(renderer: Renderer) -> None:
    email = renderer.render(fixed_digest(10), links=LINKS)
    size = len(email.html.encode("utf-8"))
    assert size < 0.75 * GMAIL_CLIP, f"10-paper digest is {size} bytes"


def test_real_papers_ten_longest_stay_under_clip(renderer: Renderer, shared_data: Path) -> None:
    rows = []
    path = shared_data / "papers" / "daily-arxiv-ai-enhanced_cs.CV-cs.CL-cs.AI_2026-06-30.jsonl"
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rows.sort(key=lambda r: len(r["title"]) + len(r["summary"]) + 20 * len(r["authors"]))
    picks = tuple(
        Pick(
            Paper(
                id=r["id"],
                title=r["title"],
                abstract=r["summary"],
                authors=tuple(r["authors"]),
                categories=tuple(r["categories"]),
                url=r["abs"],
                pdf_url=r["pdf"],
            ),
            1.0,
            "Real",
            ("matches keyword 'vision'",),
        )
        for r in rows[-10:]
    )
    digest = replace(fixed_digest(1), sections=(Section("Real", picks),))
    email = renderer.render(digest, links=LINKS)
    assert len(email.html.encode()) < 0.75 * GMAIL_CLIP
    for pick in picks:
        assert pick.paper.url in email.text
        assert clean(pick.paper.title)[:40] in email.text.replace("\n    ", " ")


def test_html_hygiene(renderer: Renderer) -> None:
    html = renderer.render(fixed_digest(10), links=LINKS).html
    assert re.search(r'<html[^>]* lang="en"', html)
    assert '<meta name="color-scheme" content="light dark"' in html
    assert "prefers-color-scheme: dark" in html
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered  # no external CSS or fonts
    assert "@import" not in lowered
    assert "<img" not in lowered  # no tracking pixel, no remote images
    assert "fonts.googleapis" not in lowered
    assert not re.search(r'\bsrc="', lowered)
    assert "{{" not in html and "{%" not in html
    # CSS inlined once at construction: the classes' colours are on the elements
    assert 'class="title"' in html and "font-size: 18px" in html


class _TextStyles(HTMLParser):
    """Every visible text run with its effective font size, colour and background."""

    VOID: ClassVar[set[str]] = {
        "meta",
        "br",
        "img",
        "hr",
        "input",
        "link",
        "col",
        "area",
        "base",
        "wbr",
        "source",
    }

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = [("root", {})]
        self.runs: list[tuple[str, int, str, str]] = []  # text, px, colour, background
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        props = {}
        for decl in style.split(";"):
            if ":" in decl:
                key, value = decl.split(":", 1)
                props[key.strip().lower()] = value.strip().lower()
        if "background" in props and "background-color" not in props:
            props["background-color"] = props["background"].split()[0]
        bgcolor = dict(attrs).get("bgcolor")
        if bgcolor:
            props["background-color"] = bgcolor.lower()
        if tag in ("title", "style", "head"):
            props["display"] = "none"
        if tag not in self.VOID:
            self.stack.append((tag, props))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def _effective(self, key: str, default: str) -> str:
        for _, props in reversed(self.stack):
            if key in props:
                return props[key]
        return default

    def handle_data(self, data: str) -> None:
        if not data.strip() or any(p.get("display") == "none" for _, p in self.stack):
            return
        size = self._effective("font-size", "16px")
        px = int(re.match(r"\d+", size).group(0)) if re.match(r"\d+", size) else 16
        self.runs.append(
            (
                data.strip(),
                px,
                self._effective("color", "#000000"),
                self._effective("background-color", "#ffffff"),
            )
        )


def _luminance(hex_: str) -> float:
    hex_ = hex_.lstrip("#")
    if len(hex_) == 3:
        hex_ = "".join(c * 2 for c in hex_)
    channels = [int(hex_[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_visible_text_is_readable(renderer: Renderer) -> None:
    """No tiny text and WCAG AA contrast for every text run (SpamAssassin's
    HTML_FONT_LOW_CONTRAST looks at the same colour/background pairs)."""
    parser = _TextStyles()
    parser.feed(renderer.render(fixed_digest(), links=LINKS).html)
    assert len(parser.runs) > 100
    assert any("Test-Time Adaptation" in run[0] for run in parser.runs)
    for text, px, colour, background in parser.runs:
        assert px >= 13, f"{text[:40]!r} is {px}px"
        ratio = _contrast(colour, background)
        assert ratio >= 4.5, f"{text[:40]!r}: {colour} on {background} is {ratio:.1f}:1"


class _Outline(HTMLParser):
    """Headings (level, text) and links (href, accessible name) as a screen reader lists them."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[int, str]] = []
        self.links: list[tuple[str, str]] = []
        self._heading: list[str] | None = None
        self._link: tuple[str, str | None, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = [tag]
        elif tag == "a":
            found = dict(attrs)
            self._link = (found.get("href") or "", found.get("aria-label"), [])

    def handle_endtag(self, tag: str) -> None:
        if self._heading and tag == self._heading[0]:
            level, text = int(tag[1]), " ".join("".join(self._heading[1:]).split())
            self.headings.append((level, text))
            self._heading = None
        elif tag == "a" and self._link is not None:
            href, label, text = self._link
            self.links.append((href, label or " ".join("".join(text).split())))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)
        if self._link is not None:
            self._link[2].append(data)


def test_screen_reader_outline_and_link_names(renderer: Renderer) -> None:
    """A screen reader can jump from paper to paper by heading (h1 the greeting, h2 an
    interest, h3 a paper), and every link's name says which paper it is about: a list of
    links does not read "More like this" ten times."""
    digest = fixed_digest(10)
    outline = _Outline()
    outline.feed(renderer.render(digest, links=LINKS).html)
    expected: list[tuple[int, str]] = [(1, "Ana, here are 10 new papers")]
    for section in digest.sections:
        expected.append((2, section.interest))
        expected.extend((3, pick.paper.title) for pick in section.picks)
    assert outline.headings == expected
    names: dict[str, set[str]] = {}
    for href, name in outline.links:
        names.setdefault(name, set()).add(href)
    same_name = {name: hrefs for name, hrefs in names.items() if len(hrefs) > 1}
    assert not same_name, f"links with one name for different targets: {sorted(same_name)}"
    first = digest.sections[0].picks[0].paper
    for label in ("Abstract", "PDF", "Hugging Face", "More like this", "Less like this"):
        assert f"{label}: {first.title}" in names, label


def test_meta_separator_never_starts_a_line(renderer: Renderer) -> None:
    """The dot between the authors and the category chips is tied to the authors by a
    no-break space, so on a phone a wrapped line never starts with a lone dot."""
    html = renderer.render(fixed_digest(10), links=LINKS).html
    meta = re.findall(r'<p class="meta"[^>]*>(.*?)</p>', html, re.S)
    assert len(meta) == 10
    toc = re.findall(r'<p class="toc"[^>]*>(.*?)</p>', html, re.S)
    for line in meta + toc:
        seps = re.findall(r'<span class="sep"[^>]*>(.*?)</span>', line)
        assert seps == ["&nbsp;&#183; "], line


# --------------------------------------------------------------------------- compile once


def test_mjml_and_css_run_only_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = Renderer()

    def boom(*args: object, **kwargs: object) -> str:
        raise AssertionError("MJML/CSS must not run per subscriber")

    monkeypatch.setattr(render_mod.mjml, "mjml2html", boom)
    monkeypatch.setattr(render_mod.css_inline, "CSSInliner", boom)
    email = renderer.render(fixed_digest(), links=LINKS)
    assert "Test-Time Adaptation" in email.html


def test_jinja_tags_survive_compilation_in_order() -> None:
    renderer = Renderer()
    source = (default_templates() / "digest.mjml").read_text()
    compiled = renderer.compiled_html
    jinja = re.compile(r"\{%.*?%\}", re.S)
    # comments are stripped by MJML; the block tags must all survive, in order
    body = re.sub(r"<!--.*?-->", "", source, flags=re.S)
    assert jinja.findall(compiled) == jinja.findall(body)


# --------------------------------------------------------------------------- templates


def test_default_templates_is_the_repo_folder() -> None:
    folder = default_templates()
    assert (folder / "digest.mjml").is_file() and (folder / "digest.txt").is_file()
    assert folder == Path(__file__).resolve().parent.parent / "templates"


def _user_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "tpl"
    shutil.copytree(default_templates(), folder)
    return folder


def test_user_template_folder_is_used(tmp_path: Path) -> None:
    folder = _user_templates(tmp_path)
    (folder / "subject.txt").write_text("Custom {{ edition_date }}\r\n  for {{ name }}\n")
    (folder / "digest.txt").unlink()  # missing files come from the packaged folder
    email = Renderer(folder).render(fixed_digest(), links=LINKS)
    assert email.subject == "Custom 29 Nov 2026 for Ana"
    assert "PAPER DIGEST" in email.text


@pytest.mark.parametrize(
    ("name", "broken", "line", "what"),
    [
        ("digest.mjml", "{% for x in sections %}\n", None, "Unexpected end of template"),
        ("digest.mjml", "<p>{{ paper.nope }}</p>\n", None, "has no attribute 'nope'"),
        ("digest.txt", "line one\n{{ bogus_variable }}\n", 2, "'bogus_variable' is undefined"),
        ("digest.txt", "{% if %}\n", 1, "Expected an expression"),
        ("subject.txt", "{{ 1 + }}", 1, "unexpected"),
    ],
)
def test_broken_template_names_file_and_line(
    tmp_path: Path, name: str, broken: str, line: int | None, what: str
) -> None:
    folder = _user_templates(tmp_path)
    path = folder / name
    if name == "digest.mjml":
        source = path.read_text()
        anchor = "          {% if paper.abstract %}"
        if "paper.nope" in broken:
            source = source.replace(anchor, broken + anchor, 1)
        else:
            source = source.replace("<mj-raw>{% endfor %}</mj-raw>\n", "", 1)
        line = None
        path.write_text(source)
    else:
        path.write_text(broken)
    with pytest.raises(TemplateError) as info:
        Renderer(folder)
    message = str(info.value)
    assert isinstance(info.value, NewsletterError)
    assert message.startswith(f"{path}:"), message
    assert what.lower() in message.lower(), message
    number = int(message[len(str(path)) + 1 :].split(":", 1)[0])
    if line is not None:
        assert number == line, message
    else:
        assert number > 1, message
    if "paper.nope" in broken:
        assert number == source[: source.index("paper.nope")].count("\n") + 1


def test_broken_mjml_names_file_and_line(tmp_path: Path) -> None:
    folder = _user_templates(tmp_path)
    path = folder / "digest.mjml"
    source = path.read_text().replace("</mj-column>", "", 1)  # unclosed column
    path.write_text(source)
    with pytest.raises(TemplateError) as info:
        Renderer(folder)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "MJML" in message, message
    number = int(message[len(str(path)) + 1 :].split(":", 1)[0])
    assert number > 1, message


def test_missing_template_folder(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"template folder not found .*`templates:`"):
        Renderer(tmp_path / "nope")


def test_paper_cache_keys_on_upvotes(renderer: Renderer) -> None:
    """Paper.signals is not part of its hash: the per-paper cache must still see new upvotes."""
    base = paper(3, "x", "Cached title", "cs.LG", "x")
    for votes in (5, 77):
        p = replace(base, signals={"upvotes": votes})
        digest = replace(fixed_digest(1), sections=(Section("S", (Pick(p, 1.0, "S"),)),))
        assert f"Upvotes: {votes}" in renderer.render(digest, links=LINKS).text


def test_wheel_ships_every_template() -> None:
    """pyproject's data-files list names every file in templates/ (what a wheel installs)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["data-files"]["share/newsletter/templates"]
    on_disk = sorted(f"templates/{p.name}" for p in (ROOT / "templates").iterdir() if p.is_file())
    assert sorted(shipped) == on_disk
    assert set(render_mod.TEMPLATE_FILES) <= {Path(p).name for p in shipped}


# --------------------------------------------------------------------------- wide text


def test_chinese_text_wraps_at_78_columns_in_the_text_part(renderer: Renderer, shared_data) -> None:
    """Titles and abstracts in Chinese have no spaces: the text part had lines of 200+
    characters (400 columns). Wide characters count two columns and a line may break
    between them; nothing is lost or reordered. The real cn-chat-arxiv feed."""
    from newsletter.config import SourceConfig
    from newsletter.render import columns
    from newsletter.sources import parse_bytes

    feed = shared_data / "feeds" / "odd_community_rss_cn-chat-arxiv_cs.CL_2026-08-17.xml"
    source = SourceConfig(name="cn", type="feed", url=str(feed))
    papers = parse_bytes(source, feed.read_bytes()).papers[:8]
    assert len(papers) == 8 and all(render_mod._WIDE.search(p.title) for p in papers)
    digest = Digest(
        subscriber=subscriber(),
        edition="2026-08-17",
        edition_date=date(2026, 8, 17),
        sections=(Section("语言模型", tuple(Pick(p, 0.5, "语言模型", ("匹配",)) for p in papers)),),
        candidates=8,
    )
    text = renderer.render(digest, links=LINKS).text
    for line in text.splitlines():
        # (only a link or an unbreakable run of non-wide characters may be longer)
        assert columns(line) <= 78 or "https://" in line or " " not in line.strip(), line
    # Every title is all there, in order, once the breaks and indents are taken out.
    flat = "".join(text.replace(" ", "").split("\n"))
    for p in papers:
        assert clean(p.title).replace(" ", "") in flat


def test_wide_wrapping_keeps_every_character_and_its_spaces() -> None:
    import random

    from newsletter.render import _textwrap_fill, columns, wrap

    rng = random.Random(3)
    pieces = ["语", "言模型", "日本語", "한국어", "GPT-4", "x" * 90, "ab", "。", "，", "ü"]
    for _ in range(2000):
        text = clean(" ".join(rng.choice(pieces) * rng.randint(1, 6) for _ in range(12)))
        indent = rng.choice(["", "    "])
        first = rng.choice([None, "[12] ", "    "])
        width = rng.choice([10, 40, 78])
        got = wrap(text, indent, first, width)
        lead = indent if first is None else first
        lines = got.split("\n")
        assert lines[0].startswith(lead) and all(ln.startswith(indent) for ln in lines[1:])
        bodies = [lines[0][len(lead) :]] + [ln[len(indent) :] for ln in lines[1:]]
        assert "".join(bodies).replace(" ", "") == text.replace(" ", "")  # nothing lost
        assert sum(b.count(" ") for b in bodies) <= text.count(" ")  # no space added
        for line, body in zip(lines, bodies, strict=True):
            assert columns(line) <= width or (
                " " not in body and not render_mod._WIDE.search(body)
            ), (line, width)
    # Text without wide characters is wrapped as textwrap wraps it, as before.
    plain = "Schrödinger équations for très long titles " * 4
    assert wrap(plain, "    ", "[1] ") == _textwrap_fill(clean(plain), "    ", "[1] ", 78)

"""A hostile or broken feed cannot make a paper (or an email) arbitrarily big.

Through the real CLI in a subprocess: a local RSS file with a 3 MB title, a 200,000
character abstract, 20,000 authors and 10,000 categories is fetched into a real SQLite
state and sent to the outbox; the .eml a reader gets stays email-sized.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from cli_support import run_cli

from newsletter.models import Paper
from newsletter.sources import normalize
from newsletter.sources.normalize import bounded
from newsletter.store import Store
from newsletter.textutil import truncate

ID = "2611.99999"


def _huge_feed(path: Path) -> None:
    title = "Attention " * 300_000  # 3 MB
    abstract = "A long abstract about attention. " * 6_000  # ~200,000 characters
    authors = ", ".join(f"Author Number{i}" for i in range(20_000))
    cats = "".join(f"<category>cat-{i}</category>" for i in range(10_000))
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
        "<link>https://example.org/</link><description>d</description><item>"
        f"<title>{escape(title)}</title><link>https://arxiv.org/abs/{ID}</link>"
        f"<guid>https://arxiv.org/abs/{ID}</guid><description>{escape(abstract)}</description>"
        f"<dc:creator>{escape(authors)}</dc:creator>{cats}"
        "<pubDate>Sun, 29 Nov 2026 00:00:00 GMT</pubDate></item></channel></rss>",
        encoding="utf-8",
    )


def test_a_huge_entry_is_stored_bounded_and_mailed_at_a_normal_size(tmp_path: Path) -> None:
    feed = tmp_path / "huge.xml"
    _huge_feed(feed)
    assert feed.stat().st_size > 3_000_000
    (tmp_path / "cfg.yaml").write_text(
        f"state: {tmp_path / 'state.db'}\n"
        f"sources: [{{name: huge, type: feed, url: {feed}}}]\n"
        f"delivery: {{transport: outbox, outbox: {tmp_path / 'outbox'}, "
        "from: 'Digest <digest@example.org>'}\n"
        "defaults: {timezone: UTC, lookback_days: 100000}\n"
        "subscribers:\n  - email: ada@example.org\n"
        "    interests: [{name: Attention, keywords: [attention]}]\n",
        encoding="utf-8",
    )
    fetched = run_cli("--config", "cfg.yaml", "fetch", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    with Store(tmp_path / "state.db") as store:
        paper = store.get_paper(ID)
    assert paper is not None
    assert len(paper.title) <= normalize.TITLE_MAX and paper.title.endswith("…")
    assert paper.title.startswith("Attention Attention")
    assert len(paper.abstract) <= normalize.ABSTRACT_MAX
    assert len(paper.authors) == normalize.AUTHORS_MAX
    assert paper.authors[:2] == ("Author Number0", "Author Number1")
    assert len(paper.categories) == normalize.CATEGORIES_MAX

    sent = run_cli("--config", "cfg.yaml", "send", "--no-fetch", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    (eml,) = (tmp_path / "outbox").rglob("*.eml")
    assert eml.stat().st_size < 500_000  # (unbounded: 35 MB, refused by relays with 552)


def test_bounded_keeps_a_normal_paper_as_it_is_and_cuts_at_a_word() -> None:
    normal = Paper(id="2411.00001", title="A title", abstract="An abstract.", authors=("A B",))
    assert bounded(normal) is normal
    assert truncate("one two three", 9) == "one two…"
    assert truncate("abcdefghijkl", 6) == "abcde…"  # no space to cut at: cut inside
    long_url = Paper(id="x", title="t", url="https://example.org/" + "a" * 3000)
    assert bounded(long_url).url == ""  # a cut link would be a broken link
    signals = Paper(id="y", title="t", signals={"ai_keywords": list(range(500)), "n": 3})
    assert bounded(signals).signals == {
        "ai_keywords": list(range(normalize.SIGNAL_ITEMS_MAX)),
        "n": 3,
    }


def test_a_deeply_nested_json_body_is_not_a_feed_not_a_bug() -> None:
    from newsletter.config import SourceConfig
    from newsletter.sources import parse_bytes

    body = b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for type_ in ("jsonfeed", "hf_daily"):
        result = parse_bytes(SourceConfig(name="deep", type=type_, url="deep.json"), body)
        assert result.papers == []
        assert result.errors == [
            "source 'deep': not a feed: the body is nested too deeply to be one"
        ], result.errors

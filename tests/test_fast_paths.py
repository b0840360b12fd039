"""The speed-ups of issue 8 change no output: each fast path is checked against the plain
way of doing the same thing (textwrap, json.dumps + hmac, templates without cache blocks,
the four-step ledger checks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from test_render_fixtures import LINKS, fixed_digest

from newsletter.delivery import deliver
from newsletter.models import DeliveryResult, Digest, OutgoingMessage, Pick, Section
from newsletter.render import (
    FRAGMENT_CACHE_MAX,
    FragmentCache,
    Renderer,
    _fill,
    _textwrap_fill,
    _tidy_lines,
    clean,
    default_templates,
    output_escape,
    tidy_text,
    without_cache_blocks,
    wrap,
)
from newsletter.signing import BadToken, Links, _b64, _mac, sign, verify, verify_feedback
from newsletter.store import PENDING, SENDING, SENT, UNSUBSCRIBED

# --------------------------------------------------------------------------- wrapping


def test_greedy_fill_matches_textwrap_on_random_cleaned_text() -> None:
    rng = random.Random(8)
    pieces = ["a", "bb", "ccc", "x" * 10, "y" * 30, "z" * 90, "ü", "long-hyphen-word", "é—"]
    checked = 0
    for _ in range(3000):
        raw = "".join(rng.choice(pieces) + rng.choice([" ", "", "\n", "\t"]) for _ in range(40))
        text = clean(raw[: rng.randint(1, len(raw))])
        if not text:
            continue
        indent = " " * rng.choice([0, 1, 4, 9])
        lead = rng.choice([indent, "[12] ", "", "    "])
        width = rng.choice([1, 5, 20, 78, 100])
        assert _fill.__wrapped__(text, indent, lead, width) == _textwrap_fill(
            text, indent, lead, width
        ), (text, indent, lead, width)
        checked += 1
    assert checked > 2500


def test_wrap_with_a_per_reader_prefix_is_what_textwrap_makes() -> None:
    title = "Scaling Laws for Retrieval-Augmented Reasoning in Very Long Contexts " * 2
    for number in (1, 9, 10, 123):
        first = f"[{number}] ".ljust(4)
        got = wrap(title, "    ", first)
        assert got == _textwrap_fill(clean(title), "    ", first, 78)
        assert got.startswith(f"[{number}]")


def test_wrap_rejects_a_width_textwrap_rejects() -> None:
    with pytest.raises(ValueError, match="invalid width"):
        wrap("two words", "", None, 0)


# --------------------------------------------------------------------------- fragment cache


def _without_cache_tags(folder: Path) -> Path:
    """A copy of the packaged templates with every cache block made a plain ``if true``
    block: the same body and the same whitespace control (``{%-``, ``-%}``), no cache."""
    for name in ("digest.mjml", "digest.txt", "subject.txt"):
        text = (default_templates() / name).read_text(encoding="utf-8")
        (folder / name).write_text(without_cache_blocks(text), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def renderers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Renderer, Renderer]:
    plain = _without_cache_tags(tmp_path_factory.mktemp("plain"))
    assert "cache" not in (plain / "digest.txt").read_text().replace('cache paper.key" b', "")
    return Renderer(), Renderer(plain)


def _digest_for(n: int) -> Digest:
    """The fixed digest for another reader: other numbers order and reasons."""
    base = fixed_digest(10)
    sections = []
    for s in reversed(base.sections):
        picks = tuple(
            replace(p, reasons=(f"reader {n} matched '{p.paper.title[:12]}' & <b>",) * (n % 3))
            for p in reversed(s.picks)
        )
        sections.append(Section(s.interest, picks))
    sub = replace(base.subscriber, email=f"reader{n}@example.org", name=f"Reader {n}")
    return replace(base, subscriber=sub, sections=tuple(sections))


def test_cached_fragments_render_exactly_what_the_plain_templates_render(
    renderers: tuple[Renderer, Renderer],
) -> None:
    cached, plain = renderers
    digests = [fixed_digest(10)] + [_digest_for(n) for n in range(6)]
    for _ in range(2):  # the second round is served from the cache
        for d in digests:
            links = Links(LINKS.base_url, LINKS.secret, d.subscriber.email)
            assert cached.render(d, links=links) == plain.render(d, links=links)
    ext = cached._html_env.extensions[FragmentCache.identifier]
    assert isinstance(ext, FragmentCache)
    assert 0 < len(ext.fragments) <= 2 * 10  # two blocks per paper, whoever reads it


def test_a_changed_paper_is_not_served_from_an_old_fragment(
    renderers: tuple[Renderer, Renderer],
) -> None:
    cached, plain = renderers
    digest = fixed_digest(3)
    cached.render(digest, links=LINKS)
    first = digest.sections[0].picks[0]
    renamed = replace(first.paper, title="A Corrected Title <v2>")
    changed = replace(
        digest,
        sections=(
            Section(
                digest.sections[0].interest,
                (replace(first, paper=renamed), *digest.sections[0].picks[1:]),
            ),
        ),
    )
    out = cached.render(changed, links=LINKS)
    assert "A Corrected Title &lt;v2&gt;" in out.html
    assert "A Corrected Title <v2>" in out.text
    assert out == plain.render(changed, links=LINKS)


def test_the_fragment_cache_is_bounded(renderers: tuple[Renderer, Renderer]) -> None:
    cached, _ = renderers
    ext = cached._text_env.extensions[FragmentCache.identifier]
    assert isinstance(ext, FragmentCache)
    for i in range(FRAGMENT_CACHE_MAX + 5):
        ext._put("x", 0, ("bound", i))
    assert len(ext.fragments) <= FRAGMENT_CACHE_MAX


def test_a_custom_template_may_use_cache_blocks_with_any_key(tmp_path: Path) -> None:
    shutil.copy(default_templates() / "digest.txt", tmp_path / "digest.txt")
    (tmp_path / "subject.txt").write_text(
        "{% cache edition %}Digest {{ edition_date }}{% endcache %}: {{ summary }}\n"
    )
    renderer = Renderer(tmp_path)
    a = renderer.render(fixed_digest(2), links=LINKS)
    b = renderer.render(fixed_digest(5), links=LINKS)
    assert a.subject == "Digest 29 Nov 2026: 2 papers on Time series"
    assert b.subject == "Digest 29 Nov 2026: 5 papers on Time series"


# --------------------------------------------------------------------------- signing


def _reference_sign(secret: str, purpose: str, payload: dict[str, object]) -> str:
    """The token format as first written: json.dumps(sort_keys) + hmac.new."""
    body = base64.urlsafe_b64encode(
        json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    )
    body_s = body.rstrip(b"=").decode()
    mac = hmac.new(secret.encode(), f"{purpose}.{body_s}".encode(), hashlib.sha256).digest()
    return f"{body_s}.{base64.urlsafe_b64encode(mac[:18]).rstrip(b'=').decode()}"


@pytest.mark.parametrize("secret", ["", "k", "x" * 64, "long-" * 40, "ключ"])
@pytest.mark.parametrize("paper_id", ["2411.00001", 'doi:10.1/x"y', "ü\u2028<&>", ""])
def test_feedback_tokens_are_the_readers_signed_token_the_vote_and_the_paper(
    secret: str, paper_id: str
) -> None:
    links = Links("https://news.example.org/", secret, "Ana.Ü@example.org")
    reader = _reference_sign(secret, "vote", {"s": "Ana.Ü@example.org"})
    paper = base64.urlsafe_b64encode(paper_id.encode()).rstrip(b"=").decode()
    for vote in (1, -1):
        url = links.feedback(paper_id, vote)
        assert url == f"https://news.example.org/feedback/{reader}.{vote}.{paper}"
        token = url.rsplit("/", 1)[1]
        want = {"s": "Ana.Ü@example.org", "p": paper_id, "v": vote}
        assert verify_feedback(secret, token) == want
        # The per-link tokens of emails sent before still verify, to the same thing.
        assert verify_feedback(secret, _reference_sign(secret, "feedback", want)) == want
    for purpose in ("unsubscribe", "preferences"):
        url = getattr(links, purpose)
        assert url == "https://news.example.org/{}/{}".format(
            purpose, _reference_sign(secret, purpose, {"s": links.subscriber})
        )
        assert verify(secret, purpose, url.rsplit("/", 1)[1]) == {"s": links.subscriber}


def test_a_feedback_token_names_its_reader_and_nothing_else_signs_for_one() -> None:
    a = Links("https://x.example", "s", "a@example.org")
    b = Links("https://x.example", "s", "b@example.org")
    token_a = a.feedback("p1", 1).rsplit("/", 1)[1]
    body_a, mac_a, vote, paper = token_a.split(".")
    body_b, mac_b, _, _ = b.feedback("p1", 1).rsplit("/", 1)[1].split(".")
    assert verify("s", "vote", f"{body_a}.{mac_a}") == {"s": "a@example.org"}
    unsubscribe = a.unsubscribe.rsplit("/", 1)[1]
    for bad in (
        f"{body_a}.{mac_b}.{vote}.{paper}",  # b's signature under a's name
        f"{body_b}.{mac_a}.{vote}.{paper}",
        f"{unsubscribe}.{vote}.{paper}",  # a's token for another purpose
        f"{body_a}.{mac_a}.one.{paper}",  # not a vote
        f"{body_a}.{mac_a}.{vote}.p!1",  # not base64
        f"{token_a}.x",  # not a token at all
    ):
        with pytest.raises(BadToken):
            verify_feedback("s", bad)
    with pytest.raises(BadToken):  # another secret
        verify_feedback("other", token_a)


def test_odd_vote_types_take_the_general_path() -> None:
    links = Links("https://x.example", "s", "a@example.org")
    token = links.feedback("p1", True).rsplit("/", 1)[1]  # type: ignore[arg-type]
    assert token == sign("s", "feedback", {"s": "a@example.org", "p": "p1", "v": True})
    assert verify("s", "feedback", token)["v"] is True


def test_mac_and_b64_helpers_match_the_standard_library() -> None:
    rng = random.Random(3)
    for _ in range(200):
        secret = "".join(rng.choice("aü0-") for _ in range(rng.randint(0, 100)))
        body = "".join(rng.choice("ab.ü") for _ in range(rng.randint(0, 50)))
        want = hmac.new(secret.encode(), f"p.{body}".encode(), hashlib.sha256).digest()
        assert _mac(secret, "p", body) == want
        data = rng.randbytes(rng.randint(0, 40))
        assert _b64(data) == base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------- ledger


def _message(who: str, edition: str = "2026-11-29") -> OutgoingMessage:
    return OutgoingMessage(who, edition, f"{who}.id@x", b"data", "from@example.org", ("p1",))


class _Recorder:
    name = "recorder"
    concurrency = 2

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.states: list[str] = []

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        row = self.store.delivery(message.subscriber, message.edition)
        self.states.append(row.state)  # what the ledger said while the server was talking
        return DeliveryResult(message.subscriber, message.edition, message.message_id, ok=True)

    def close(self) -> None:
        pass


def test_claim_active_claims_only_pending_rows_of_active_subscribers(store) -> None:  # type: ignore[no-untyped-def]
    for who in ("a@x.org", "b@x.org", "c@x.org"):
        store.prepare_delivery(who, "e1", message_id=f"{who}.id", paper_ids=["p"])
    store.set_subscriber_status("b@x.org", UNSUBSCRIBED, "link")
    store.mark_sent("c@x.org", "e1")
    row = store.claim_active("a@x.org", "e1", worker="w")
    assert row is not None and row.state == SENDING and row.attempts == 1
    assert store.claim_active("a@x.org", "e1", worker="w") is None  # already claimed
    assert store.claim_active("b@x.org", "e1", worker="w") is None  # unsubscribed
    assert store.delivery("b@x.org", "e1").state == PENDING
    assert store.claim_active("c@x.org", "e1", worker="w") is None  # sent
    assert store.claim_active("d@x.org", "e1", worker="w") is None  # no row


def test_deliver_keeps_every_outcome_with_the_one_statement_claim(store) -> None:  # type: ignore[no-untyped-def]
    store.prepare_delivery("pending@x.org", "e1", message_id="m1", paper_ids=["p1"])
    store.prepare_delivery("sent@x.org", "e1", message_id="m2", paper_ids=["p1"])
    store.mark_sent("sent@x.org", "e1")
    store.prepare_delivery("gone@x.org", "e1", message_id="m3", paper_ids=["p1"])
    store.set_subscriber_status("gone@x.org", UNSUBSCRIBED, "link")
    transport = _Recorder(store)
    summary = deliver(
        store,
        transport,
        [_message(w, "e1") for w in ("pending@x.org", "sent@x.org", "gone@x.org", "new@x.org")],
        worker="t",
        max_failures=3,
    )
    assert summary.sent == 2  # the prepared row, and the one deliver created itself
    assert summary.already_sent == 1
    assert summary.skipped == [("gone@x.org", "unsubscribed (link)")]
    assert transport.states == [SENDING, SENDING]  # claimed before the server saw it
    assert store.delivery("pending@x.org", "e1").state == SENT
    assert store.delivery("new@x.org", "e1").state == SENT
    assert store.sent_paper_ids("new@x.org") == {"p1"}


def test_pick_order_does_not_matter_for_reuse(renderers: tuple[Renderer, Renderer]) -> None:
    cached, plain = renderers
    d = fixed_digest(4)
    only = Digest(
        d.subscriber,
        d.edition,
        d.edition_date,
        (Section("LLMs", tuple(Pick(p.paper, p.score, "LLMs") for p in d.picks)),),
    )
    assert cached.render(only, links=LINKS) == plain.render(only, links=LINKS)


# --------------------------------------------------------------------------- text tidying


def test_tidy_text_matches_the_line_by_line_way_on_random_text() -> None:
    from newsletter.render import _ODD_SPACE

    rng = random.Random(11)
    pieces = ["a", "Müller", " ", "  ", "\n", "\n\n", "-- ", "--", "\t", "\r\n", "\r", "\xa0"]
    pieces += ["\u2028", "\x0c", "\x1f", "\x85", "é", "\u3000", "x" * 20]
    fast = 0
    for n in range(6000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        if n % 3 == 0:  # mostly tidy texts, so that the quick check is exercised too
            text = _tidy_lines(text) + rng.choice(["", "\n", "\n-- \nsig\n", "-- \n"])
        assert tidy_text(text) == _tidy_lines(text), repr(text)
        tidy = text.strip("\n") + "\n" == _tidy_lines(text)
        fast += tidy and not any(c in text for c in _ODD_SPACE)
    assert fast > 500  # many were tidy with only spaces and LF: the quick check's case


def test_tidy_text_knows_every_whitespace_character() -> None:
    import sys

    from newsletter.render import _ODD_SPACE

    others = {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()} - {" ", "\n"}
    assert set(_ODD_SPACE) == others


# --------------------------------------------------------------------------- cleaning


def test_clean_skips_only_text_that_cleaning_would_not_change() -> None:
    """``clean`` returns short ASCII strings that pass ``_is_clean_ascii`` as they are;
    that check must never accept a string ``_clean`` would change (every ASCII
    character, alone and between letters, plus random mixes)."""
    from newsletter.render import _clean, _is_clean_ascii

    samples = [chr(c) for c in range(128)]
    samples += [f"a{chr(c)}b" for c in range(128)] + [f"ab{chr(c)}" for c in range(128)]
    rng = random.Random(3)
    pieces = ["a", "Zz", " ", "  ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", ".", "é"]
    samples += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(5000)]
    accepted = 0
    for text in samples:
        if _is_clean_ascii(text):
            accepted += 1
            assert _clean.__wrapped__(text) == text, repr(text)
        assert clean(text) == _clean.__wrapped__(text), repr(text)
    assert accepted > 300  # the quick path was taken, not only the cached one
    assert not _is_clean_ascii("é") and not _is_clean_ascii("a\u200bb")


# --------------------------------------------------------------------------- escaping


def test_output_escape_writes_what_markupsafe_escape_writes() -> None:
    import markupsafe

    from newsletter.render import output_escape

    class Html:
        def __html__(self) -> str:
            return "<b>kept</b>"

    values: list[object] = [
        "",
        "plain",
        "<script>alert('x')</script> & \"quoted\" ü — 🙂",
        markupsafe.Markup("<i>safe</i>"),
        Html(),
        42,
        3.5,
        None,
        ("a", "<b>"),
    ]
    for value in values:
        assert str(output_escape(value)) == str(markupsafe.escape(value)), value
    assert type(output_escape("x")) is str  # no Markup built for a plain string


def test_html_renders_the_same_with_markupsafe_escape() -> None:
    """The renderer swaps Jinja's ``escape`` for ``output_escape``; with markupsafe's own
    the HTML is byte for byte the same, hostile reasons and names included."""
    import markupsafe

    fast = Renderer()
    slow = Renderer()
    namespace = slow._html.root_render_func.__globals__
    assert namespace["escape"] is output_escape  # the swap happened ...
    namespace["escape"] = markupsafe.escape  # ... and is undone for the reference
    for d in [fixed_digest(10)] + [_digest_for(n) for n in range(6)]:
        links = Links(LINKS.base_url, LINKS.secret, d.subscriber.email)
        html = fast.render(d, links=links).html
        assert html == slow.render(d, links=links).html
        if any("<b>" in r for p in d.picks for r in p.reasons):
            assert "&amp; &lt;b&gt;" in html and "& <b>" not in html


def test_rendering_with_a_shared_context_matches_template_render() -> None:
    """``Renderer.render`` runs the templates on one prepared dict (``_run``); the
    output is what ``Template.render`` makes of the same context, and template
    errors still surface as Jinja's."""
    import jinja2

    from newsletter.render import _run, build_context

    renderer = Renderer()
    for d in [fixed_digest(10)] + [_digest_for(n) for n in range(4)]:
        links = Links(LINKS.base_url, LINKS.secret, d.subscriber.email)
        ctx = build_context(d, links=links, base_url=renderer.base_url)
        for template, base in (
            (renderer._text, renderer._text_globals),
            (renderer._subject, renderer._text_globals),
            (renderer._html, renderer._html_globals),
        ):
            assert _run(template, {**base, **ctx}) == template.render(ctx)
    del ctx["headline"]
    with pytest.raises(jinja2.UndefinedError, match="'headline' is undefined"):
        _run(renderer._text, {**renderer._text_globals, **ctx})

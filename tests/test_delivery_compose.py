"""Composing: the bytes parse back to the same headers and bodies; nothing injects."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

import pytest

from newsletter.config import DeliveryConfig, DkimConfig
from newsletter.delivery import Composer
from newsletter.delivery.compose import ComposeError, message_id
from newsletter.models import RenderedEmail, Subscriber
from newsletter.signing import Links

EDITION = "2026-11-29"
HTML = (
    "<!doctype html><html><body>"
    + "".join(
        f'<p class="paper"><a href="https://arxiv.org/abs/2411.{i:05d}">Paper {i}: '
        f"Ünïcode “quotes” — and maths α≤β</a></p>"
        for i in range(400)
    )
    + "</body></html>"
)
TEXT = "Your digest\n\n1. Paper one — Ünïcode\n   https://arxiv.org/abs/2411.00001\n" * 5


def parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def make(
    subject: str = "Paper digest: 7 new papers",
    name: str = "Ada Lovelace",
    email: str = "ada@example.com",
    html: str = HTML,
    text: str = TEXT,
    **config: object,
) -> tuple[bytes, Composer]:
    delivery = DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>", **config)  # type: ignore[arg-type]
    composer = Composer(delivery)
    out = composer.compose(
        RenderedEmail(subject=subject, html=html, text=text),
        Subscriber(email=email, name=name),
        edition=EDITION,
        links=Links("https://news.example.org", "secret", email),
        date=datetime(2026, 11, 29, 7, 0, tzinfo=UTC),
    )
    return out.data, composer


def test_headers_and_both_parts_round_trip() -> None:
    data, _ = make(reply_to="Help Desk <help@example.org>")
    msg = parse(data)
    assert msg["From"] == "Paper Digest <digest@news.example.org>"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["Subject"] == "Paper digest: 7 new papers"
    assert msg["Reply-To"] == "Help Desk <help@example.org>"
    assert msg["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(msg["Date"]) == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert msg["Message-ID"].startswith(f"<{EDITION}.")
    assert msg["Message-ID"].endswith("@news.example.org>")
    assert msg["List-Id"] == "Paper Digest <digest.news.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = str(msg["List-Unsubscribe"])
    assert unsub.startswith("<https://news.example.org/unsubscribe/")
    assert unsub.endswith(", <mailto:digest@news.example.org?subject=unsubscribe>")
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    # Text parts decode with canonical CRLF line ends (RFC 2046).
    assert parts[0].get_content().replace("\r\n", "\n") == TEXT
    assert parts[1].get_content() == HTML
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert not msg.defects and not any(p.defects for p in parts)


def test_message_id_is_deterministic_per_subscriber_and_edition() -> None:
    a, _ = make()
    b, _ = make(subject="another subject")
    c, _ = make(email="bob@example.com")
    assert parse(a)["Message-ID"] == parse(b)["Message-ID"]
    assert parse(a)["Message-ID"] != parse(c)["Message-ID"]
    assert message_id("A@x.org", "2026-W48", "d.org") == message_id("a@x.org", "2026-W48", "d.org")
    assert message_id("a@x.org", "2026-W48", "d.org") != message_id("a@x.org", "2026-W49", "d.org")


def test_non_ascii_subject_and_names_are_encoded_words() -> None:
    data, _ = make(subject="Ünïcode digest — 5 papers ✓", name="Zoë Ångström")
    raw_head = data.split(b"\r\n\r\n", 1)[0]
    assert raw_head.isascii()
    assert b"=?utf-8?" in raw_head
    msg = parse(data)
    assert msg["Subject"] == "Ünïcode digest — 5 papers ✓"
    assert msg["To"].addresses[0].display_name == "Zoë Ångström"
    assert msg["To"].addresses[0].addr_spec == "ada@example.com"


@pytest.mark.parametrize("field", ["subject", "name"])
def test_crlf_in_header_input_adds_no_header(field: str) -> None:
    evil = "Hello\r\nBcc: evil@x\r\n\r\nbody injection\nX-Evil: 1"
    data, _ = make(**{field: evil})
    msg = parse(data)
    assert "Bcc" not in msg and "X-Evil" not in msg
    assert sorted(msg.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ]
    )
    assert list(msg.iter_parts())[1].get_content() == HTML
    value = str(msg["Subject"] if field == "subject" else msg["To"].addresses[0].display_name)
    assert "\r" not in value and "\n" not in value and "Bcc: evil@x" in value


def test_no_line_over_998_even_for_a_44kb_one_line_html() -> None:
    html = "<html><body>" + '<td style="padding:0">x</td>' * 1600 + "</body></html>"
    assert len(html) > 44_000 and "\n" not in html
    data, _ = make(html=html, text="one very long text line " * 400, subject="word " * 300)
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78 + 40  # List-Unsubscribe URL line
    assert all(len(line) <= 998 for line in lines)
    assert b"\n" not in data.replace(b"\r\n", b"")
    msg = parse(data)
    assert list(msg.iter_parts())[1].get_content() == html
    assert msg["Subject"] == ("word " * 300).strip()


def _part_headers(data: bytes) -> list[str]:
    msg = parse(data)
    return [str(p["Content-Transfer-Encoding"]) for p in msg.iter_parts()]


def test_ascii_parts_with_short_lines_go_as_they_are() -> None:
    html = "<html><body>\n" + '<p class="x">Paper &#945; &amp; more</p>\n' * 300 + "</body></html>"
    text = "Your digest\n\n1. Paper one\n   https://arxiv.org/abs/2411.00001\n" * 20
    data, _ = make(html=html, text=text)
    assert _part_headers(data) == ["7bit", "7bit"]
    # Verbatim, LF -> CRLF: the raw message holds the very lines the renderer made.
    assert html.replace("\n", "\r\n").encode() in data
    assert text.replace("\n", "\r\n").encode() in data
    parts = list(parse(data).iter_parts())
    assert parts[0].get_content().replace("\r\n", "\n") == text
    assert parts[1].get_content().replace("\r\n", "\n") == html
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    ("html", "why"),
    [
        ("<p>" + "x" * 998 + "</p>", "a line over 998 characters"),
        ("<p>Zoë</p>\n", "not ASCII"),
        ("<p>a\rb</p>\n", "a bare CR"),
        ("<p>a\0b</p>\n", "a NUL"),
    ],
)
def test_parts_that_can_not_go_as_they_are_are_base64(html: str, why: str) -> None:
    data, _ = make(html=html, text="plain ascii\n")
    assert _part_headers(data) == ["7bit", "base64"], why
    assert list(parse(data).iter_parts())[1].get_content() == html
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_feed_text_holding_the_mime_boundary_can_not_forge_a_part() -> None:
    from newsletter.delivery.compose import BOUNDARY

    forged = (
        f"An abstract\n--{BOUNDARY}\nContent-Type: text/html\n\n<script>evil()</script>\n"
        f"--{BOUNDARY}--\n"
    )
    data, _ = make(html="<p>fine</p>\n", text=forged)
    msg = parse(data)
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert _part_headers(data) == ["base64", "7bit"]
    assert parts[0].get_content() == forged
    assert parts[1].get_content().strip() == "<p>fine</p>"


def test_rendered_digests_are_ascii_html_sent_as_7bit() -> None:
    from test_render_fixtures import LINKS, fixed_digest

    from newsletter.render import Renderer

    rendered = Renderer().render(fixed_digest(10), links=LINKS)
    assert rendered.html.isascii()  # non-ASCII is written as character references
    assert max(len(line) for line in rendered.html.split("\n")) < 998
    data, _ = make(html=rendered.html, text=rendered.text)
    assert _part_headers(data)[1] == "7bit"
    html = list(parse(data).iter_parts())[1].get_content()
    assert html.replace("\r\n", "\n") == rendered.html


def test_list_id_from_config_and_long_display_names() -> None:
    data, _ = make(list_id="arxiv-digest.example.org", name="N" * 5000)
    msg = parse(data)
    assert msg["List-Id"] == "Paper Digest <arxiv-digest.example.org>"
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_bad_addresses_fail_with_a_clear_message() -> None:
    with pytest.raises(ComposeError, match="not a valid email address"):
        make(email="no-at-sign")
    with pytest.raises(ComposeError, match="has no address"):
        Composer(DeliveryConfig(from_addr="Only A Name"))
    # An IDN domain is written in its ASCII form.
    data, _ = make(email="ada@bücher.example")
    assert parse(data)["To"].addresses[0].addr_spec == "ada@xn--bcher-kva.example"


def test_the_envelope_recipient_is_the_ascii_form_and_the_ledger_key_stays() -> None:
    composer = Composer(DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>"))
    for email, envelope in [
        ("ada@bücher.example", "ada@xn--bcher-kva.example"),
        ("Bob@Example.COM", "bob@example.com"),  # (a reader's address is kept in lower case)
    ]:
        out = composer.compose(
            RenderedEmail(subject="s", html="<p>x</p>", text="x"),
            Subscriber(email=email),
            edition=EDITION,
            links=Links("https://news.example.org", "secret", email),
        )
        assert out.recipient == envelope and out.recipient.isascii()
        assert out.subscriber == email.lower()  # the ledger's key
        assert parse(out.data)["To"].addresses[0].addr_spec == envelope


def _rsa_key() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def test_dkim_signature_verifies_and_covers_the_list_headers() -> None:
    import base64

    import dkim

    private, public = _rsa_key()
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    config = DkimConfig(selector="nl", domain="news.example.org", key_file="k.pem", key=private)
    data, _ = make(dkim=config, subject="Ünïcode digest")

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl._domainkey.news.example.org."
        return record

    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=dnsfunc)
    signed = parse(data)["DKIM-Signature"].replace(" ", "").lower()
    h = signed.split("h=", 1)[1].split(";", 1)[0].split(":")
    for name in ["from", "to", "subject", "date", "message-id"]:
        assert name in h
    assert "list-unsubscribe" in h and "list-unsubscribe-post" in h
    # Tampering with a signed header breaks the signature.
    assert not dkim.verify(data.replace(b"Subject: ", b"Subject: X"), dnsfunc=dnsfunc)


def test_relaxed_body_matches_dkimpy() -> None:
    from dkim.canonicalization import Relaxed

    from newsletter.delivery.dkim import relaxed_body

    for body in [
        b"",
        b"\r\n\r\n",
        b"a  b\t\tc  \r\n\r\n\r\n",
        b"line\r\n \r\n\tx \t\r\nlast no eol  ",
        TEXT.replace("\n", "\r\n").encode(),
    ]:
        assert relaxed_body(body) == Relaxed.canonicalize_body(body), body


def test_dkim_verifies_with_folded_non_ascii_headers_and_odd_bodies() -> None:
    import base64

    import dkim

    private, public = _rsa_key()
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    config = DkimConfig(selector="s1", domain="news.example.org", key_file="k.pem", key=private)
    data, _ = make(
        dkim=config,
        subject="Ünïcode — " * 30,
        name="Zoë  Ångström",
        text="trailing spaces   \n\n\n  indented\t\ttabs\n\n\n",
        reply_to="Help <help@example.org>",
    )
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_a_bad_dkim_key_is_a_config_error() -> None:
    from newsletter.errors import ConfigError

    bad = DkimConfig(selector="s1", domain="news.example.org", key_file="dkim.pem", key=b"junk")
    with pytest.raises(ConfigError, match=r"delivery\.dkim\.key_file 'dkim\.pem': not an"):
        make(dkim=bad)
    private, _ = _rsa_key()
    worse = DkimConfig(selector="s 1", domain="news.example.org", key_file="k", key=private)
    with pytest.raises(ConfigError, match=r"delivery\.dkim\.selector 's 1': not a DNS name"):
        make(dkim=worse)


def test_relaxed_body_whitespace_runs() -> None:
    from dkim.canonicalization import Relaxed

    from newsletter.delivery.dkim import relaxed_body

    for body in [b"a \tb\r\n", b"a\t b \t\r\n", b"a\t\tb\r\n\t\r\n", b" a  b \r\n\r\n"]:
        assert relaxed_body(body) == Relaxed.canonicalize_body(body), body


def test_long_ascii_subjects_fold_at_spaces_and_parse_back_unchanged() -> None:
    import random

    from newsletter.delivery.compose import encode_text

    rng = random.Random(5)
    words = ["Your", "paper", "digest,", "29", "Nov:", "15", "papers", "on", "Topic", "x" * 40]
    words += ["a" * 70, "b" * 75, "=?not-encoded?="]
    for _ in range(2000):
        subject = " ".join(rng.choice(words) for _ in range(rng.randint(1, 40)))
        if rng.random() < 0.1:
            subject = subject.replace(" ", "  ", 1)  # a double space survives too
        raw = f"Subject: {encode_text(subject)}\r\n\r\n".encode()
        assert all(len(line) <= 78 for line in raw.split(b"\r\n")), raw
        assert parse(raw)["Subject"] == subject


def test_scan_lines_matches_splitting_on_random_bytes() -> None:
    from newsletter.delivery.compose import scan_lines

    rng = random.Random(4)
    pieces = [b"a", b"bb", b".", b"..", b"\n", b"\n.", b"x" * 50, b" .", b"\n\n"]
    cases = [b"", b".", b"\n", b".\n", b"\n.", b"a\n", b"abc"]
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for data in cases:
        lines = data.split(b"\n")
        assert scan_lines(data) == (
            max(map(len, lines)),
            any(line.startswith(b".") for line in lines),
        ), data


def _wire_ready(**kwargs: object) -> tuple[bool, bytes]:
    delivery = DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>")
    if "dkim" in kwargs:
        delivery = DeliveryConfig(
            from_addr="Paper Digest <digest@news.example.org>",
            dkim=kwargs.pop("dkim"),  # type: ignore[arg-type]
        )
    out = Composer(delivery).compose(
        RenderedEmail(subject="Ünïcode digest", **kwargs),  # type: ignore[arg-type]
        Subscriber(email="ada@example.com", name="Ada, “the first”"),
        edition=EDITION,
        links=Links("https://news.example.org", "secret", "ada@example.com"),
    )
    return out.wire_ready, out.data


def _crlf_only_and_no_dot_line(data: bytes) -> bool:
    return (
        data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
        and b"\r\n." not in data
        and not data.startswith(b".")
    )


@pytest.mark.parametrize(
    "parts",
    [
        {"html": HTML, "text": TEXT},  # base64 HTML, base64 text
        {"html": "<p>a</p>\n<p>b</p>", "text": "plain\ntext\n"},  # both 7bit
        {"html": "<p>a</p>\n.<p>b</p>", "text": "plain\n"},  # a 7bit line starting with "."
        {"html": "<p>a</p>", "text": ".NET in a wrapped line\n"},
        {"html": ".", "text": "x"},
        {"html": "<p>a</p>", "text": "bare\rcr\n"},  # base64: no dot line, CRLF only
    ],
)
def test_wire_ready_is_set_exactly_when_the_bytes_need_no_smtp_fixing(
    parts: dict[str, str],
) -> None:
    """``wire_ready`` lets SMTP skip its scans; it must never be set on bytes that have
    a bare CR or LF or a line starting with "." (those need fixing or dot-stuffing)."""
    ready, data = _wire_ready(**parts)
    assert ready == _crlf_only_and_no_dot_line(data)


def test_wire_ready_with_dkim_and_a_real_digest() -> None:
    from test_render_fixtures import LINKS, fixed_digest

    from newsletter.render import Renderer

    private, _ = _rsa_key()
    config = DkimConfig(selector="nl", domain="news.example.org", key_file="k.pem", key=private)
    rendered = Renderer().render(fixed_digest(10), links=LINKS)
    ready, data = _wire_ready(html=rendered.html, text=rendered.text, dkim=config)
    assert data.startswith(b"DKIM-Signature:")
    assert ready and _crlf_only_and_no_dot_line(data)


def test_a_long_non_ascii_display_name_is_cut_under_the_line_limit() -> None:
    """200 emoji are 800 bytes of UTF-8: as one encoded-word, a To line of ~1,100
    characters. Names are cut to 480 bytes; even with a 254-character address the line
    stays under 998."""
    local = "a" * 64
    address = f"{local}@{'d' * 60}.{'e' * 60}.{'f' * 60}.example"
    data, _ = make(name="🙂" * 200, email=address)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    to = parse(data)["To"]
    assert to.addresses[0].display_name == "🙂" * 120
    assert to.addresses[0].addr_spec == address


def test_a_dkim_selector_with_a_line_break_is_refused() -> None:
    from newsletter.delivery.dkim import DkimSigner
    from newsletter.errors import ConfigError

    private, _ = _rsa_key()
    config = DkimConfig(selector="nl\n", domain="news.example.org", key_file="k.pem", key=private)
    with pytest.raises(ConfigError, match="selector"):
        DkimSigner(config)


# --------------------------------------------------------------------- deliverability review


def test_one_click_post_only_with_an_https_unsubscribe_link() -> None:
    # RFC 8058: List-Unsubscribe-Post promises a one-click POST to an https URI. With
    # no web.base_url the link was http://localhost:8025/... and still claimed one.
    composer = Composer(DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>"))
    for base, one_click in [
        ("https://news.example.org", True),
        ("HTTPS://news.example.org", True),
        ("http://localhost:8025", False),
        ("http://news.example.org", False),
    ]:
        out = composer.compose(
            RenderedEmail(subject="s", html="<p>x</p>", text="x"),
            Subscriber(email="ada@example.com"),
            edition=EDITION,
            links=Links(base, "secret", "ada@example.com"),
        )
        msg = parse(out.data)
        unsub = str(msg["List-Unsubscribe"])
        assert unsub.startswith(f"<{base}/unsubscribe/"), base
        assert unsub.endswith(", <mailto:digest@news.example.org?subject=unsubscribe>")
        if one_click:
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", base
        else:
            assert "List-Unsubscribe-Post" not in msg, base
            assert b"One-Click" not in out.data


def test_dkim_signs_the_one_click_header_only_when_it_is_there() -> None:
    import base64

    import dkim

    private, public = _rsa_key()
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    config = DkimConfig(selector="nl", domain="news.example.org", key_file="k.pem", key=private)
    composer = Composer(
        DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>", dkim=config)
    )
    for base, signed in [("http://localhost:8025", False), ("https://news.example.org", True)]:
        out = composer.compose(
            RenderedEmail(subject="s", html="<p>x</p>", text="x"),
            Subscriber(email="ada@example.com"),
            edition=EDITION,
            links=Links(base, "secret", "ada@example.com"),
        )
        assert dkim.verify(out.data, dnsfunc=lambda name, timeout=5: record)
        h = parse(out.data)["DKIM-Signature"].replace(" ", "").split("h=", 1)[1].split(";")[0]
        assert ("list-unsubscribe-post" in h.split(":")) == signed
        assert "list-unsubscribe" in h.split(":")


@pytest.mark.parametrize(
    ("list_id", "header", "shown"),
    [
        # The review's crash: a non-ASCII description in the "Name <label>" form.
        (
            "Tägliche Papiere <daily.example.org>",
            b"List-Id: =?utf-8?q?T=C3=A4gliche_Papiere?= <daily.example.org>",
            "Tägliche Papiere <daily.example.org>",
        ),
        # An ASCII description with specials is a quoted string (RFC 5322 phrase).
        (
            "Papers, daily <p.example.org>",
            b'List-Id: "Papers, daily" <p.example.org>',
            '"Papers, daily" <p.example.org>',
        ),
        ("<x.example.org>", b"List-Id: <x.example.org>", "<x.example.org>"),
        # Not loaded from YAML (the loader refuses it): made a label, not copied.
        ("<a b c>", b"List-Id: <a-b-c>", "<a-b-c>"),
        # A bare label takes the From name, as before.
        ("arxiv.example.org", b"List-Id: Paper Digest <arxiv.example.org>", None),
    ],
)
def test_list_id_description_is_encoded_and_the_label_is_a_label(
    list_id: str, header: bytes, shown: str | None
) -> None:
    data, _ = make(list_id=list_id)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert header + b"\r\n" in head
    assert parse(data)["List-Id"] == (shown or "Paper Digest <arxiv.example.org>")


def test_a_long_list_id_description_folds_before_the_label() -> None:
    data, _ = make(list_id="Ä" * 100 + " <long.example.org>")
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in lines if not line.startswith(b"List-Unsubscribe:")) <= 78
    assert parse(data)["List-Id"] == "Ä" * 100 + " <long.example.org>"


class _ShortLinks(Links):
    """A short unsubscribe link, so that every header line fits 78 characters."""

    @property
    def unsubscribe(self) -> str:
        return "https://n.example.org/u/1"


def _signed(links: Links, **config: object) -> tuple[bytes, bytes]:
    import base64

    private, public = _rsa_key()
    dkim_config = DkimConfig(
        selector="selector-2026", domain="news.example.org", key_file="k.pem", key=private
    )
    composer = Composer(
        DeliveryConfig(
            from_addr="Paper Digest <digest@news.example.org>",
            dkim=dkim_config,
            **config,  # type: ignore[arg-type]
        )
    )
    out = composer.compose(
        RenderedEmail(subject="Ünïcode — " * 8, html=HTML, text=TEXT),
        Subscriber(email="ada@example.com", name="Zoë Ångström"),
        edition=EDITION,
        links=links,
    )
    return out.data, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _regenerate(data: bytes) -> bytes:
    """What a Python-based hop does: parse, then generate with policy SMTP."""
    import io
    from email.generator import BytesGenerator

    buffer = io.BytesIO()
    message = BytesParser(policy=policy.SMTP).parsebytes(data)
    BytesGenerator(buffer, policy=policy.SMTP).flatten(message)
    return buffer.getvalue()


def _dkim_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"DKIM-Signature:")
    end = next(i for i in range(1, len(lines)) if not lines[i].startswith(b" "))
    return lines[:end]


def test_the_dkim_signature_is_folded_to_78_and_survives_a_python_refold() -> None:
    import dkim

    # The review: an h= line of 131 characters; a hop that re-folds headers (email
    # parser + generator, policy SMTP) changed it and the signature failed.
    data, record = _signed(_ShortLinks("https://n.example.org", "s", "ada@example.com"))

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record

    signature = _dkim_lines(data)
    assert max(len(line) for line in signature) <= 78, signature
    assert b"h=from:to:subject:" in data  # folded after colons only: names stay whole
    assert dkim.verify(data, dnsfunc=dnsfunc)
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in head) <= 78
    # (Python refolds every header line over 78; with none left the bytes stay.)
    again = _regenerate(data)
    assert _dkim_lines(again) == signature
    assert dkim.verify(again, dnsfunc=dnsfunc)


def test_the_dkim_signature_header_is_kept_by_a_refold_with_real_links() -> None:
    import dkim

    data, record = _signed(Links("https://news.example.org", "secret", "ada@example.com"))
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: record)
    signature = _dkim_lines(data)
    assert max(len(line) for line in signature) <= 78
    # Our DKIM-Signature header comes out of the refold unchanged. (CPython still
    # re-encodes the List-Unsubscribe line, longer than 78 with its signed link,
    # as RFC 2047 words, which no fold of ours can prevent; a relay that rewrites
    # headers that way breaks any signature over List-Unsubscribe.)
    assert _dkim_lines(_regenerate(data)) == signature


def test_fold_tags_folds_between_tags_and_after_h_colons_only() -> None:
    from newsletter.delivery.dkim import fold_tags

    names = ":".join(f"x-header-{i}" for i in range(20))
    value = fold_tags(["v=1", f"d={'d' * 60}.org", f"h={names}", "bh=abc", "b="], 15)
    lines = f"DKIM-Signature:{value}".split("\r\n")
    assert max(len(line) for line in lines) <= 78
    assert all(line.startswith(" ") for line in lines[1:])
    # Unfolded, it is the tag list with a space at each fold: every tag and header
    # name whole, the spaces only after ";" or a ":" of h=.
    unfolded = value.replace("\r\n", "")
    assert unfolded.replace(": ", ":") == f" v=1; d={'d' * 60}.org; h={names}; bh=abc; b="

"""Composing speed: newsletter's Composer vs an ``EmailMessage`` baseline, same run.

    .venv/bin/python benchmarks/bench_compose.py [--n 3000]

Both build the same message (headers, text/plain + text/html alternative, UTF-8)
from the same rendered digest: a ~44 KB one-line HTML page like the compiled MJML
template, and its text part. Prints messages/s on one core and the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from newsletter.config import DeliveryConfig
from newsletter.delivery import Composer
from newsletter.models import RenderedEmail, Subscriber
from newsletter.signing import Links

PAPER = (
    '<tr><td style="padding:12px 0;font-family:Helvetica,Arial,sans-serif">'
    '<a href="https://arxiv.org/abs/2411.{i:05d}" style="color:#1a4e8a;font-weight:600">'
    "Retrieval-interleaved reasoning for long-context language models {i}</a>"
    '<div style="color:#555;font-size:13px">Ada Lovelace, Alan Turing, Zoë Ångström</div>'
    '<div style="font-size:14px;line-height:1.5">We introduce a method for training language '
    "models to reason over long contexts by interleaving retrieval with decoding.</div></td></tr>"
)


def sample() -> RenderedEmail:
    html = "<!doctype html><html><body><table>"
    i = 0
    while len(html) < 44_000:
        html += PAPER.format(i=i)
        i += 1
    html += "</table></body></html>"
    text = "\n\n".join(
        f"{n}. Retrieval-interleaved reasoning {n}\n   Ada Lovelace, Alan Turing\n"
        f"   https://arxiv.org/abs/2411.{n:05d}"
        for n in range(10)
    )
    return RenderedEmail(subject="Your paper digest, 29 Nov 2026: 10 papers", html=html, text=text)


def baseline(rendered: RenderedEmail, sub: Subscriber, links: Links, edition: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Paper Digest <digest@news.example.org>"
    msg["To"] = f"{sub.name} <{sub.email}>"
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{edition}.x@news.example.org>"
    msg["List-Id"] = "Paper Digest <digest.news.example.org>"
    msg["List-Unsubscribe"] = (
        f"<{links.unsubscribe}>, <mailto:digest@news.example.org?subject=unsubscribe>"
    )
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg.as_bytes()


def rate(fn: Callable[[int], bytes], n: int) -> float:
    fn(0)
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    n = parser.parse_args().n
    rendered = sample()
    composer = Composer(DeliveryConfig(from_addr="Paper Digest <digest@news.example.org>"))
    subs = [Subscriber(email=f"reader{i}@example.com", name=f"Reader {i}") for i in range(n)]
    links = [Links("https://news.example.org", "secret", s.email) for s in subs]

    def ours(i: int) -> bytes:
        return composer.compose(rendered, subs[i], edition="2026-11-29", links=links[i]).data

    def theirs(i: int) -> bytes:
        return baseline(rendered, subs[i], links[i], "2026-11-29")

    size = len(ours(0))
    base = rate(theirs, max(200, n // 10))
    mine = rate(ours, n)
    print(f"message: {len(rendered.html):,} B HTML (one line), {size:,} B composed")
    print(f"EmailMessage baseline: {base:8,.0f} messages/s  ({1000 / base:.2f} ms each)")
    print(f"newsletter Composer:   {mine:8,.0f} messages/s  ({1000 / mine:.3f} ms each)")
    print(f"speed-up: {mine / base:.1f}x")

    # DKIM: our signer (OpenSSL RSA via cryptography) vs dkimpy.sign, same messages.
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from newsletter.config import DkimConfig

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signing = Composer(
        DeliveryConfig(
            from_addr="Paper Digest <digest@news.example.org>",
            dkim=DkimConfig("nl", "news.example.org", "dkim.pem", key),
        )
    )
    unsigned = ours(0)
    headers = [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe"]

    def dkimpy_sign(i: int) -> bytes:
        return bytes(dkim.sign(unsigned, b"nl", b"news.example.org", key, include_headers=headers))

    def ours_signed(i: int) -> bytes:
        return signing.compose(rendered, subs[i], edition="2026-11-29", links=links[i]).data

    slow = rate(dkimpy_sign, 50)
    fast = rate(ours_signed, max(200, n // 5))
    print(f"compose + dkimpy.sign (baseline): {slow:8,.0f} messages/s")
    print(f"compose + DKIM (ours, OpenSSL):   {fast:8,.0f} messages/s  ({fast / slow:.1f}x)")


if __name__ == "__main__":
    main()

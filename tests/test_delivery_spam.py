"""A sample digest, composed for sending, scores below 1.0 in SpamAssassin (offline)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime

import pytest

from newsletter.config import DeliveryConfig
from newsletter.delivery import Composer
from newsletter.models import Digest, Paper, Pick, RenderedEmail, Section, Subscriber
from newsletter.signing import Links

SPAMASSASSIN = shutil.which("spamassassin")
SUBSCRIBER = Subscriber(email="ada@example.com", name="Ada Lovelace")
LINKS = Links("https://news.example.org", "secret", SUBSCRIBER.email)

ABSTRACTS = [
    "We introduce a method for training language models to reason over long contexts "
    "by interleaving retrieval with chain-of-thought decoding, and evaluate it on six "
    "benchmarks where it improves accuracy while halving the compute budget.",
    "Quantum error correction with surface codes requires fast decoders; we present a "
    "union-find decoder that runs in near-linear time and matches the accuracy of "
    "minimum-weight perfect matching on circuit-level noise.",
    "We study the sample complexity of offline reinforcement learning under partial "
    "coverage and prove matching upper and lower bounds for pessimistic value iteration.",
]


def sample_digest() -> Digest:
    papers = [
        Paper(
            id=f"2411.1770{i}",
            title=title,
            abstract=ABSTRACTS[i],
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper"),
            categories=(cat,),
            url=f"https://arxiv.org/abs/2411.1770{i}",
            pdf_url=f"https://arxiv.org/pdf/2411.1770{i}",
        )
        for i, (title, cat) in enumerate(
            [
                ("Retrieval-interleaved reasoning for long-context language models", "cs.CL"),
                ("Near-linear time decoding of surface codes", "quant-ph"),
                ("Sharp bounds for pessimistic offline reinforcement learning", "cs.LG"),
            ]
        )
    ]
    sections = (
        Section("Language models", (Pick(papers[0], 3.2, "Language models", ("keyword: LLM",)),)),
        Section("Quantum computing", (Pick(papers[1], 2.7, "Quantum computing", ("category",)),)),
        Section("Reinforcement learning", (Pick(papers[2], 2.1, "Reinforcement learning"),)),
    )
    return Digest(
        subscriber=SUBSCRIBER,
        edition="2026-11-29",
        edition_date=date(2026, 11, 29),
        sections=sections,
        candidates=1504,
    )


def rendered_digest() -> RenderedEmail:
    try:
        from newsletter.render import Renderer

        return Renderer(base_url=LINKS.base_url).render(sample_digest(), links=LINKS)
    except (ImportError, NotImplementedError) as err:
        pytest.skip(f"newsletter.render is not available yet ({err!r})")


def score(data: bytes) -> tuple[float, str]:
    if SPAMASSASSIN is None:
        if os.environ.get("CI"):
            pytest.fail("spamassassin is not installed; .ci/run installs the Debian package")
        pytest.skip("spamassassin not installed (apt-get install spamassassin); CI runs this")
    proc = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"], input=data, capture_output=True, timeout=60, check=False
    )
    out = proc.stdout.decode("utf-8", "replace")
    match = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.M)
    assert match, f"no X-Spam-Status in spamassassin output: {proc.stderr.decode()[-500:]}"
    report = out.split("Content analysis details:", 1)[-1][:3000]
    return float(match.group(1)), report


@pytest.mark.slow
def test_a_rendered_digest_scores_below_1() -> None:
    rendered = rendered_digest()
    composer = Composer(
        DeliveryConfig(
            from_addr="Paper Digest <digest@news.example.org>",
            reply_to="editor@news.example.org",
        )
    )
    message = composer.compose(
        rendered, SUBSCRIBER, edition="2026-11-29", links=LINKS, date=datetime.now(UTC)
    )
    value, report = score(message.data)
    assert value < 1.0, f"SpamAssassin score {value}:\n{report}"


@pytest.mark.slow
def test_the_check_can_fail_html_only_mail_without_date_scores_high() -> None:
    """The contrast: what peers send (HTML only, no Date, no Message-ID) fails the bar."""
    rendered = rendered_digest()
    bad = (
        "From: digest@news.example.org\r\nTo: ada@example.com\r\n"
        f"Subject: {rendered.subject}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    ).encode() + rendered.html.encode()
    value, report = score(bad)
    assert value >= 1.0, f"expected a high score for HTML-only mail, got {value}:\n{report}"

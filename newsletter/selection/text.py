"""Text analysis shared by indexing and queries: tokenise, drop stopwords, stem.

Feed text is untrusted: it is only ever lower-cased, split and stemmed here, never
evaluated or interpolated anywhere.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
import zlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("english")
_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_MAX = 500_000

_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")
_TOKEN = re.compile(r"[a-z0-9]+")
# A compound: words joined by hyphens or dashes ("q-learning", "navier--stokes"), a
# dot between digits ("gpt-3.5"), or one letter and a space before a word ("q learning",
# "k means", "t cell"; not a, e, g, i: they are stopwords).
_JOIN = r"(?:-+|[\u2010-\u2013]+|(?<=[0-9])\.(?=[0-9]))"
_COMPOUND = re.compile(
    r"(?<![a-z0-9.'\u2019\u2010-\u2013-])"
    rf"(?:[b-df-hj-z] (?=[a-z][a-z0-9])[a-z0-9]++|[a-z0-9]++{_JOIN}[a-z0-9]++)"
    rf"(?:{_JOIN}[a-z0-9]++)*+"
)
_JOINER = re.compile(r"-+|[\u2010-\u2013]+| ")
# What every text with a compound token has (a part of one character, or a digit):
# a text without it has none, and is analysed without looking for them (most are).
_MAYBE_COMPOUND = re.compile(r"[0-9]|(?<![a-z0-9])[a-z](?![a-z0-9])")
_REF = re.compile(r"[a-z0-9]+|\x00[0-9]+")  # a word, or a compound's reference
_DIGIT = re.compile(r"[0-9]")
_POSSESSIVE = re.compile(r"['\u2019]s\b")  # "Newton's" -> "Newton" (no stray "s" word)
_SPANS_MAX = 6  # a compound's parts beyond this many only count joined as a whole


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Plain English function words plus words that carry no topic in an abstract or
# in an interest statement ("we propose a novel method", "I am interested in ...").
STOPWORDS = _wordset(
    """
    a about above across after again against all almost along also although always am
    among an and another any are around as at be because been before being below
    between both but by can cannot could did do does doing done down during each
    either else enough etc even ever every few for from further had has have having he
    her here hers herself him himself his how however i if in into is it its itself
    just least less let like made make makes making many may me might more most much
    must my myself neither no nor not now of off often on once one only or other our
    ours ourselves out over own per perhaps rather same several shall she should since
    so some such than that the their theirs them themselves then there therefore these
    they this those though through thus to too toward towards under until up upon us
    use used uses using very via was way ways we well were what whatever when where
    whether which while who whom whose why will with within without would yet you your
    yours yourself e g eg ie i.e et al
    paper papers propose proposed proposes proposing present presents presented show
    shows showed shown demonstrate demonstrates demonstrated novel new approach
    approaches method methods result results work works study studies studied
    introduce introduces introduced based existing recent recently furthermore moreover
    significant significantly sota extensive outperform outperforms outperforming
    achieve achieves achieved various different specifically particular
    particularly especially including include includes related relate interested
    interest interests research topic topics anything things thing want wants keen
    find finding findings following like likes love area areas mainly mostly focus
    focused focusing focuses
    """
)

# Query-only words: how people phrase an interest, not what it is about.
QUERY_STOPWORDS = STOPWORDS | _wordset(
    """
    new papers paper articles article preprints anything everything stuff works
    """
)


def fold(text: str) -> str:
    """Lower-case, strip diacritics and LaTeX commands: ``"Café \\alpha"`` -> ``"cafe "``."""
    if "\\" in text:
        text = _LATEX_CMD.sub(" ", text)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower()
    if "'" in text or "\u2019" in text:
        text = _POSSESSIVE.sub("", text)
    return text


def stem(word: str) -> str:
    cached = _STEM_CACHE.get(word)
    if cached is None:
        cached = _STEMMER.stemWord(word) if len(word) > 3 else word
        if len(_STEM_CACHE) < _STEM_CACHE_MAX:
            _STEM_CACHE[word] = cached
    return cached


def words(text: str) -> list[str]:
    """Folded raw tokens, stopwords kept (for surface forms)."""
    return _TOKEN.findall(fold(text))


def analyze(text: str, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Stemmed content tokens in order; stopwords and 1-character tokens dropped.

    A compound counts as its parts here (``"q-learning"`` -> ``["learn"]``): the words
    of a text as most readers would search them. ``analyze_joined`` keeps compounds whole.
    """
    cached = _STEM_CACHE.get  # (inline cache hit: most words; stems are never empty)
    return [
        cached(w) or stem(w)
        for w in _TOKEN.findall(fold(text))
        if len(w) > 1 and w not in stopwords
    ]


class _Compounds:
    """The ``re.sub`` callback that replaces each compound of a folded text with a
    reference to it (``" \\x00<n> "``), remembering its joined stem, raw parts and
    surface form. A compound whose joined form is a stopword is dropped."""

    __slots__ = ("found", "stopwords")

    def __init__(self, stopwords: frozenset[str]) -> None:
        self.stopwords = stopwords
        self.found: list[tuple[str, list[str], str]] = []  # (joined stem, parts, as written)

    def __call__(self, m: re.Match[str]) -> str:
        word = m.group()
        # (a number is one part: "gpt-3.5" -> ["gpt", "35"], "gpt35")
        raw = [p.replace(".", "") for p in _JOINER.split(word)]
        if word[1] == " " and raw[1] in self.stopwords:  # "n is": two words
            return word
        if all(len(p) > 1 and not _DIGIT.search(p) for p in raw):
            # Words of two letters or more only ("time-series", "self-supervised"): the
            # words as a phrase, so "time series" written apart matches too. Only a part
            # of one letter or with a digit (q-learning, k-NN, GPT-4, 3.5) makes a token.
            return " ".join(raw)
        whole = stem("".join(raw))
        if whole in self.stopwords:
            return " "
        self.found.append((whole, raw, word))
        return f" \x00{len(self.found) - 1} "


def _compounds(folded: str, stopwords: frozenset[str]) -> tuple[list[str], _Compounds]:
    """The words of a folded text (stopwords and 1-character words kept), each compound
    as its reference into the returned ``_Compounds.found``."""
    got = _Compounds(stopwords)
    if _MAYBE_COMPOUND.search(folded) is None:
        # No part of one character, no digit: every match of _COMPOUND would be put
        # back as its words ("self-supervised" -> "self supervised"), so the words are
        # the plain tokens.
        return _TOKEN.findall(folded), got
    if "\x00" in folded:
        folded = folded.replace("\x00", " ")
    return _REF.findall(_COMPOUND.sub(got, folded)), got


def analyze_joined(text: str, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Stemmed content tokens in order with each compound as one token: ``"deep
    Q-learning for k-NN"`` -> ``["deep", "qlearn", "knn"]`` (keywords, exclusions,
    descriptions: what a subscriber writes with a hyphen must be there with it)."""
    return [st for st, _ in analyze_with_surface(text, stopwords)]


def analyze_with_surface(
    text: str, stopwords: frozenset[str] = QUERY_STOPWORDS
) -> list[tuple[str, str]]:
    """``[(stem, surface word), ...]`` for content tokens, in order, each compound as
    one token (``("qlearn", "q-learning")``)."""
    toks, got = _compounds(fold(text), stopwords)
    out: list[tuple[str, str]] = []
    for w in toks:
        if w[0] == "\x00":
            whole, _, surface = got.found[int(w[1:])]
            out.append((whole, surface))
        elif len(w) > 1 and w not in stopwords:
            out.append((stem(w), w))
    return out


def analyze_index(
    text: str, stopwords: frozenset[str] = STOPWORDS
) -> tuple[list[str], list[str], list[str], list[str]]:
    """What the index keeps of a text: ``(parts, joined, spans, pairs)``.

    ``parts`` is ``analyze(text)`` (every compound as its words: lengths, unigrams,
    bigrams as before); ``joined`` the same sequence with each compound as one token
    (``analyze_joined``), or ``[]`` when the text has no compound; ``spans`` the joined
    stems of every run of 2+ adjacent parts of each compound that neither starts nor
    ends with a stopword ("q-learning-based" -> "qlearningbas", "qlearn", "learningbas":
    a keyword "Q-learning" is in it); ``pairs`` the adjacent pairs of ``joined`` with a
    compound in them ("deep qlearn").
    """
    cached = _STEM_CACHE.get
    folded = fold(text)
    parts = [
        cached(w) or stem(w) for w in _TOKEN.findall(folded) if len(w) > 1 and w not in stopwords
    ]
    if _MAYBE_COMPOUND.search(folded) is None:
        return parts, [], [], []  # (no compound: see _compounds)
    toks, got = _compounds(folded, stopwords)
    found = got.found
    if not found:
        return parts, [], [], []
    toks = [w for w in toks if len(w) > 1 and w not in stopwords]
    joined = [found[int(w[1:])][0] if w[0] == "\x00" else cached(w) or stem(w) for w in toks]
    spans: list[str] = []
    for whole, raw, _ in found:
        k = len(raw)
        spans.append(whole)  # (what a keyword written so asks for, stopwords or not)
        if 2 < k <= _SPANS_MAX:
            # (runs that start or end with a stopword, "state-of", are no one's keyword)
            spans += [
                stem("".join(raw[i:j]))
                for i in range(k - 1)
                if raw[i] not in stopwords
                for j in range(i + 2, k + 1)
                if raw[j - 1] not in stopwords and (i, j) != (0, k)  # (whole: above)
            ]
    pairs: dict[int, str] = {}  # (by the first one's position: each pair once)
    last = len(joined) - 1
    for i, w in enumerate(toks):
        if w[0] == "\x00":
            if i > 0:
                pairs[i - 1] = f"{joined[i - 1]} {joined[i]}"
            if i < last:
                pairs[i] = f"{joined[i]} {joined[i + 1]}"
    return parts, joined, spans, list(pairs.values())


Analysis = tuple[list[str], list[str], list[str], list[str]]  # what analyze_index returns


def _analysis_version() -> str:
    """Names this analyser: a hash of this module's source and the stemmer's version.

    Stored analyses (``encode_analysis``) made by any other version of the code are
    ignored and recomputed, so a change here can never leave stale terms in use."""
    try:
        source = Path(__file__).read_bytes()
    except OSError:  # pragma: no cover - a zipped or source-less install
        source = b"no source"
    try:
        stemmer = metadata.version("snowballstemmer")
    except metadata.PackageNotFoundError:  # pragma: no cover
        stemmer = "?"
    return hashlib.sha256(source + b"\0" + stemmer.encode()).hexdigest()[:12]


ANALYSIS_VERSION = _analysis_version()


def _checksum(title: str, abstract: str) -> str:
    data = f"{title}\0{abstract}".encode("utf-8", "surrogatepass")
    return f"{zlib.crc32(data):08x}"


def encode_analysis(title: str, abstract: str) -> str:
    """``analyze_index`` of a paper's title and abstract as one string, made when the
    paper is stored (``Store.upsert_papers``) so that building an index only splits
    strings: ``"<version>:<crc32 of the texts>\t"`` and then the eight lists (title,
    then abstract: parts, joined, spans, pairs), tab-separated, items joined by "|"
    (a token is ``[a-z0-9]+``, a pair two tokens and a space)."""
    lists = (*analyze_index(title), *analyze_index(abstract))
    head = f"{ANALYSIS_VERSION}:{_checksum(title, abstract)}"
    return head + "\t" + "\t".join("|".join(items) for items in lists)


def decode_analysis(terms: str | None, title: str, abstract: str) -> tuple[Analysis, Analysis]:
    """(title, abstract) analyses from ``encode_analysis``'s string, if it was made by
    this analyser from these very texts; else computed now (``analyze_index``)."""
    if terms:
        fields = terms.split("\t")
        if len(fields) == 9 and fields[0] == f"{ANALYSIS_VERSION}:{_checksum(title, abstract)}":
            t0, t1, t2, t3, a0, a1, a2, a3 = (f.split("|") if f else [] for f in fields[1:])
            return (t0, t1, t2, t3), (a0, a1, a2, a3)
    return analyze_index(title), analyze_index(abstract)


def searchable(text: str, stopwords: frozenset[str] = QUERY_STOPWORDS) -> bool:
    """Whether ``text`` has any word the index can find (see ``analyze_joined``)."""
    return bool(analyze_with_surface(text, stopwords))


def bigrams(tokens: list[str]) -> list[str]:
    """Adjacent pairs of content tokens, as single features ``"time series"`` -> ``"time seri"``."""
    return [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def phrase_key(text: str) -> str:
    """The stemmed content tokens of a phrase joined by spaces, padded: ``" time seri "``.

    A phrase occurs in a text when its key is a substring of the text's own key. A
    compound is one token (``analyze_joined``): ``" deep qlearn "``.
    """
    return " " + " ".join(analyze_joined(text)) + " "


def text_key(tokens: Iterable[str]) -> str:
    return " " + " ".join(tokens) + " "

"""Text analysis shared by indexing and queries: tokenise, drop stopwords, stem.

Feed text is untrusted: it is only ever lower-cased, split and stemmed here, never
evaluated or interpolated anywhere.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("english")
_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_MAX = 500_000

_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")
_TOKEN = re.compile(r"[a-z0-9]+")


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
    return text.lower()


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
    """Stemmed content tokens in order; stopwords and 1-character tokens dropped."""
    cached = _STEM_CACHE.get  # (inline cache hit: most words; stems are never empty)
    return [
        cached(w) or stem(w)
        for w in _TOKEN.findall(fold(text))
        if len(w) > 1 and w not in stopwords
    ]


def analyze_with_surface(
    text: str, stopwords: frozenset[str] = QUERY_STOPWORDS
) -> list[tuple[str, str]]:
    """``[(stem, surface word), ...]`` for content tokens, in order."""
    cached = _STEM_CACHE.get
    return [
        (cached(w) or stem(w), w)
        for w in _TOKEN.findall(fold(text))
        if len(w) > 1 and w not in stopwords
    ]


def bigrams(tokens: list[str]) -> list[str]:
    """Adjacent pairs of content tokens, as single features ``"time series"`` -> ``"time seri"``."""
    return [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def phrase_key(text: str) -> str:
    """The stemmed content tokens of a phrase joined by spaces, padded: ``" time seri "``.

    A phrase occurs in a text when its key is a substring of the text's own key.
    """
    return " " + " ".join(analyze(text)) + " "


def text_key(tokens: Iterable[str]) -> str:
    return " " + " ".join(tokens) + " "

"""Author-name matching robust to initials, diacritics, order and split surnames.

``"Yann LeCun"`` matches ``"Y. LeCun"``, ``"LeCun, Yann"``, ``"Yann Le Cun"`` and
``"LECUN Yann"``; it does not match ``"Yves LeCun"`` or ``"Yann Lecunn"``.

A name is read as ``(surname, given names)`` in every way its form allows:

- ``"Surname, Given"``: that reading only (``"Jr."``, ``"III"``... are dropped);
- a surname in capitals (``"LECUN Yann"``, ``"Yann LECUN"``): that surname only;
- otherwise given names first, the surname being the last written-out words
  (``"Yann Le Cun"``: ``lecun`` or ``cun``; an initial is never part of a surname);
- and surname first too when the order is open: two words (``"Wang Wei"``), or a
  surname followed by initials only (``"Smith T. J."``). ``"Tyler S. Wilson"`` is
  read one way only: its surname is Wilson.

Two names match when some reading of each has the same surname (spaces and hyphens
removed) and the given names agree:

- two written-out first names must be equal (``"Jia-Wen"`` = ``"Jiawen"``); middle
  names may be missing on either side, and agree where both have one
  (``"Tyler Smith"`` = ``"Tyler J. Smith"`` != ``"Tyler K. Smith"``);
- when a first name is an initial, the initials are compared: one name's initials
  must begin the other's (``"T. Smith"`` = ``"T. J. Smith"`` = ``"Tyler J. Smith"``),
  and the abbreviated name may leave initials out but not add any: ``"Y. J. Wang"`` is
  not ``"Yuxuan Wang"`` (whose initial is Y alone), ``"J.-W. Li"`` is ``"Jia-Wen Li"``.

Diacritics are ignored (``"Göhmann"`` = ``"Gohmann"``), and ä, ö, ü, ø, å also match
their transliterations (``"Goehmann"``, ``"Boeck"``); LaTeX accents (``G\\"ohmann``)
are decoded first. What is in parentheses (an affiliation) is left out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_DIAERESIS = "\u0308"
_RING = "\u030a"
# Letters that NFKD does not decompose, as ASCII.
_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ı": "i",
        "ȷ": "j",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ħ": "h",
        "Ħ": "H",
        "ŀ": "l",
        "Ŀ": "L",
        "'": "",
        "’": "",
        "`": "",
    }
)
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_UNCLOSED = re.compile(r"[(\[].*$")
_WORD = re.compile(r"[A-Za-z]+\.?(?:\s*-\s*[A-Za-z]+\.?)*")
_PART = re.compile(r"[A-Za-z]+\.?")
_VOWELS = re.compile("[AEIOUY]")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md"})


@dataclass(frozen=True, slots=True)
class _Word:
    """One word of a name: ``"Jia-Wen"`` is full ``jiawen`` with initials ``(j, w)``;
    ``"J.-W."`` has initials ``(j, w)`` and no full form."""

    full: str | None
    initials: tuple[str, ...]
    caps: bool  # written in capitals ("LECUN"): a surname, by convention
    letters: str  # as written, lower-cased: "jr" for "Jr."


def _word(text: str) -> _Word:
    parts = _PART.findall(text)
    letters = [p.rstrip(".") for p in parts]
    joined = "".join(letters)
    if len(joined) <= 3 and joined.isupper() and not _VOWELS.search(joined):
        letters = list(joined)  # "TJ Smith", "Smith TJ": initials run together
        initial = True
    else:
        initial = all(
            len(x) == 1 or (len(x) == 2 and p[-1] == ".")
            for x, p in zip(letters, parts, strict=True)
        )
    return _Word(
        full=None if initial else joined.lower(),
        initials=tuple(x[0].lower() for x in letters),
        caps=not initial and len(joined) > 1 and joined.isupper(),
        letters=joined.lower(),
    )


def _spellings(name: str) -> tuple[str, ...]:
    """``name`` in ASCII letters: without diacritics, and (when it has ä, ö, ü, ø or å)
    also transliterated (``Göhmann`` -> ``Gohmann``, ``Goehmann``)."""
    text = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in text if not unicodedata.combining(ch)).translate(_LETTERS)
    if _DIAERESIS not in text and _RING not in text and "ø" not in text and "Ø" not in text:
        return (plain,)
    text = re.sub(r"([aouAOU])" + _DIAERESIS, r"\1e", text)
    text = re.sub(r"([aA])" + _RING, r"\1a", text)
    text = text.replace("ø", "oe").replace("Ø", "Oe")
    long = "".join(ch for ch in text if not unicodedata.combining(ch)).translate(_LETTERS)
    return (plain, long) if long != plain else (plain,)


def _words(text: str) -> list[_Word]:
    words = [_word(w) for w in _WORD.findall(text)]
    while len(words) > 2 and words[-1].letters in _SUFFIXES:  # "Kenneth M. Merz Jr."
        words.pop()
    return words


Reading = tuple[str, tuple[_Word, ...]]


def _surname(words: list[_Word] | tuple[_Word, ...]) -> str | None:
    if not words or any(w.full is None for w in words):
        return None  # an initial is never part of a surname
    return "".join(w.full or "" for w in words)


def _readings(text: str) -> list[Reading]:
    parts = [p for p in text.split(",") if p.strip()]
    parts = [p for p in parts if not all(w.letters in _SUFFIXES for w in _words(p))]
    if len(parts) >= 2:  # "LeCun, Yann": the order is given
        surname, given = _surname(_words(parts[0])), tuple(_words(parts[1]))
        if surname and given:
            return [(surname, given)]
    words = _words(" ".join(parts))
    n = len(words)
    if n < 2:
        return []
    caps = [w.caps for w in words]
    k = sum(caps)
    if 0 < k < n and all(caps[:k]):  # "LECUN Yann"
        surname = _surname(words[:k])
        return [(surname, tuple(words[k:]))] if surname else []
    if 0 < k < n and all(caps[n - k :]):  # "Yann LECUN"
        surname = _surname(words[n - k :])
        return [(surname, tuple(words[: n - k]))] if surname else []
    out: list[Reading] = []
    for i in range(1, n):  # given names first: "Yann Le Cun"
        surname = _surname(words[i:])
        if surname:
            out.append((surname, tuple(words[:i])))
    for i in range(1, n):  # surname first, when the order is open: "Wang Wei", "Smith T."
        surname, rest = _surname(words[:i]), tuple(words[i:])
        if surname and (n == 2 or all(w.full is None for w in rest)):
            out.append((surname, rest))
    return out


def _clean(name: str) -> str:
    if "\\" in name:  # LaTeX accents in text stored before they were decoded
        from ..sources.normalize import decode_latex

        name = decode_latex(name)
    previous = None
    while previous != name:  # affiliations: "Jia-Wen Li (Yunnan Univ.)"
        previous, name = name, _BRACKETED.sub(" ", name)
    return _UNCLOSED.sub(" ", name)


@lru_cache(maxsize=65536)
def name_keys(name: str) -> tuple[Reading, ...]:
    """``(surname, given names)`` readings of a name, most likely first."""
    text = _clean(name)
    keys: list[Reading] = []
    for spelling in _spellings(text):
        keys.extend(_readings(spelling))
    return tuple(dict.fromkeys(keys))


def _word_agree(a: _Word, b: _Word) -> bool:
    if a.full is not None and b.full is not None:
        return a.full == b.full
    if a.full is None and b.full is None:
        shorter = min(len(a.initials), len(b.initials))
        return a.initials[:shorter] == b.initials[:shorter]
    short, long = (a, b) if a.full is None else (b, a)
    return long.initials[: len(short.initials)] == short.initials


def _initials(given: tuple[_Word, ...]) -> tuple[str, ...]:
    return tuple(i for w in given for i in w.initials)


def _given_agree(a: tuple[_Word, ...], b: tuple[_Word, ...]) -> bool:
    if not a or not b:
        return False
    if a[0].full is not None and b[0].full is not None:
        return all(_word_agree(x, y) for x, y in zip(a, b, strict=False))
    ia, ib = _initials(a), _initials(b)
    if a[0].full is None and b[0].full is None:
        shorter = min(len(ia), len(ib))
        return ia[:shorter] == ib[:shorter]
    # One first name is written out: the abbreviated name may leave initials out, not add.
    short, long = (ia, ib) if a[0].full is None else (ib, ia)
    return long[: len(short)] == short


def names_match(wanted: str, candidate: str) -> bool:
    """True when ``candidate`` (as a paper lists it) is the author ``wanted``."""
    for surname, given in name_keys(wanted):
        for c_surname, c_given in name_keys(candidate):
            if surname == c_surname and _given_agree(given, c_given):
                return True
    return False


def surnames(name: str) -> tuple[str, ...]:
    """Every surname reading of ``name``: keys for an index of paper authors."""
    return tuple(dict.fromkeys(s for s, _ in name_keys(name)))

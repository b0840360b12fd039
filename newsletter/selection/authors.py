"""Author-name matching robust to initials, diacritics, order and split surnames.

``"Yann LeCun"`` matches ``"Y. LeCun"``, ``"LeCun, Yann"``, ``"Yann Le Cun"`` and
``"LECUN Yann"``; it does not match ``"Yves LeCun"`` or ``"Yann Lecunn"``.
A name is reduced to ``(surname, given)`` pairs for every way of splitting it (given
names first, or surname first); two names match when some surname is equal (spaces
removed) and the given names agree (equal, or one is the other's initial).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPLIT = re.compile(r"[^a-z]+")


def _tokens(name: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("ß", "ss").replace("ø", "o").replace("ł", "l").replace("æ", "ae")
    if "," in text:  # "LeCun, Yann" -> "Yann LeCun"
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    return tuple(t for t in _SPLIT.split(text) if t)


@lru_cache(maxsize=65536)
def name_keys(name: str) -> tuple[tuple[str, str], ...]:
    """``(surname, first given name)`` readings of a name, most likely first."""
    tokens = _tokens(name)
    if len(tokens) < 2:
        return ((tokens[0], ""),) if tokens else ()
    keys: list[tuple[str, str]] = []
    for i in range(1, len(tokens)):  # given names first: "Yann Le Cun"
        keys.append(("".join(tokens[i:]), tokens[0]))
    if "," not in name:  # surname first, as some sources write East Asian names
        for i in range(1, len(tokens)):
            keys.append(("".join(tokens[:i]), tokens[i]))
    return tuple(dict.fromkeys(k for k in keys if len(k[0]) > 1))


def _given_agree(a: str, b: str) -> bool:
    if not a or not b:
        return False
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return a == b


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

"""Subscriber preferences edited on the web, stored in the state, applied over the YAML.

The web app (``newsletter serve``) stores what a reader chose with
``Store.set_prefs(email, prefs)``; the pipeline calls ``apply_prefs(subscriber, prefs)``
with ``Store.get_prefs(email)`` so the stored choice takes precedence over the YAML.

The stored dict (version 1). Every key is optional; an absent key keeps the YAML value::

    {
      "version": 1,
      "schedule": "weekdays 07:30",        # same grammar as the YAML (parse_schedule)
      "max_papers": 8,                     # 1..MAX_PAPERS (500)
      "interests": [                       # replaces the YAML interests as a whole
        {
          "name": "LLM agents",            # unique (case-insensitive), 1..80 characters
          "description": "free text",
          "keywords": ["tool use", "planning"],
          "categories": ["cs.CL", "cs.*"],
          "authors": ["Yann LeCun"],
          "exclude": ["survey"]
        }
      ]
    }

An interest kept under the same name as a YAML interest keeps that interest's other
settings (``max_papers``, ``trending``). Pure functions, no I/O, no third-party imports.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from .models import Interest, Subscriber
from .schedule import parse_schedule

PREFS_VERSION = 1
MAX_PAPERS = 500  # the most papers one edition may carry (a guard against typos)
MAX_INTERESTS = 20
MAX_ITEMS = 50  # items per list (keywords, categories, ...)
MAX_NAME = 80
MAX_ITEM = 200  # characters per list item
MAX_DESCRIPTION = 2000
LIST_FIELDS = ("keywords", "categories", "authors", "exclude")

# arXiv-style codes (cs.CL, math.AP, hep-th, q-bio.NC, astro-ph.CO) and wildcards (cs.*).
_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z-]*(\.([A-Za-z][A-Za-z-]*|\*))?$|^\*$")
# fnmatch patterns over code characters (quant-*, cs.C*): the selector matches them too.
_CATEGORY_GLOB = re.compile(r"[A-Za-z0-9.*?\[\]!-]*[*?\[][A-Za-z0-9.*?\[\]!-]*")


def is_category(value: str) -> bool:
    """An arXiv code (cs.CL, hep-th), archive wildcard (cs.*) or a glob over code
    characters (quant-*): what the web form and the config accept as a category."""
    return bool(_CATEGORY.match(value) or _CATEGORY_GLOB.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Limits:
    """What one reader's preferences may hold (``limits_for``)."""

    interests: int = MAX_INTERESTS
    items: int = MAX_ITEMS
    name: int = MAX_NAME
    item: int = MAX_ITEM
    description: int = MAX_DESCRIPTION
    categories: frozenset[str] = frozenset()  # accepted although not arXiv codes


def limits_for(subscriber: Subscriber) -> Limits:
    """The web limits, raised to what the subscriber's config already holds: a reader the
    config gives 25 interests, or a category a feed uses as a tag, must still be able to
    save the form (a schedule change, say), and have the saved choice applied."""
    interests = subscriber.interests
    lists = [getattr(i, key) for i in interests for key in LIST_FIELDS]
    return Limits(
        interests=max(MAX_INTERESTS, len(interests)),
        items=max([MAX_ITEMS, *map(len, lists)]),
        name=max([MAX_NAME, *(len(i.name) for i in interests)]),
        item=max([MAX_ITEM, *(len(v) for values in lists for v in values)]),
        description=max([MAX_DESCRIPTION, *(len(i.description) for i in interests)]),
        categories=frozenset(c for i in interests for c in i.categories),
    )


def _clean_list(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple):
        return None
    if not all(isinstance(v, str) for v in value):
        return None
    return tuple(v.strip() for v in value if v.strip())


def validate_prefs(
    data: dict[str, Any], *, trending: Collection[str] = (), limits: Limits | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Check a prefs dict; return ``(clean, problems)``.

    ``trending`` names interests that are trending-only in the YAML: like the YAML, they
    may match nothing else. ``limits``: the reader's (``limits_for``), else the defaults.

    ``problems`` are one line each, ``<field>: <what> (<how to fix>)``; ``clean`` holds
    the valid keys only, normalised (whitespace stripped, empty items dropped).
    """
    clean: dict[str, Any] = {"version": PREFS_VERSION}
    problems: list[str] = []
    lim = limits or Limits()

    if "schedule" in data:
        text = data["schedule"]
        if not isinstance(text, str) or not text.strip():
            problems.append("schedule: is empty (use e.g. 'daily 07:00')")
        else:
            try:
                clean["schedule"] = parse_schedule(text).text
            except ValueError as err:
                problems.append(f"schedule: {err}")

    if "max_papers" in data:
        value = data["max_papers"]
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            try:  # ("²" and "--5" pass isdigit, 5000 digits exceed int's limit: not numbers)
                number = int(value.strip())
            except ValueError:
                number = None
        if number is None or not 1 <= number <= MAX_PAPERS:
            shown = str(value) if len(str(value)) <= 30 else f"{str(value)[:30]}..."
            problems.append(f"max papers: '{shown}' is not a whole number from 1 to {MAX_PAPERS}")
        else:
            clean["max_papers"] = number

    if "interests" in data:
        interests = data["interests"]
        if not isinstance(interests, list):
            problems.append("interests: must be a list")
        else:
            if len(interests) > lim.interests:
                problems.append(
                    f"interests: {len(interests)} given, at most {lim.interests} (remove some)"
                )
            out: list[dict[str, Any]] = []
            seen: set[str] = set()
            exempt = {name.lower() for name in trending}
            for i, item in enumerate(interests[: lim.interests], 1):
                got = _validate_interest(item, i, seen, problems, exempt, lim)
                if got is not None:
                    out.append(got)
            clean["interests"] = out
    return clean, problems


def _validate_interest(
    item: Any, index: int, seen: set[str], problems: list[str], exempt: set[str], lim: Limits
) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        problems.append(f"interest {index}: must be a mapping")
        return None
    name = item.get("name")
    name = name.strip() if isinstance(name, str) else ""
    where = f"interest {index}" + (f" '{name}'" if name else "")
    before = len(problems)
    if not name:
        problems.append(f"{where}: name is empty (give each interest a short name)")
    elif len(name) > lim.name:
        problems.append(f"{where}: name is longer than {lim.name} characters (shorten it)")
    elif name.lower() in seen:
        problems.append(f"{where}: the name is used twice (names must be unique)")
    seen.add(name.lower())
    description = item.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: description must be text")
        description = ""
    description = description.strip()
    if len(description) > lim.description:
        problems.append(f"{where}: description is longer than {lim.description} characters")
    out: dict[str, Any] = {"name": name, "description": description}
    for key in LIST_FIELDS:
        values = _clean_list(item.get(key, []))
        if values is None:
            problems.append(f"{where}: {key} must be a list of text")
            values = ()
        if len(values) > lim.items:
            problems.append(f"{where}: {key} has {len(values)} items, at most {lim.items}")
        for v in values:
            if len(v) > lim.item:
                problems.append(f"{where}: {key} item '{v[:30]}...' is too long")
        if key == "categories":
            for v in values:
                if not is_category(v) and v not in lim.categories:
                    problems.append(
                        f"{where}: category '{v}' is not an arXiv code "
                        "(use e.g. cs.CL, hep-th or cs.*)"
                    )
        out[key] = list(values)
    matches = out["keywords"] or out["categories"] or out["authors"] or description
    if not matches and name.lower() not in exempt:
        problems.append(
            f"{where}: matches nothing (add keywords, categories, authors or a description)"
        )
    return out if len(problems) == before else None


def apply_prefs(subscriber: Subscriber, prefs: dict[str, Any] | None) -> Subscriber:
    """The subscriber with stored web preferences laid over the YAML settings.

    Tolerant by design (the pipeline must not stop for one reader's stale prefs): keys
    that are missing, unknown or invalid keep the YAML value. ``None`` returns the
    subscriber unchanged.
    """
    if not prefs or not isinstance(prefs, dict):
        return subscriber
    clean, problems = validate_prefs(
        prefs, trending=trending_interests(subscriber), limits=limits_for(subscriber)
    )
    changes: dict[str, Any] = {}
    if "schedule" in clean:
        changes["schedule"] = clean["schedule"]
    if "max_papers" in clean:
        changes["max_papers"] = clean["max_papers"]
    # Interests are replaced only as a whole and only when every one of them is valid.
    if "interests" in clean and not any(p.startswith("interest") for p in problems):
        by_name = {i.name.lower(): i for i in subscriber.interests}
        interests = []
        for item in clean["interests"]:
            base = by_name.get(item["name"].lower(), Interest(name=item["name"]))
            interests.append(
                replace(
                    base,
                    name=item["name"],
                    description=item["description"],
                    keywords=tuple(item["keywords"]),
                    categories=tuple(item["categories"]),
                    authors=tuple(item["authors"]),
                    exclude=tuple(item["exclude"]),
                )
            )
        changes["interests"] = tuple(interests)
    return replace(subscriber, **changes) if changes else subscriber


def trending_interests(subscriber: Subscriber) -> set[str]:
    """Names of the subscriber's trending interests (exempt from "matches nothing")."""
    return {i.name for i in subscriber.interests if i.trending}


def prefs_of(subscriber: Subscriber) -> dict[str, Any]:
    """The prefs dict describing a subscriber's current settings (fills the web form)."""
    return {
        "version": PREFS_VERSION,
        "schedule": subscriber.schedule,
        "max_papers": subscriber.max_papers,
        "interests": [
            {
                "name": i.name,
                "description": i.description,
                **{key: list(getattr(i, key)) for key in LIST_FIELDS},
            }
            for i in subscriber.interests
        ],
    }

"""Configuration: the user-facing YAML schema, loaded and validated once.

Every default lives in this module. ``load_config`` reports *all* problems at once
as one ``ConfigError`` whose lines read
``<file>:<line>: <key path>: <what> (<how to fix>)``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import yaml

from .errors import ConfigError
from .models import Interest, Subscriber
from .prefs import is_category  # the web form's check: one rule for both
from .schedule import parse_fetch_schedule, parse_interval, parse_schedule

DEFAULT_CONFIG = "subscribers.yaml"
CONFIG_ENV = "NEWSLETTER_CONFIG"
SECRET_KEY_ENV = "NEWSLETTER_SECRET_KEY"

SOURCE_TYPES = ("arxiv", "arxiv_api", "hf_daily", "feed", "jsonfeed")
TRANSPORTS = ("smtp", "outbox", "console")
SMTP_SECURITY = ("starttls", "tls", "none")
DEFAULT_ANNOUNCE_TYPES = ("new", "cross")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    type: str  # one of SOURCE_TYPES
    url: str  # http(s)://, file:// or a local path (resolved against the config's folder)
    announce_types: tuple[str, ...] = DEFAULT_ANNOUNCE_TYPES
    timeout: float = 20.0  # seconds, connect and read (a whole download: 3 x this)
    retries: int = 2  # extra attempts on timeouts and 5xx
    enabled: bool = True
    fetch_every: str | None = None  # e.g. "1h"; None = global fetch schedule


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password_env: str | None = None  # name of the environment variable
    password: str | None = field(default=None, repr=False)  # resolved from password_env
    timeout: float = 30.0
    connections: int = 4  # parallel connections
    max_per_connection: int = 100  # messages before a connection is recycled
    rate_per_second: float | None = None
    rate_per_hour: int | None = None
    retries: int = 3  # attempts on 4xx / dropped connections
    backoff: float = 1.0  # seconds, doubled each retry (bounded)
    ca_file: str | None = None  # extra CA bundle for private relays


@dataclass(frozen=True, slots=True)
class DkimConfig:
    selector: str
    domain: str
    key_file: str
    key: bytes = field(default=b"", repr=False)  # loaded at config time


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    from_addr: str = "Paper Digest <digest@localhost>"  # the YAML key is `from`
    transport: str = "outbox"
    outbox: Path = Path("outbox")
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    reply_to: str | None = None
    list_id: str | None = None  # default derived from the From domain
    dkim: DkimConfig | None = None
    max_failures: int = 3  # permanent failures before a subscriber is suppressed
    send_empty: bool = False  # send an email even when an edition is empty
    workers: int = 0  # processes that select, render and compose (0 = one per CPU for big runs)
    workers_nice: int = 10  # nice value added to those processes (0-19): sending goes first


@dataclass(frozen=True, slots=True)
class WebConfig:
    base_url: str = "http://localhost:8025"
    host: str = "127.0.0.1"
    port: int = 8025


@dataclass(frozen=True, slots=True)
class DefaultsConfig:
    timezone: str = "UTC"
    schedule: str = "daily 07:00"
    max_papers: int = 10
    min_score: float = 0.0
    lookback_days: int = 7  # a first edition considers papers first seen this many days back


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    semantic: bool = False
    semantic_model: str | None = None  # path to a local sentence-transformers model
    trending_boost: float = 0.0  # weight of HF upvotes in personal interests (0 = off)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    fetch_schedule: str = "every 60m"  # global fetch interval or a cron line
    freshness_minutes: int = 60  # sources fetched within this window count as fresh
    grace_hours: float = 6.0  # a missed edition is still sent this long after its time


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the YAML file it came from
    state: str  # SQLite path or URL
    sources: tuple[SourceConfig, ...]
    subscribers: tuple[Subscriber, ...]
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    web: WebConfig = field(default_factory=WebConfig)
    defaults: DefaultsConfig = field(default_factory=DefaultsConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    templates: Path | None = None  # a user template folder; None = the packaged one
    secret_key: str | None = field(default=None, repr=False)  # from NEWSLETTER_SECRET_KEY
    # Non-fatal findings, one line each in the ``<file>:<line>: <key path>: ...`` form;
    # the CLI prints them as ``Warning: ...``.
    warnings: tuple[str, ...] = ()

    def subscriber(self, email: str) -> Subscriber:
        from .errors import SubscriberNotFound

        wanted = email.strip().lower()
        for sub in self.subscribers:
            if sub.email.lower() == wanted:
                return sub
        raise SubscriberNotFound(email)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to read: ``--config``, else ``$NEWSLETTER_CONFIG``, else default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else Path(DEFAULT_CONFIG)


# --------------------------------------------------------------------------- loading

ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
DEFAULT_STATE = "var/newsletter.db"

_ROOT_KEYS = (
    "state",
    "sources",
    "delivery",
    "web",
    "defaults",
    "subscribers",
    "selection",
    "scheduler",
    "templates",
)
_SOURCE_KEYS = (
    "name",
    "type",
    "url",
    "announce_types",
    "timeout",
    "retries",
    "enabled",
    "fetch_every",
)
_SMTP_KEYS = (
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "timeout",
    "connections",
    "max_per_connection",
    "rate_per_second",
    "rate_per_hour",
    "retries",
    "backoff",
    "ca_file",
)
_DELIVERY_KEYS = (
    "from",
    "transport",
    "outbox",
    "smtp",
    "reply_to",
    "list_id",
    "dkim",
    "max_failures",
    "send_empty",
    "workers",
    "workers_nice",
)
_DKIM_KEYS = ("selector", "domain", "key_file")
_WEB_KEYS = ("base_url", "host", "port")
_DEFAULTS_KEYS = ("timezone", "schedule", "max_papers", "min_score", "lookback_days")
_SELECTION_KEYS = ("semantic", "semantic_model", "trending_boost")
_SCHEDULER_KEYS = ("fetch_schedule", "freshness_minutes", "grace_hours")
_SUBSCRIBER_KEYS = (
    "email",
    "name",
    "timezone",
    "schedule",
    "max_papers",
    "min_score",
    "interests",
    "trending",
    "exclude",
)
_INTEREST_KEYS = (
    "name",
    "description",
    "keywords",
    "categories",
    "authors",
    "exclude",
    "max_papers",
    "trending",
)

# libyaml (C) when PyYAML was built with it: ~3x faster than the pure-Python parser on
# large files (benchmarks/bench_config.py); both keep the line marks used in messages.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"

# RFC 5322 dot-atom local part (no quoted local parts), and a DNS host name.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_RE = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# An RFC 2919 list label: dot-separated parts of letters, digits and "-", at least one dot
# (``list-label "." namespace``); the dot-atom subset the composer writes as it is.
_LIST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
LIST_LABEL_RE = re.compile(rf"^{_LIST_PART}(?:\.{_LIST_PART})+$")


def parse_duration(text: str) -> timedelta:
    """Parse an interval: ``90s``, ``30m``, ``1h30m``, ``2d``, ``every 60 minutes``.

    The grammar of ``schedule.parse_interval`` (one definition for the loader and the
    daemon). Raises ``ValueError`` with a message that says how to fix it.
    """
    return parse_interval(text)


def check_email(address: str) -> str | None:
    """Why ``address`` (a bare ``name@domain``) is not a usable address, or None if it is.

    Syntax only (no DNS): a dot-atom local part and a host name with at least two
    labels (or ``localhost``); internationalised domains are checked in IDNA form.
    """
    if _CONTROL_RE.search(address) or " " in address:
        return "contains spaces or control characters"
    if address.count("@") != 1:
        return "needs exactly one '@'"
    local, domain = address.split("@")
    if not local or not domain:
        return "needs text on both sides of the '@'"
    if len(local) > 64 or len(address) > 254:
        return "is too long"
    if not _LOCAL_RE.match(local):
        return f"has an invalid part before the '@' ('{local}')"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return f"has an invalid domain '{domain}'"
    labels = ascii_domain.rstrip(".").split(".")
    if not all(_LABEL_RE.match(label) for label in labels):
        return f"has an invalid domain '{domain}'"
    if len(labels) < 2 and ascii_domain.lower() != "localhost":
        return f"has a domain without a dot ('{domain}')"
    if labels[-1].isdigit():
        return f"has an invalid domain '{domain}'"
    return None


def split_address(value: str) -> tuple[str, str]:
    """Split ``Name <addr>`` or a bare ``addr`` into (display name, address)."""
    value = value.strip()
    m = re.match(r"^(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]*)>$", value)
    if not m:
        return "", value
    name = m["name"].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"')
    return name, m["addr"].strip()


def split_list_id(value: str) -> tuple[str | None, str] | None:
    """Split a ``delivery.list_id``: ``Name <label>`` gives (name, label), a bare
    ``label`` gives (None, label): its name is then the From name. None when the
    angle brackets are not one ``<...>`` at the end."""
    value = value.strip()
    if "<" not in value and ">" not in value:
        return None, value
    m = re.match(r"^(?P<name>[^<>]*?)\s*<(?P<label>[^<>]*)>$", value)
    if not m:
        return None
    name = m["name"].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name, m["label"].strip()


# An exclusion that names categories (the selector's rule): "cs.CV", "astro-ph.*", "cs*".
_EXCLUDE_CATEGORY_RE = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z-]+|\.\*|\*)$")


def _show(value: object, limit: int = 60) -> str:
    text = str(value).replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _empty_list(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.SequenceNode) and not node.value


def _tab_indented(text: str, line: int) -> bool:
    """Whether line ``line`` (0-based) of ``text``, or the one above it, is indented with
    a tab (the C YAML parser's message for that does not say "tab")."""
    lines = text.splitlines()
    for row in lines[max(line - 1, 0) : line + 1] if line >= 0 else ():
        if "\t" in row[: len(row) - len(row.lstrip())]:
            return True
    return False


def _dmarc_aligned(sender: str, signing: str) -> bool:
    """Whether a DKIM signature of ``signing`` can align with a From at ``sender`` under
    DMARC's relaxed rule (one organisational domain). Without the public suffix list
    this errs towards yes: the same domain, one inside the other, or the same last two
    labels ("news.example.org" and "mail.example.org") all count as aligned."""
    if sender == signing or sender.endswith("." + signing) or signing.endswith("." + sender):
        return True
    return sender.split(".")[-2:] == signing.split(".")[-2:]


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def _one_of(word: str, choices: Sequence[str]) -> str:
    """``(did you mean 'x'?)`` or ``(use one of a, b, c)``."""
    guess = _did_you_mean(word, choices)
    if guess:
        return f"(did you mean '{guess}'?)"
    return f"(use one of {', '.join(choices)})"


def _given_texts(
    node: yaml.Node | None, path: str, *, single: bool
) -> Iterator[tuple[yaml.Node, str, str]]:
    """``(node, path, text)`` of each non-empty text of a list (with ``single``, of one
    text too), for checks on top of ``text``/``texts``: what those report (not a text,
    a yes/no, control characters) is left out here."""
    if isinstance(node, yaml.SequenceNode):
        items = [(item, _join(path, j)) for j, item in enumerate(node.value)]
    elif single and isinstance(node, yaml.ScalarNode):
        items = [(node, path)]
    else:
        return
    for item, where in items:
        if isinstance(item, yaml.ScalarNode) and item.tag != _BOOL:
            value = str(item.value).strip()
            if value and not _CONTROL_RE.search(value):
                yield item, where, value


# Source types whose papers carry arXiv category codes only (or none at all).
_ARXIV_CODE_TYPES = ("arxiv", "hf_daily")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Map:
    """A checked mapping node: key -> (key node, value node)."""

    def __init__(self, node: yaml.Node | None, path: str, items: dict[str, tuple[Any, Any]]):
        self.node = node
        self.path = path
        self.items = items

    def get(self, key: str) -> yaml.Node | None:
        """The value node, or None when the key is absent or null."""
        pair = self.items.get(key)
        if pair is None:
            return None
        value = pair[1]
        if isinstance(value, yaml.ScalarNode) and value.tag == _NULL:
            return None
        return cast(yaml.Node, value)

    def has(self, key: str) -> bool:
        return key in self.items


class _Loader:
    def __init__(
        self, display: str, base: Path, env: Mapping[str, str], yl: Any, *, secrets: bool = True
    ):
        self.display = display
        self.base = base
        self.env = env
        self.yl = yl
        self.secrets = secrets  # False: a secret missing from the environment only warns
        self.problems: list[tuple[int, str]] = []
        self.warnings: list[tuple[int, str]] = []
        self.tag_sources: tuple[str, ...] = ()  # sources whose categories may be free-form

    # -- reporting ----------------------------------------------------------------
    def _where(self, line: int) -> str:
        return f"{self.display}:{line}" if line else self.display

    def problem(self, at: yaml.Node | int | None, path: str, message: str) -> None:
        line = at if isinstance(at, int) else (_line(at) if at is not None else 0)
        head = f"{self._where(line)}: {path}: " if path else f"{self._where(line)}: "
        self.problems.append((line, head + message))

    def warn(self, at: yaml.Node | None, path: str, message: str) -> None:
        line = _line(at) if at is not None else 0
        self.warnings.append((line, f"{self._where(line)}: {path}: {message}"))

    def missing(self, m: _Map, key: str, hint: str) -> None:
        line = _line(m.node) if m.node is not None else 0
        where = _join(m.path, key)
        if m.has(key):
            self.problem(m.items[key][1], where, f"has no value ({hint})")
        else:
            self.problem(line, where, f"missing required key ({hint})")

    # -- structure ----------------------------------------------------------------
    def mapping(
        self,
        node: yaml.Node | None,
        path: str,
        allowed: Sequence[str],
        *,
        forbidden: Mapping[str, str] | None = None,
        example: str = "",
    ) -> _Map | None:
        """Check a mapping's keys; None (reported) when it is not a mapping."""
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
            return _Map(None, path, {})
        if not isinstance(node, yaml.MappingNode):
            hint = f" (write it as {example})" if example else ""
            self.problem(node, path, f"expected a mapping of keys, got {self.describe(node)}{hint}")
            return None
        try:
            self.yl.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        except yaml.MarkedYAMLError as err:
            line = err.problem_mark.line + 1 if err.problem_mark else _line(node)
            self.problem(line, path, f"bad merge key: {err.problem}")
            return None
        items: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _NULL:
                self.problem(key_node, path or "(top level)", "keys must be plain names")
                continue
            key = str(key_node.value)
            where = _join(path, key)
            if key in items:
                first = _line(items[key][0])
                self.problem(key_node, where, f"duplicate key (first at line {first}; keep one)")
                continue
            if not path and key.startswith("x-"):
                continue  # extension keys, a place for YAML anchors
            if forbidden and key in forbidden:
                self.problem(key_node, where, forbidden[key])
                continue
            if key not in allowed:
                guess = _did_you_mean(key, allowed)
                hint = f"did you mean '{guess}'?" if guess else f"allowed: {', '.join(allowed)}"
                self.problem(key_node, where, f"unknown key ({hint})")
                continue
            items[key] = (key_node, value_node)
        return _Map(node, path, items)

    def sequence(self, node: yaml.Node | None, path: str, example: str) -> list[yaml.Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, f"expected a list ({example}), got {self.describe(node)}")
            return []
        return list(node.value)

    # -- scalars ------------------------------------------------------------------
    def describe(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        if node.tag == _NULL:
            return "nothing"
        if node.tag == _BOOL:
            return f"the true/false value '{node.value}'"
        if node.tag in (_INT, _FLOAT):
            return f"the number {node.value}"
        return f"the text '{_show(node.value)}'"

    def construct(self, node: yaml.Node) -> Any:
        return self.yl.construct_object(node, deep=True)

    def text(self, node: yaml.Node | None, path: str, default: str = "") -> str:
        """A one-line string; numbers and dates keep their spelling (``selector: 2024``)."""
        if node is None:
            return default
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, path, f"expected text, got {self.describe(node)}")
            return default
        value = str(node.value).strip()
        if node.tag == _BOOL:
            self.problem(
                node, path, f'expected text, got {self.describe(node)} (quote it: "{value}")'
            )
            return default
        if not value:
            self.problem(node, path, "is empty (give a value or remove the key)")
            return default
        if _CONTROL_RE.search(value):
            self.problem(node, path, "contains a line break or control character (use one line)")
            return default
        return value

    def optional_text(self, node: yaml.Node | None, path: str) -> str | None:
        return self.text(node, path) or None if node is not None else None

    def integer(
        self,
        node: yaml.Node | None,
        path: str,
        default: int,
        *,
        minimum: int,
        maximum: int | None = None,
    ) -> int:
        if node is None:
            return default
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
            hint = ""
            if isinstance(node, yaml.ScalarNode) and str(node.value).strip().isdigit():
                hint = " (remove the quotes)"
            self.problem(node, path, f"expected a whole number, got {self.describe(node)}{hint}")
            return default
        value = int(self.construct(node))
        if value < minimum:
            self.problem(node, path, f"must be at least {minimum}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.problem(node, path, f"must be at most {maximum}, got {value}")
            return default
        return int(value)

    def number(
        self,
        node: yaml.Node | None,
        path: str,
        default: float,
        *,
        minimum: float = 0.0,
        positive: bool = False,
    ) -> float:
        if node is None:
            return default
        ok = isinstance(node, yaml.ScalarNode) and node.tag in (_INT, _FLOAT)
        value = self.construct(node) if ok else None
        if not ok or value is None or not math.isfinite(value):
            self.problem(node, path, f"expected a number, got {self.describe(node)}")
            return default
        if positive and value <= 0:
            self.problem(node, path, f"must be greater than 0, got {node.value}")
            return default
        if value < minimum:
            self.problem(node, path, f"must be at least {minimum:g}, got {node.value}")
            return default
        return float(value)

    def boolean(self, node: yaml.Node | None, path: str, default: bool) -> bool:
        if node is None:
            return default
        if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
            self.problem(node, path, f"expected true or false, got {self.describe(node)}")
            return default
        return bool(self.construct(node))

    def texts(self, node: yaml.Node | None, path: str, example: str) -> tuple[str, ...]:
        if node is None:
            return ()
        if isinstance(node, yaml.ScalarNode):
            self.problem(
                node, path, f"expected a list such as {example}, got {self.describe(node)}"
            )
            return ()
        items = self.sequence(node, path, f"such as {example}")
        out = [self.text(item, _join(path, i)) for i, item in enumerate(items)]
        return tuple(v for v in out if v)

    def choice(
        self,
        node: yaml.Node | None,
        path: str,
        default: str,
        choices: Sequence[str],
        what: str,
        synonyms: Mapping[str, str] | None = None,
    ) -> str:
        value = self.text(node, path, default)
        if node is not None and value != default and value not in choices:
            if value.lower() in choices:
                return value.lower()
            guess = (synonyms or {}).get(value.lower())
            hint = f"(did you mean '{guess}'?)" if guess else _one_of(value, choices)
            self.problem(node, path, f"unknown {what} '{_show(value)}' {hint}")
            return default
        return value

    def port(self, node: yaml.Node | None, path: str, default: int) -> int:
        value = self.integer(node, path, default, minimum=-(2**63))
        if node is not None and not 1 <= value <= 65535:
            self.problem(node, path, f"{value} is not a port number (use 1-65535)")
            return default
        return value

    # -- domain values ------------------------------------------------------------
    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(os.path.normpath(self.base / p))

    def email(self, node: yaml.Node | None, path: str) -> str:
        value = self.text(node, path)
        if node is None or not value:
            return value
        why = check_email(value)
        if why:
            self.problem(
                node,
                path,
                f"'{_show(value)}' is not a valid email address: {why} "
                "(write it as name@example.org)",
            )
        return value

    def address(self, node: yaml.Node | None, path: str, default: str | None) -> str | None:
        """An address that may carry a display name: ``Name <name@example.org>``."""
        if node is None:
            return default
        value = self.text(node, path)
        if not value:
            return default
        _, addr = split_address(value)
        why = check_email(addr)
        if why and "<" not in value and " " in value.strip():
            why = "a display name needs the address in angle brackets"
        if why:
            self.problem(
                node,
                path,
                f"'{_show(value)}' is not a valid address: {why} "
                '(write it as "Name <name@example.org>" or name@example.org)',
            )
            return default
        return value

    def timezone(self, node: yaml.Node | None, path: str, default: str) -> str:
        value = self.text(node, path, default)
        if node is None or value in _time_zones():
            return value
        try:
            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
        guess = _did_you_mean(value, _time_zones())
        hint = f"did you mean '{guess}'?" if guess else "use an IANA name such as Europe/London"
        self.problem(node, path, f"unknown time zone '{_show(value)}' ({hint})")
        return default

    def schedule(self, node: yaml.Node | None, path: str, default: str) -> str:
        value = self.text(node, path, default)
        if node is None:
            return value
        try:
            parse_schedule(value)
        except ValueError as err:
            self.problem(node, path, str(err))
            return default
        return value

    def check_words(self, node: yaml.Node | None, path: str, what: str) -> None:
        """A warning for each keyword, exclusion (``what="exclude"``) or description with
        no word the selection can search for: stopwords only, 1-letter words, symbols
        ("C++"), a script other than Latin. It would match (or exclude) nothing."""
        from .selection.text import QUERY_STOPWORDS, STOPWORDS, analyze_with_surface, words

        stop = STOPWORDS if what == "exclude" else QUERY_STOPWORDS
        for item, where, value in _given_texts(node, path, single=True):
            if analyze_with_surface(value, stop):
                continue
            if what == "exclude" and _EXCLUDE_CATEGORY_RE.match(value):
                continue  # a category to exclude (cs.CV, astro-ph.*), not words
            raw = list(dict.fromkeys(words(value)))
            why = [f"'{w}' is a stopword" for w in raw if len(w) > 1]
            why += [f"'{w}' has 1 letter" for w in raw if len(w) == 1]
            reason = "; ".join([*why[:3], "letters a-z and digits are indexed"])
            effect = "excludes nothing" if what == "exclude" else "matches nothing"
            self.warn(
                item,
                where,
                f"'{_show(value)}' has no searchable word ({reason}), so it {effect}; "
                "write the words a paper would use",
            )

    def check_categories(self, node: yaml.Node | None, path: str) -> None:
        """Each category is an arXiv code or pattern, as the web preferences form requires.

        One that is not can only match a tag of a ``feed``/``jsonfeed``/``arxiv_api`` source
        (free-form tags such as "Neuroscience", ACM classes): with such a source it is a
        warning, without one it never matches anything and is a problem.
        """
        for item, where, value in _given_texts(node, path, single=False):
            if is_category(value):
                continue
            hint = "use e.g. cs.CL, hep-th or cs.*"
            if "," in value:
                hint += ", one code per list item: [cs.LG, stat.ML]"
            elif " " in value:
                hint += "; a code has no spaces"
            if self.tag_sources:
                names = ", ".join(f"'{n}'" for n in self.tag_sources)
                self.warn(
                    item,
                    where,
                    f"category '{_show(value)}' is not an arXiv code ({hint}); "
                    f"it can only match a tag of the source(s) {names}",
                )
            else:
                self.problem(
                    item,
                    where,
                    f"category '{_show(value)}' is not an arXiv code, so it never matches "
                    f"(the sources carry arXiv codes only; {hint})",
                )

    def fetch_schedule(self, node: yaml.Node | None, path: str, default: str | None) -> str | None:
        """An interval (``every 60m``) or a schedule/cron line, as the daemon reads it."""
        if node is None:
            return default
        value = self.text(node, path)
        if not value:
            return default
        try:
            parse_fetch_schedule(value)
        except ValueError as err:
            self.problem(node, path, str(err))
            return default
        return value

    def existing_file(self, node: yaml.Node | None, path: str, what: str) -> Path | None:
        value = self.text(node, path)
        if node is None or not value:
            return None
        p = self.path(value)
        if not p.is_file():
            state = "is a folder" if p.is_dir() else "not found"
            self.problem(node, path, f"{what} {state}: {p} (check the path)")
            return None
        if not os.access(p, os.R_OK):
            self.problem(node, path, f"{what} is not readable: {p} (check its permissions)")
            return None
        return p

    # -- sections -----------------------------------------------------------------
    def load(self, root: yaml.Node) -> Config:
        top = self.mapping(root, "", _ROOT_KEYS)
        assert top is not None
        state = self.state(top.get("state"))
        templates = None
        tnode = top.get("templates")
        if tnode is not None:
            value = self.text(tnode, "templates")
            if value:
                templates = self.path(value)
                if not templates.is_dir():
                    self.problem(
                        tnode,
                        "templates",
                        f"folder not found: {templates} "
                        "(create it, or remove the key to use the packaged templates)",
                    )
        defaults = self.defaults(top.get("defaults"))
        selection = self.selection(top.get("selection"))
        scheduler = self.scheduler(top.get("scheduler"))
        web = self.web(top.get("web"))
        delivery = self.delivery(top.get("delivery"))
        self.deliverability(top, web, delivery)
        sources = self.sources(top)
        self.tag_sources = tuple(s.name for s in sources if s.type not in _ARXIV_CODE_TYPES)
        subscribers = self.subscribers(top, defaults)
        return Config(
            path=Path(self.display),
            state=state,
            sources=sources,
            subscribers=subscribers,
            delivery=delivery,
            web=web,
            defaults=defaults,
            selection=selection,
            scheduler=scheduler,
            templates=templates,
            secret_key=self.env.get(SECRET_KEY_ENV) or None,
        )

    def state(self, node: yaml.Node | None) -> str:
        value = self.text(node, "state", DEFAULT_STATE)
        m = _URL_RE.match(value)
        if m:
            if not value.startswith("sqlite:///"):
                self.problem(
                    node,
                    "state",
                    f"unsupported database '{m[1]}' (use a file path or sqlite:///PATH)",
                )
            return value  # a URL keeps the user's spelling
        p = self.path(value)
        if p.is_dir():
            self.problem(
                node, "state", f"{p} is a folder (name the SQLite file, e.g. {p}/newsletter.db)"
            )
        return str(p)

    def defaults(self, node: yaml.Node | None) -> DefaultsConfig:
        d = DefaultsConfig()
        m = self.mapping(node, "defaults", _DEFAULTS_KEYS)
        if m is None:
            return d
        return DefaultsConfig(
            timezone=self.timezone(m.get("timezone"), "defaults.timezone", d.timezone),
            schedule=self.schedule(m.get("schedule"), "defaults.schedule", d.schedule),
            max_papers=self.integer(
                m.get("max_papers"), "defaults.max_papers", d.max_papers, minimum=1
            ),
            min_score=self.number(m.get("min_score"), "defaults.min_score", d.min_score),
            lookback_days=self.integer(
                m.get("lookback_days"), "defaults.lookback_days", d.lookback_days, minimum=1
            ),
        )

    def selection(self, node: yaml.Node | None) -> SelectionConfig:
        d = SelectionConfig()
        m = self.mapping(node, "selection", _SELECTION_KEYS)
        if m is None:
            return d
        return SelectionConfig(
            semantic=self.boolean(m.get("semantic"), "selection.semantic", d.semantic),
            semantic_model=self.optional_text(m.get("semantic_model"), "selection.semantic_model"),
            trending_boost=self.number(
                m.get("trending_boost"), "selection.trending_boost", d.trending_boost
            ),
        )

    def scheduler(self, node: yaml.Node | None) -> SchedulerConfig:
        d = SchedulerConfig()
        m = self.mapping(node, "scheduler", _SCHEDULER_KEYS)
        if m is None:
            return d
        return SchedulerConfig(
            fetch_schedule=self.fetch_schedule(
                m.get("fetch_schedule"), "scheduler.fetch_schedule", d.fetch_schedule
            )
            or d.fetch_schedule,
            freshness_minutes=self.integer(
                m.get("freshness_minutes"),
                "scheduler.freshness_minutes",
                d.freshness_minutes,
                minimum=1,
            ),
            grace_hours=self.number(m.get("grace_hours"), "scheduler.grace_hours", d.grace_hours),
        )

    def web(self, node: yaml.Node | None) -> WebConfig:
        d = WebConfig()
        m = self.mapping(node, "web", _WEB_KEYS)
        if m is None:
            return d
        base_url = d.base_url
        bnode = m.get("base_url")
        if bnode is not None:
            value = self.text(bnode, "web.base_url")
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                host = value.split("://", 1)[-1].strip("/") or "digest.example.org"
                self.problem(
                    bnode,
                    "web.base_url",
                    f"'{_show(value)}' is not an http(s) URL (write it as https://{_show(host)})",
                )
            else:
                base_url = value.rstrip("/")
        return WebConfig(
            base_url=base_url,
            host=self.text(m.get("host"), "web.host", d.host),
            port=self.port(m.get("port"), "web.port", d.port),
        )

    def delivery(self, node: yaml.Node | None) -> DeliveryConfig:
        d = DeliveryConfig()
        m = self.mapping(node, "delivery", _DELIVERY_KEYS)
        if m is None:
            return d
        transport = self.choice(
            m.get("transport"), "delivery.transport", d.transport, TRANSPORTS, "transport"
        )
        outbox = d.outbox
        onode = m.get("outbox")
        if onode is not None:
            value = self.text(onode, "delivery.outbox")
            if value:
                outbox = self.path(value)
                if outbox.exists() and not outbox.is_dir():
                    self.problem(onode, "delivery.outbox", f"{outbox} is a file (name a folder)")
        else:
            outbox = self.path(str(d.outbox))
        dkim = None
        knode = m.get("dkim")
        if knode is not None:
            dkim = self.dkim(knode)
        return DeliveryConfig(
            from_addr=self.address(m.get("from"), "delivery.from", d.from_addr) or d.from_addr,
            transport=transport,
            outbox=outbox,
            smtp=self.smtp(m.get("smtp"), transport),
            reply_to=self.address(m.get("reply_to"), "delivery.reply_to", None),
            list_id=self.list_id(m.get("list_id")),
            dkim=dkim,
            max_failures=self.integer(
                m.get("max_failures"), "delivery.max_failures", d.max_failures, minimum=1
            ),
            send_empty=self.boolean(m.get("send_empty"), "delivery.send_empty", d.send_empty),
            workers=self.integer(m.get("workers"), "delivery.workers", d.workers, minimum=0),
            workers_nice=self.integer(
                m.get("workers_nice"),
                "delivery.workers_nice",
                d.workers_nice,
                minimum=0,
                maximum=19,
            ),
        )

    def list_id(self, node: yaml.Node | None) -> str | None:
        """``label.example.org`` or ``Name <label.example.org>`` (RFC 2919)."""
        path = "delivery.list_id"
        value = self.optional_text(node, path)
        if node is None or not value:
            return value
        fix = 'write it as papers.example.org or "Paper Digest <papers.example.org>"'
        # (Warnings, not errors: such values loaded before, and the composer makes a
        # usable label of any of them.)
        parts = split_list_id(value)
        if parts is None:
            self.warn(node, path, f"'{_show(value)}' is not an RFC 2919 List-Id ({fix})")
            return value
        label = parts[1]
        if not LIST_LABEL_RE.match(label) or len(label) > 255:
            self.warn(
                node,
                path,
                f"'{_show(value)}': the list label '{_show(label)}' is not a dot-separated "
                f"name of letters, digits and - ({fix})",
            )
        return value

    def deliverability(self, top: _Map, web: WebConfig, delivery: DeliveryConfig) -> None:
        """Warnings for mail sent by SMTP that mailbox providers would reject or that
        cannot be unsubscribed from in one click (existing configs keep loading)."""
        if delivery.transport != "smtp":
            return
        dnode = top.get("delivery")
        dmap = dnode.value if isinstance(dnode, yaml.MappingNode) else []
        given = {k.value: v for k, v in dmap if isinstance(k, yaml.ScalarNode)}
        if given.get("from") is None:
            self.warn(
                dnode,
                "delivery.from",
                f"not set, so mail goes out as '{delivery.from_addr}', with Message-ID and "
                "List-Id at localhost too: relays reject such a sender and DMARC cannot align "
                'it (add from: "Paper Digest <digest@your-domain>" with a domain you send for)',
            )
        dkim = delivery.dkim
        if dkim is not None and dkim.domain:
            signing = dkim.domain.strip().rstrip(".").lower()
            sender = split_address(delivery.from_addr)[1].rpartition("@")[2].rstrip(".").lower()
            if sender and signing and not _dmarc_aligned(sender, signing):
                knode = given.get("dkim")
                kmap = knode.value if isinstance(knode, yaml.MappingNode) else []
                at = next(
                    (v for k, v in kmap if isinstance(k, yaml.ScalarNode) and k.value == "domain"),
                    knode,
                )
                self.warn(
                    at,
                    "delivery.dkim.domain",
                    f"'{_show(signing)}' is not the domain of delivery.from ('{_show(sender)}') "
                    "nor one above or below it, so DMARC can not align the signature with "
                    "the sender and providers treat the mail as unauthenticated (sign with "
                    f"domain: {_show(sender)}, or send from an address at {_show(signing)})",
                )
        wnode = top.get("web")
        wmap = wnode.value if isinstance(wnode, yaml.MappingNode) else []
        bnode = next(
            (v for k, v in wmap if isinstance(k, yaml.ScalarNode) and k.value == "base_url"),
            None,
        )
        if bnode is None or (isinstance(bnode, yaml.ScalarNode) and bnode.tag == _NULL):
            self.warn(
                wnode,
                "web.base_url",
                f"not set, so unsubscribe links point at {web.base_url} and messages carry "
                "no one-click unsubscribe, which needs https (RFC 8058) and which Gmail and "
                "Yahoo require of bulk senders (add web: {base_url: https://your-host}, "
                "where 'newsletter serve' is reachable over HTTPS)",
            )
            return
        parts = urlsplit(web.base_url)
        local = (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")
        if parts.scheme.lower() == "http" and not local:
            self.warn(
                bnode,
                "web.base_url",
                f"'{_show(web.base_url)}' is not https, so messages carry no one-click "
                "unsubscribe, which needs https (RFC 8058) and which Gmail and Yahoo require "
                f"of bulk senders (use https://{_show(parts.netloc + parts.path)}, served "
                "by your HTTPS reverse proxy)",
            )

    def dkim(self, node: yaml.Node) -> DkimConfig | None:
        path = "delivery.dkim"
        m = self.mapping(node, path, _DKIM_KEYS)
        if m is None:
            return None
        for required, hint in (
            ("selector", "add selector: the DNS selector, e.g. 'mail'"),
            ("domain", "add domain: the signing domain, e.g. example.org"),
            ("key_file", "add key_file: the PEM private key file"),
        ):
            if m.get(required) is None:
                self.missing(m, required, hint)
        selector = self.text(m.get("selector"), f"{path}.selector")
        domain = self.text(m.get("domain"), f"{path}.domain")
        key_path = self.existing_file(m.get("key_file"), f"{path}.key_file", "DKIM key file")
        key = b""
        if key_path is not None:
            try:
                key = key_path.read_bytes()
            except OSError as err:
                self.problem(
                    m.get("key_file"), f"{path}.key_file", f"cannot read {key_path}: {err.strerror}"
                )
            else:
                if b"PRIVATE KEY" not in key:
                    self.problem(
                        m.get("key_file"),
                        f"{path}.key_file",
                        f"{key_path} is not a PEM private key "
                        "(expected '-----BEGIN ... PRIVATE KEY-----')",
                    )
        return DkimConfig(
            selector=selector,
            domain=domain,
            key_file=str(key_path) if key_path else "",
            key=key,
        )

    def smtp(self, node: yaml.Node | None, transport: str) -> SmtpConfig:
        path = "delivery.smtp"
        d = SmtpConfig()
        forbidden = {
            "password": "passwords never go in the config file; remove it, set "
            "password_env: NEWSLETTER_SMTP_PASSWORD and export that variable"
        }
        m = self.mapping(node, path, _SMTP_KEYS, forbidden=forbidden)
        if m is None:
            return d
        host = self.text(m.get("host"), f"{path}.host", d.host)
        if "://" in host or "/" in host:
            self.problem(
                m.get("host"),
                f"{path}.host",
                f"'{_show(host)}' is not a host name (write only the name, e.g. smtp.example.org)",
            )
        before = len(self.problems)
        port = self.port(m.get("port"), f"{path}.port", d.port)
        security = self.choice(
            m.get("security"),
            f"{path}.security",
            d.security,
            SMTP_SECURITY,
            "security",
            synonyms={"ssl": "tls", "smtps": "tls", "tls1.2": "tls", "plain": "none"},
        )
        if len(self.problems) > before:
            pass  # a bad port or security: no advice about how they combine
        elif port == 465 and security == "starttls":
            self.problem(
                m.get("security") or m.get("port"),
                f"{path}.security",
                "port 465 expects TLS from the first byte (use security: tls, or port: 587)",
            )
        elif port in (25, 587) and security == "tls":
            self.problem(
                m.get("security"),
                f"{path}.security",
                f"port {port} starts in plain text (use security: starttls, or port: 465)",
            )
        username = self.optional_text(m.get("username"), f"{path}.username")
        password_env = None
        password = None
        enode = m.get("password_env")
        if enode is not None:
            value = self.text(enode, f"{path}.password_env")
            if value and not _ENV_NAME_RE.match(value):
                # It may be the password itself: never echo it.
                self.problem(
                    enode,
                    f"{path}.password_env",
                    "is not an environment variable name (put the variable's NAME here, "
                    "e.g. NEWSLETTER_SMTP_PASSWORD, and the password in that variable)",
                )
            elif value:
                password_env = value
                password = self.env.get(value) or None
        if transport == "smtp" and username:
            if password_env is None and enode is None:
                self.problem(
                    m.node,
                    f"{path}.password_env",
                    f"username '{_show(username)}' needs a password: add password_env: "
                    "NEWSLETTER_SMTP_PASSWORD and export that variable",
                )
            elif password_env is not None and password is None:
                report = self.problem if self.secrets else self.warn
                report(
                    enode,
                    f"{path}.password_env",
                    f"environment variable {password_env} is not set "
                    f"(export {password_env}=... before running)",
                )
        if (
            transport == "smtp"
            and username
            and security == "none"
            and host not in ("localhost", "127.0.0.1", "::1")
        ):
            self.warn(
                m.get("security") or m.node,
                f"{path}.security",
                f"security: none sends the password to {host} unencrypted (use starttls or tls)",
            )
        ca_file = self.existing_file(m.get("ca_file"), f"{path}.ca_file", "CA file")
        return SmtpConfig(
            host=host,
            port=port,
            security=security,
            username=username,
            password_env=password_env,
            password=password,
            timeout=self.number(m.get("timeout"), f"{path}.timeout", d.timeout, positive=True),
            connections=self.integer(
                m.get("connections"), f"{path}.connections", d.connections, minimum=1
            ),
            max_per_connection=self.integer(
                m.get("max_per_connection"),
                f"{path}.max_per_connection",
                d.max_per_connection,
                minimum=1,
            ),
            rate_per_second=(
                self.number(m.get("rate_per_second"), f"{path}.rate_per_second", 0, positive=True)
                if m.get("rate_per_second") is not None
                else None
            ),
            rate_per_hour=(
                self.integer(m.get("rate_per_hour"), f"{path}.rate_per_hour", 0, minimum=1)
                if m.get("rate_per_hour") is not None
                else None
            ),
            retries=self.integer(m.get("retries"), f"{path}.retries", d.retries, minimum=0),
            backoff=self.number(m.get("backoff"), f"{path}.backoff", d.backoff),
            ca_file=str(ca_file) if ca_file else None,
        )

    def sources(self, top: _Map) -> tuple[SourceConfig, ...]:
        node = top.get("sources")
        if node is None:
            self.missing(top, "sources", "add sources: with at least one feed")
            return ()
        items = self.sequence(node, "sources", "one '- name: ...' entry per feed")
        if isinstance(node, yaml.SequenceNode) and not items:
            self.problem(node, "sources", "is empty (add at least one feed)")
        out = []
        seen: dict[str, tuple[str, int]] = {}
        for i, item in enumerate(items):
            path = _join("sources", i)
            m = self.mapping(item, path, _SOURCE_KEYS, example="- name: ...")
            if m is None:
                continue
            for key, hint in (
                ("name", "add name: a short unique name such as arxiv-cs-lg"),
                ("type", f"add type: one of {', '.join(SOURCE_TYPES)}"),
                ("url", "add url: an http(s):// URL, file:// URL or a local path"),
            ):
                if m.get(key) is None:
                    self.missing(m, key, hint)
            name = self.text(m.get("name"), f"{path}.name")
            if name:
                if name.lower() in seen:
                    other, line = seen[name.lower()]
                    self.problem(
                        m.get("name"),
                        f"{path}.name",
                        f"duplicate source name '{_show(name)}' "
                        f"(same as {other} at line {line}; rename one)",
                    )
                else:
                    seen[name.lower()] = (path, _line(cast(yaml.Node, m.get("name"))))
            stype = self.text(m.get("type"), f"{path}.type")
            if stype and stype not in SOURCE_TYPES:
                self.problem(
                    m.get("type"),
                    f"{path}.type",
                    f"unknown source type '{_show(stype)}' {_one_of(stype, SOURCE_TYPES)}",
                )
            url = self.source_url(m.get("url"), f"{path}.url")
            announce: tuple[str, ...] = DEFAULT_ANNOUNCE_TYPES
            anode = m.get("announce_types")
            if anode is not None:
                values = self.texts(anode, f"{path}.announce_types", "[new, cross]")
                bad = False
                for j, (value, vnode) in enumerate(
                    zip(values, cast(yaml.SequenceNode, anode).value, strict=False)
                ):
                    if value not in ANNOUNCE_TYPES:
                        bad = True
                        self.problem(
                            vnode,
                            f"{path}.announce_types[{j}]",
                            f"unknown announce type '{_show(value)}' "
                            f"{_one_of(value, ANNOUNCE_TYPES)}",
                        )
                if isinstance(anode, yaml.SequenceNode) and not anode.value:
                    self.problem(
                        anode,
                        f"{path}.announce_types",
                        "is empty (list at least one of new, cross, replace, replace-cross)",
                    )
                elif values and not bad:
                    announce = tuple(dict.fromkeys(values))
            out.append(
                SourceConfig(
                    name=name,
                    type=stype,
                    url=url,
                    announce_types=announce,
                    timeout=self.number(m.get("timeout"), f"{path}.timeout", 20.0, positive=True),
                    retries=self.integer(m.get("retries"), f"{path}.retries", 2, minimum=0),
                    enabled=self.boolean(m.get("enabled"), f"{path}.enabled", True),
                    fetch_every=self.fetch_schedule(
                        m.get("fetch_every"), f"{path}.fetch_every", None
                    ),
                )
            )
        return tuple(out)

    def source_url(self, node: yaml.Node | None, path: str) -> str:
        value = self.text(node, path)
        if node is None or not value:
            return value
        m = _URL_RE.match(value)
        if m:
            if m[1].lower() not in ("http", "https", "file"):
                self.problem(
                    node,
                    path,
                    f"unsupported URL scheme '{m[1]}' (use http(s)://, file:// or a local path)",
                )
            return value  # a URL keeps the user's spelling
        return str(self.path(value))

    def subscribers(self, top: _Map, defaults: DefaultsConfig) -> tuple[Subscriber, ...]:
        node = top.get("subscribers")
        if node is None:
            self.missing(top, "subscribers", "add subscribers: with at least one '- email: ...'")
            return ()
        items = self.sequence(node, "subscribers", "one '- email: ...' entry per subscriber")
        if isinstance(node, yaml.SequenceNode) and not items:
            self.problem(node, "subscribers", "is empty (add at least one subscriber)")
        out = []
        seen: dict[str, tuple[str, int]] = {}
        for i, item in enumerate(items):
            path = _join("subscribers", i)
            m = self.mapping(item, path, _SUBSCRIBER_KEYS, example="- email: ...")
            if m is None:
                continue
            enode = m.get("email")
            if enode is None:
                self.missing(m, "email", "add email: name@example.org")
            email = self.email(enode, f"{path}.email")
            if email and enode is not None:
                key = email.lower()
                if key in seen:
                    other, line = seen[key]
                    self.problem(
                        enode,
                        f"{path}.email",
                        f"duplicate subscriber '{_show(email)}' "
                        f"(same as {other} at line {line}; remove one)",
                    )
                else:
                    seen[key] = (path, _line(enode))
            interests = self.interests(m.get("interests"), f"{path}.interests")
            trending = self.boolean(m.get("trending"), f"{path}.trending", False)
            if not interests and not trending and m.get("interests") is None:
                line = _line(m.node) if m.node is not None else 0
                self.problem(
                    line,
                    path,
                    "has no interests (add interests: [...] or trending: true)",
                )
            out.append(
                Subscriber(
                    email=email,
                    name=self.text(m.get("name"), f"{path}.name"),
                    timezone=self.timezone(
                        m.get("timezone"), f"{path}.timezone", defaults.timezone
                    ),
                    schedule=self.schedule(
                        m.get("schedule"), f"{path}.schedule", defaults.schedule
                    ),
                    max_papers=self.integer(
                        m.get("max_papers"), f"{path}.max_papers", defaults.max_papers, minimum=1
                    ),
                    min_score=self.number(
                        m.get("min_score"), f"{path}.min_score", defaults.min_score
                    ),
                    interests=interests,
                    trending=trending,
                    exclude=self.texts(m.get("exclude"), f"{path}.exclude", "[stock market]"),
                )
            )
            self.check_words(m.get("exclude"), f"{path}.exclude", "exclude")
        return tuple(out)

    def interests(self, node: yaml.Node | None, path: str) -> tuple[Interest, ...]:
        items = self.sequence(node, path, "one '- name: ...' entry per interest")
        if isinstance(node, yaml.SequenceNode) and not items:
            self.problem(
                node, path, "is empty (add an interest, or remove the key and set trending: true)"
            )
        out = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            ipath = _join(path, i)
            m = self.mapping(item, ipath, _INTEREST_KEYS, example="- name: ...")
            if m is None:
                continue
            nnode = m.get("name")
            if nnode is None:
                self.missing(m, "name", "add name: the section title, e.g. Time series")
            name = self.text(nnode, f"{ipath}.name")
            if name and nnode is not None:
                if name.lower() in seen:
                    self.problem(
                        nnode,
                        f"{ipath}.name",
                        f"duplicate interest name '{_show(name)}' "
                        f"(first at line {seen[name.lower()]}; rename or merge them)",
                    )
                else:
                    seen[name.lower()] = _line(nnode)
            description = self.text(m.get("description"), f"{ipath}.description")
            keywords = self.texts(
                m.get("keywords"), f"{ipath}.keywords", "[time series, forecasting]"
            )
            self.check_words(m.get("description"), f"{ipath}.description", "description")
            self.check_words(m.get("keywords"), f"{ipath}.keywords", "keyword")
            self.check_words(m.get("exclude"), f"{ipath}.exclude", "exclude")
            categories = self.texts(m.get("categories"), f"{ipath}.categories", "[cs.LG, stat.ML]")
            self.check_categories(m.get("categories"), f"{ipath}.categories")
            authors = self.texts(m.get("authors"), f"{ipath}.authors", "[Yoshua Bengio]")
            trending = self.boolean(m.get("trending"), f"{ipath}.trending", False)
            # (a key given with a bad value has its own error; an empty list is no value)
            given = any(
                m.has(k) and not _empty_list(m.get(k))
                for k in ("description", "keywords", "categories", "authors")
            )
            if not (description or keywords or categories or authors or trending or given):
                line = _line(m.node) if m.node is not None else 0
                self.problem(
                    line,
                    ipath,
                    "matches nothing (add keywords, categories, authors or a description)",
                )
            out.append(
                Interest(
                    name=name,
                    description=description,
                    keywords=keywords,
                    categories=categories,
                    authors=authors,
                    exclude=self.texts(m.get("exclude"), f"{ipath}.exclude", "[stock market]"),
                    max_papers=(
                        self.integer(m.get("max_papers"), f"{ipath}.max_papers", 0, minimum=1)
                        or None
                    ),
                    trending=trending,
                )
            )
        return tuple(out)


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    secrets: bool = True,
) -> Config:
    """Load and validate the YAML file at ``path``; raise ``ConfigError`` listing all problems.

    Every problem is one line, ``<file>:<line>: <key path>: <what> (<how to fix>)``,
    with ``<file>`` spelled as given. Relative paths in the file are resolved against
    the file's folder; URLs keep their spelling. Secrets come from ``environ``
    (default: ``os.environ``), never from the file. With ``secrets=False`` (commands
    that never send: preview, fetch, status, serve) a secret missing from the
    environment is a warning, not a problem.
    """
    display = os.fspath(path)
    file = Path(display)
    env: Mapping[str, str] = os.environ if environ is None else environ
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{display}: config file not found (copy subscribers.example.yaml to {display} "
            "and edit it, or pass --config PATH)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{display}: is a folder, not a config file (pass the YAML file with --config PATH)"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"{display}: cannot read the config file: {err.strerror} (check its permissions)"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{display}:{line}: not UTF-8 text (save the file as UTF-8)") from None

    yl = _YAML_LOADER(text)
    try:
        root = yl.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        what = err.problem or "invalid YAML"
        if err.context:
            what = f"{what} ({err.context})"
        hint = (
            "indent with spaces, not tabs"
            if "\\t" in what or " tab " in what or _tab_indented(text, mark.line if mark else -1)
            else "check the indentation and quoting on this line and the one above"
        )
        raise ConfigError(f"{display}:{line}: YAML syntax error: {what}; {hint}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{display}: YAML error: {err}") from None

    try:
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
            raise ConfigError(
                f"{display}: the config file is empty (start from subscribers.example.yaml)"
            )
        if not isinstance(root, yaml.MappingNode):
            kind = "a list" if isinstance(root, yaml.SequenceNode) else "plain text"
            raise ConfigError(
                f"{display}:{_line(root)}: the top level must be a mapping of keys "
                f"(state:, sources:, delivery:, subscribers:, ...), got {kind}"
            )
        loader = _Loader(display, Path(os.path.abspath(display)).parent, env, yl, secrets=secrets)
        config = loader.load(root)
    finally:
        yl.dispose()
    if loader.problems:
        loader.problems.sort(key=lambda p: p[0])
        raise ConfigError([text for _, text in loader.problems])
    if loader.warnings:
        config = replace(config, warnings=tuple(text for _, text in sorted(loader.warnings)))
    return config

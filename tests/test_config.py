"""Configuration loading: the example, every problem class with its exact line, paths."""

from __future__ import annotations

import json
import os
import textwrap
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
import yaml
from cli_support import run_cli

import newsletter.config as config_module
from newsletter.config import (
    ANNOUNCE_TYPES,
    SOURCE_TYPES,
    Config,
    check_email,
    load_config,
    parse_duration,
)
from newsletter.errors import ConfigError, NewsletterError
from newsletter.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "subscribers.example.yaml"
SAMPLE = ROOT / "samples" / "arxiv-sample.xml"
NAME = "subscribers.yaml"

# A minimal valid config: five lines. Cases append lines 6, 7, ... to it, so the
# expected line numbers below are easy to check by eye.
VALID = """\
sources:
  - {name: s, type: arxiv, url: feed.xml}
subscribers:
  - email: ada@example.org
    trending: true
"""


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a temporary folder so the file name in messages is the relative one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, text: str, name: str = NAME) -> str:
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def problems(folder: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(folder, text), environ=env or {})
    return info.value.problems


def load(folder: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(folder, text), environ=env or {})


# --------------------------------------------------------------------- the example


def test_example_loads_with_everything_resolved() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.state == str(ROOT / "var" / "newsletter.db")
    assert config.delivery.outbox == ROOT / "outbox"
    assert config.delivery.transport == "outbox"
    assert config.delivery.from_addr == "Paper Digest <digest@example.org>"
    assert config.web.base_url == "https://digest.example.org"
    # the sample feed first (resolved, present), then the live sources as written
    assert [(s.name, s.type) for s in config.sources] == [
        ("sample", "arxiv"),
        ("arxiv-cs-lg", "arxiv"),
        ("arxiv-cs-cl", "arxiv"),
        ("hf-daily", "hf_daily"),
    ]
    assert config.sources[0].url == str(SAMPLE)
    assert Path(config.sources[0].url).is_file()
    assert config.sources[1].url == "https://rss.arxiv.org/rss/cs.LG"
    assert config.sources[2].url == "https://rss.arxiv.org/rss/cs.CL"
    assert config.sources[3].url == "https://huggingface.co/api/daily_papers"
    ada = config.subscriber("ADA@example.org")
    assert (ada.name, ada.timezone, ada.schedule, ada.max_papers) == (
        "Ada",
        "Europe/London",
        "weekdays 07:30",
        8,
    )
    assert ada.interests[0].keywords == ("time series", "forecasting")
    assert ada.interests[0].exclude == ("stock market",)
    assert any(s.trending for s in config.subscribers)
    # smtp is present but inactive: the unset password variable is not a problem
    assert config.delivery.smtp.password_env == "NEWSLETTER_SMTP_PASSWORD"
    assert config.delivery.smtp.password is None
    assert config.warnings == ()


def test_example_loads_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(os.path.relpath(EXAMPLE), environ={})
    assert config.state == str(ROOT / "var" / "newsletter.db")
    assert config.sources[0].url == str(SAMPLE)


def test_example_interests_match_the_sample_feed() -> None:
    """The demo must produce real digests offline: every example subscriber has a
    keyword or followed author that occurs in the sample feed."""
    feed = feedparser.parse(SAMPLE.read_bytes())
    text = " ".join(f"{e.title} {e.summary} {e.get('author', '')}" for e in feed.entries).lower()
    for sub in load_config(EXAMPLE, environ={}).subscribers:
        terms = [t for i in sub.interests for t in (*i.keywords, *i.authors)]
        hits = [t for t in terms if t.lower() in text]
        assert hits, f"{sub.email}: none of {terms} occurs in the sample feed"


# --------------------------------------------------------------------- the sample feed


def test_sample_feed_is_plainly_marked_and_synthetic() -> None:
    feed = feedparser.parse(SAMPLE.read_bytes())
    assert not feed.bozo and feed.version == "rss20"
    assert "SAMPLE" in feed.feed.title and "not real" in feed.feed.title
    assert "Sample data" in feed.feed.description
    assert 12 <= len(feed.entries) <= 15
    types = [e.arxiv_announce_type for e in feed.entries]
    assert types.count("cross") == 1 and types.count("replace") == 1
    assert types.count("new") == len(types) - 2
    for entry in feed.entries:
        aid = entry.link.rsplit("/", 1)[1]
        assert aid.startswith("2611.99") and entry.link == f"https://arxiv.org/abs/{aid}"
        assert entry.id.startswith(f"oai:arXiv.org:{aid}v")
        assert entry.summary.startswith(f"arXiv:{aid}v")
        assert "Announce Type: " in entry.summary
        assert "Sample paper written for the newsletter demo" in entry.summary
        assert entry.tags and entry.author and entry.rights


def test_sample_feed_uses_the_real_arxiv_rss_structure(shared_data: Path) -> None:
    """Same elements (and namespaces) per item as a real rss.arxiv.org capture."""

    def item_tags(path: Path) -> set[str]:
        item = ET.parse(path).getroot().find("channel/item")
        assert item is not None
        return {child.tag for child in item}

    real = item_tags(shared_data / "feeds" / "arxiv_rss_quant-ph_2025-04-28.xml")
    assert item_tags(SAMPLE) == real


# --------------------------------------------------------------------- file-level problems


def test_issue_example_line(in_tmp: Path) -> None:
    text = """\
        state: var/newsletter.db
        sources:
          - name: arxiv-cs-lg
            type: arxiv
            url: https://rss.arxiv.org/rss/cs.LG
        web:
          base_url: https://digest.example.org
        defaults: {timezone: UTC, schedule: "daily 07:00", max_papers: 10}
        subscribers:
          - email: grace@example.org
            trending: true
          - email: ada@example.org
            name: Ada
            timezone: Europe/Londn
            trending: true
    """
    assert problems(in_tmp, text) == [
        "subscribers.yaml:14: subscribers[1].timezone: unknown time zone 'Europe/Londn' "
        "(did you mean 'Europe/London'?)"
    ]


def test_missing_file(in_tmp: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope.yaml")
    assert str(info.value) == (
        "nope.yaml: config file not found (copy subscribers.example.yaml to nope.yaml "
        "and edit it, or pass --config PATH)"
    )
    assert info.value.exit_code == 2
    assert isinstance(info.value, NewsletterError) and isinstance(info.value, ValueError)


def test_folder_instead_of_file(in_tmp: Path) -> None:
    (in_tmp / "conf").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config("conf")
    assert str(info.value) == (
        "conf: is a folder, not a config file (pass the YAML file with --config PATH)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "subscribers.yaml: the config file is empty (start from subscribers.example.yaml)"),
        (
            "# only a comment\n",
            "subscribers.yaml: the config file is empty (start from subscribers.example.yaml)",
        ),
        (
            "- a\n- b\n",
            "subscribers.yaml:1: the top level must be a mapping of keys "
            "(state:, sources:, delivery:, subscribers:, ...), got a list",
        ),
        (
            "just words\n",
            "subscribers.yaml:1: the top level must be a mapping of keys "
            "(state:, sources:, delivery:, subscribers:, ...), got plain text",
        ),
        (
            "state: a\n---\nstate: b\n",
            "subscribers.yaml:2: YAML syntax error: but found another document "
            "(expected a single document in the stream); check the indentation and quoting "
            "on this line and the one above",
        ),
    ],
    ids=["empty", "comment-only", "list", "scalar", "two-documents"],
)
def test_file_level_problems(in_tmp: Path, text: str, expected: str) -> None:
    assert problems(in_tmp, text) == [expected]


LOADERS = [yaml.SafeLoader] + (
    [yaml.CSafeLoader] if getattr(yaml, "__with_libyaml__", False) else []
)
HINT = "check the indentation and quoting on this line and the one above"
SYNTAX = {  # the parser's own words differ between libyaml and pure Python
    "SafeLoader": [
        "subscribers.yaml:4: YAML syntax error: expected ',' or '}', but got '<stream end>' "
        f"(while parsing a flow mapping); {HINT}",
        "subscribers.yaml:2: YAML syntax error: found character '\\t' that cannot start "
        "any token (while scanning for the next token); indent with spaces, not tabs",
        "subscribers.yaml:3: YAML syntax error: expected <block end>, but found "
        f"'<block mapping start>' (while parsing a block collection); {HINT}",
        "subscribers.yaml:2: YAML syntax error: found character '\\t' that cannot start "
        "any token (while scanning for the next token); indent with spaces, not tabs",
    ],
    "CSafeLoader": [
        "subscribers.yaml:4: YAML syntax error: did not find expected ',' or '}' "
        f"(while parsing a flow mapping); {HINT}",
        "subscribers.yaml:2: YAML syntax error: found a tab character that violates "
        "indentation (while scanning a plain scalar); indent with spaces, not tabs",
        "subscribers.yaml:3: YAML syntax error: did not find expected '-' indicator "
        f"(while parsing a block collection); {HINT}",
        # (libyaml does not say "tab" here: the line's indentation does)
        "subscribers.yaml:2: YAML syntax error: found character that cannot start any token "
        "(while scanning for the next token); indent with spaces, not tabs",
    ],
}


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
def test_yaml_syntax_errors_name_the_line(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, loader: type
) -> None:
    monkeypatch.setattr(config_module, "_YAML_LOADER", loader)
    texts = [
        "sources: []\nsubscribers: [\n  {email: a@b.org\n",
        "state: x.db\n\tsources: []\n",
        "sources:\n  - name: x\n   type: y\n",
        "sources:\n\t- name: a\n",
    ]
    assert [problems(in_tmp, t)[0] for t in texts] == SYNTAX[loader.__name__]


def test_both_parsers_give_the_same_config_and_lines(
    monkeypatch: pytest.MonkeyPatch, in_tmp: Path
) -> None:
    if len(LOADERS) < 2:
        pytest.skip("PyYAML was built without libyaml here; only the pure parser exists")
    bad = VALID + "  - email: x@y.org\n    timezone: Europe/Londn\n"
    results = []
    for loader in LOADERS:
        monkeypatch.setattr(config_module, "_YAML_LOADER", loader)
        results.append((load_config(EXAMPLE, environ={}), problems(in_tmp, bad)))
    assert results[0] == results[1]
    assert results[0][1] == [
        "subscribers.yaml:6: subscribers[1]: has no interests (add interests: [...] or "
        "trending: true)",
        "subscribers.yaml:7: subscribers[1].timezone: unknown time zone 'Europe/Londn' "
        "(did you mean 'Europe/London'?)",
    ]


def test_not_utf8(in_tmp: Path) -> None:
    (in_tmp / NAME).write_bytes(b"state: x.db\nsources: []\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(NAME)
    assert info.value.problems == ["subscribers.yaml:3: not UTF-8 text (save the file as UTF-8)"]


# --------------------------------------------------------------------- every problem class

P = "subscribers.yaml"
SUB = "  - email: bob@example.org\n"  # subscribers[1] at line 6; its keys from line 7
SMTP = "delivery:\n  transport: smtp\n  smtp:\n"  # lines 6-8; smtp keys from line 9

CASES: list[tuple[str, str, str]] = [
    ("unknown-key", "sourcez: []\n", f"{P}:6: sourcez: unknown key (did you mean 'sources'?)"),
    (
        "unknown-key-no-guess",
        "colour: red\n",
        f"{P}:6: colour: unknown key (allowed: state, sources, delivery, web, defaults, "
        "subscribers, selection, scheduler, templates)",
    ),
    (
        "unknown-nested-key",
        SUB + "    timezon: UTC\n    trending: true\n",
        f"{P}:7: subscribers[1].timezon: unknown key (did you mean 'timezone'?)",
    ),
    (
        "duplicate-yaml-key",
        "web: {base_url: 'http://a.org'}\nweb: {port: 80}\n",
        f"{P}:7: web: duplicate key (first at line 6; keep one)",
    ),
    (
        "not-a-number",
        SUB + "    trending: true\n    max_papers: many\n",
        f"{P}:8: subscribers[1].max_papers: expected a whole number, got the text 'many'",
    ),
    (
        "quoted-number",
        SUB + "    trending: true\n    max_papers: '8'\n",
        f"{P}:8: subscribers[1].max_papers: expected a whole number, got the text '8' "
        "(remove the quotes)",
    ),
    (
        "not-positive",
        "defaults: {max_papers: 0}\n",
        f"{P}:6: defaults.max_papers: must be at least 1, got 0",
    ),
    (
        "nice-too-high",
        "delivery: {workers_nice: 20}\n",
        f"{P}:6: delivery.workers_nice: must be at most 19, got 20",
    ),
    (
        "min-score-text",
        "defaults: {min_score: high}\n",
        f"{P}:6: defaults.min_score: expected a number, got the text 'high'",
    ),
    (
        "min-score-negative",
        "defaults: {min_score: -1.5}\n",
        f"{P}:6: defaults.min_score: must be at least 0, got -1.5",
    ),
    (
        "not-a-bool",
        "delivery: {send_empty: maybe}\n",
        f"{P}:6: delivery.send_empty: expected true or false, got the text 'maybe'",
    ),
    (
        "not-a-mapping",
        "web: [1, 2]\n",
        f"{P}:6: web: expected a mapping of keys, got a list",
    ),
    (
        "not-a-list",
        SUB + "    interests:\n      - name: TS\n        keywords: time series\n",
        f"{P}:9: subscribers[1].interests[0].keywords: expected a list such as "
        "[time series, forecasting], got the text 'time series'",
    ),
    (
        "list-item-not-mapping",
        "  - carol@example.org\n",
        f"{P}:6: subscribers[1]: expected a mapping of keys, got the text "
        "'carol@example.org' (write it as - email: ...)",
    ),
    (
        "text-is-bool",
        SUB + "    trending: true\n    name: yes\n",
        f"{P}:8: subscribers[1].name: expected text, got the true/false value 'yes' "
        '(quote it: "yes")',
    ),
    (
        "missing-required",
        "  - name: Bob\n    trending: true\n",
        f"{P}:6: subscribers[1].email: missing required key (add email: name@example.org)",
    ),
    (
        "invalid-email",
        "  - email: bob@@example.org\n    trending: true\n",
        f"{P}:6: subscribers[1].email: 'bob@@example.org' is not a valid email address: "
        "needs exactly one '@' (write it as name@example.org)",
    ),
    (
        "email-without-dot",
        "  - email: bob@example\n    trending: true\n",
        f"{P}:6: subscribers[1].email: 'bob@example' is not a valid email address: "
        "has a domain without a dot ('example') (write it as name@example.org)",
    ),
    (
        "from-without-brackets",
        "delivery: {from: Digest digest@example.org}\n",
        f"{P}:6: delivery.from: 'Digest digest@example.org' is not a valid address: "
        "a display name needs the address in angle brackets (write it as "
        '"Name <name@example.org>" or name@example.org)',
    ),
    (
        "reply-to-invalid",
        "delivery: {reply_to: 'Team <team@>'}\n",
        f"{P}:6: delivery.reply_to: 'Team <team@>' is not a valid address: needs text on "
        "both sides of the '@' (write it as \"Name <name@example.org>\" or name@example.org)",
    ),
    (
        "time-zone",
        "defaults: {timezone: europe/paris}\n",
        f"{P}:6: defaults.timezone: unknown time zone 'europe/paris' "
        "(did you mean 'Europe/Paris'?)",
    ),
    (
        "time-zone-no-guess",
        SUB + "    trending: true\n    timezone: Mars/Olympus_Mons\n",
        f"{P}:8: subscribers[1].timezone: unknown time zone 'Mars/Olympus_Mons' "
        "(use an IANA name such as Europe/London)",
    ),
    (
        "schedule",
        SUB + "    trending: true\n    schedule: daily 7am\n",
        f"{P}:8: subscribers[1].schedule: 'daily 7am' is not a schedule; use 'daily HH:MM', "
        "'weekdays HH:MM', 'weekly mon HH:MM' or a five-field cron line",
    ),
    (
        "schedule-cron",
        "defaults: {schedule: '0 25 * * *'}\n",
        f"{P}:6: defaults.schedule: '0 25 * * *' is not a valid cron line ('25' is outside 0-23)",
    ),
    (
        "schedule-weekly-no-day",
        "defaults: {schedule: 'weekly 09:00'}\n",
        f"{P}:6: defaults.schedule: 'weekly 09:00' needs a day: weekly mon|tue|...|sun HH:MM",
    ),
    (
        "schedule-never-fires",
        SUB + "    trending: true\n    schedule: '0 7 31 2 *'\n",
        f"{P}:8: subscribers[1].schedule: '0 7 31 2 *' never fires: day 31 never comes in "
        "February (use a day-of-month the month has, e.g. '0 7 28 2 *')",
    ),
    (
        "defaults-schedule-never-fires",
        "defaults: {schedule: '0 7 31 4 *'}\n",
        f"{P}:6: defaults.schedule: '0 7 31 4 *' never fires: day 31 never comes in April "
        "(use a day-of-month the month has, e.g. '0 7 30 4 *')",
    ),
    (
        "fetch-every-never-fires",
        "scheduler: {fetch_schedule: '0 * 30 2 *'}\n",
        f"{P}:6: scheduler.fetch_schedule: '0 * 30 2 *' never fires: day 30 never comes in "
        "February (use a day-of-month the month has, e.g. '0 * 28 2 *')",
    ),
    (
        "category-with-a-space",
        SUB + "    interests:\n      - {name: TS, categories: [cs.LG, foo bar]}\n",
        f"{P}:8: subscribers[1].interests[0].categories[1]: category 'foo bar' is not an "
        "arXiv code, so it never matches (the sources carry arXiv codes only; use e.g. "
        "cs.CL, hep-th or cs.*; a code has no spaces)",
    ),
    (
        "categories-in-one-item",
        SUB + "    interests:\n      - name: TS\n        categories:\n          - cs.LG, stat.ML\n",
        f"{P}:10: subscribers[1].interests[0].categories[0]: category 'cs.LG, stat.ML' is not "
        "an arXiv code, so it never matches (the sources carry arXiv codes only; use e.g. "
        "cs.CL, hep-th or cs.*, one code per list item: [cs.LG, stat.ML])",
    ),
    (
        "duplicate-subscriber",
        "  - email: ADA@Example.org\n    trending: true\n",
        f"{P}:6: subscribers[1].email: duplicate subscriber 'ADA@Example.org' "
        "(same as subscribers[0] at line 4; remove one)",
    ),
    (
        "no-interests",
        SUB,
        f"{P}:6: subscribers[1]: has no interests (add interests: [...] or trending: true)",
    ),
    (
        "empty-interests",
        SUB + "    interests: []\n",
        f"{P}:7: subscribers[1].interests: is empty (add an interest, or remove the key and "
        "set trending: true)",
    ),
    (
        "interest-matches-nothing",
        SUB + "    interests:\n      - name: Vague\n",
        f"{P}:8: subscribers[1].interests[0]: matches nothing (add keywords, categories, "
        "authors or a description)",
    ),
    (
        "interest-with-only-empty-lists",
        SUB + "    interests:\n      - {name: Vague, keywords: [], categories: []}\n",
        f"{P}:8: subscribers[1].interests[0]: matches nothing (add keywords, categories, "
        "authors or a description)",
    ),
    (
        "interest-without-name",
        SUB + "    interests:\n      - keywords: [x]\n",
        f"{P}:8: subscribers[1].interests[0].name: missing required key "
        "(add name: the section title, e.g. Time series)",
    ),
    (
        "duplicate-interest",
        SUB + "    interests:\n      - {name: TS, keywords: [a]}\n"
        "      - {name: ts, keywords: [b]}\n",
        f"{P}:9: subscribers[1].interests[1].name: duplicate interest name 'ts' "
        "(first at line 8; rename or merge them)",
    ),
    (
        "transport",
        "delivery: {transport: smtpp}\n",
        f"{P}:6: delivery.transport: unknown transport 'smtpp' (did you mean 'smtp'?)",
    ),
    (
        "transport-no-guess",
        "delivery: {transport: pigeon}\n",
        f"{P}:6: delivery.transport: unknown transport 'pigeon' (use one of smtp, outbox, console)",
    ),
    (
        "security",
        SMTP + "    security: ssl\n",
        f"{P}:9: delivery.smtp.security: unknown security 'ssl' (did you mean 'tls'?)",
    ),
    (
        "port",
        SMTP + "    port: 70000\n",
        f"{P}:9: delivery.smtp.port: 70000 is not a port number (use 1-65535)",
    ),
    (
        "port-465-starttls",
        SMTP + "    port: 465\n",
        f"{P}:9: delivery.smtp.security: port 465 expects TLS from the first byte "
        "(use security: tls, or port: 587)",
    ),
    (
        "port-587-tls",
        SMTP + "    security: tls\n",
        f"{P}:9: delivery.smtp.security: port 587 starts in plain text "
        "(use security: starttls, or port: 465)",
    ),
    (
        "smtp-host-url",
        SMTP + "    host: smtp://mail.example.org\n",
        f"{P}:9: delivery.smtp.host: 'smtp://mail.example.org' is not a host name "
        "(write only the name, e.g. smtp.example.org)",
    ),
    (
        "password-in-yaml",
        SMTP + "    password: hunter2\n",
        f"{P}:9: delivery.smtp.password: passwords never go in the config file; remove it, "
        "set password_env: NEWSLETTER_SMTP_PASSWORD and export that variable",
    ),
    (
        "username-without-password-env",
        SMTP + "    username: digest\n",
        f"{P}:9: delivery.smtp.password_env: username 'digest' needs a password: add "
        "password_env: NEWSLETTER_SMTP_PASSWORD and export that variable",
    ),
    (
        "password-env-unset",
        SMTP + "    username: digest\n    password_env: DIGEST_PW\n",
        f"{P}:10: delivery.smtp.password_env: environment variable DIGEST_PW is not set "
        "(export DIGEST_PW=... before running)",
    ),
    (
        "password-env-not-a-name",
        SMTP + "    username: digest\n    password_env: s3cr3t pass!\n",
        f"{P}:10: delivery.smtp.password_env: is not an environment variable name (put the "
        "variable's NAME here, e.g. NEWSLETTER_SMTP_PASSWORD, and the password in that "
        "variable)",
    ),
    (
        "base-url",
        "web: {base_url: digest.example.org}\n",
        f"{P}:6: web.base_url: 'digest.example.org' is not an http(s) URL "
        "(write it as https://digest.example.org)",
    ),
    (
        "state-database",
        "state: postgresql://db/newsletter\n",
        f"{P}:6: state: unsupported database 'postgresql' (use a file path or sqlite:///PATH)",
    ),
    (
        "fetch-schedule",
        "scheduler: {fetch_schedule: hourly}\n",
        f"{P}:6: scheduler.fetch_schedule: 'hourly' is not a fetch schedule; use an interval "
        "like 'every 60m' or '2h', or a five-field cron line like '15 * * * *' (UTC)",
    ),
    (
        "dkim-missing-keys",
        "delivery:\n  dkim: {domain: example.org}\n",
        f"{P}:7: delivery.dkim.selector: missing required key "
        "(add selector: the DNS selector, e.g. 'mail')",
    ),
    (
        "empty-value",
        SUB + "    trending: true\n    name: ''\n",
        f"{P}:8: subscribers[1].name: is empty (give a value or remove the key)",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_class_has_its_exact_line(in_tmp: Path, extra: str, expected: str) -> None:
    found = problems(in_tmp, VALID + extra)
    assert found[0] == expected
    # and it is the only problem, except where one mistake implies a second line
    assert len(found) == 1 or "dkim" in expected


SOURCES_ONLY = """\
subscribers:
  - email: ada@example.org
    trending: true
sources:
"""  # source entries start at line 5


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "  - {name: a, type: rss, url: a.xml}\n",
            f"{P}:5: sources[0].type: unknown source type 'rss' "
            "(use one of arxiv, arxiv_api, hf_daily, feed, jsonfeed)",
        ),
        (
            "  - {name: a, type: arxivapi, url: a.xml}\n",
            f"{P}:5: sources[0].type: unknown source type 'arxivapi' (did you mean 'arxiv_api'?)",
        ),
        (
            "  - {name: a, type: feed}\n",
            f"{P}:5: sources[0].url: missing required key "
            "(add url: an http(s):// URL, file:// URL or a local path)",
        ),
        (
            "  - {name: a, type: feed, url: 'ftp://x.org/a.xml'}\n",
            f"{P}:5: sources[0].url: unsupported URL scheme 'ftp' "
            "(use http(s)://, file:// or a local path)",
        ),
        (
            "  - {name: a, type: arxiv, url: a.xml, announce_types: [new, neww]}\n",
            f"{P}:5: sources[0].announce_types[1]: unknown announce type 'neww' "
            "(did you mean 'new'?)",
        ),
        (
            "  - {name: a, type: arxiv, url: a.xml, announce_types: []}\n",
            f"{P}:5: sources[0].announce_types: is empty "
            "(list at least one of new, cross, replace, replace-cross)",
        ),
        (
            "  - {name: a, type: feed, url: a.xml, fetch_every: soon}\n",
            f"{P}:5: sources[0].fetch_every: 'soon' is not a fetch schedule; use an interval "
            "like 'every 60m' or '2h', or a five-field cron line like '15 * * * *' (UTC)",
        ),
        (
            "  - {name: a, type: feed, url: a.xml, timeout: 0}\n",
            f"{P}:5: sources[0].timeout: must be greater than 0, got 0",
        ),
        (
            "  - {name: a, type: feed, url: a.xml}\n  - {name: A, type: feed, url: b.xml}\n",
            f"{P}:6: sources[1].name: duplicate source name 'A' "
            "(same as sources[0] at line 5; rename one)",
        ),
        ("  []\n", f"{P}:5: sources: is empty (add at least one feed)"),
    ],
    ids=[
        "type",
        "type-guess",
        "url-missing",
        "scheme",
        "announce",
        "announce-empty",
        "fetch-every",
        "timeout",
        "duplicate",
        "empty",
    ],
)
def test_source_problems(in_tmp: Path, entry: str, expected: str) -> None:
    assert problems(in_tmp, SOURCES_ONLY + entry) == [expected]


def test_missing_top_level_sections(in_tmp: Path) -> None:
    assert problems(in_tmp, "state: x.db\n") == [
        f"{P}:1: sources: missing required key (add sources: with at least one feed)",
        f"{P}:1: subscribers: missing required key "
        "(add subscribers: with at least one '- email: ...')",
    ]


def test_all_problems_reported_at_once_in_line_order(in_tmp: Path) -> None:
    text = """\
        sources:
          - {name: s, type: rss, url: feed.xml}
        delivery:
          transport: outbox
          smtp: {port: 0}
        web: {base_url: ftp://x}
        subscribers:
          - email: ada@example.org
            timezone: Europe/Londn
            schedule: weekdays 7:30pm
            interests:
              - name: TS
                keywords: [forecasting]
                max_papers: -1
          - email: ada@example.ORG
            trending: true
            colour: blue
    """
    with pytest.raises(ConfigError) as info:
        load(in_tmp, text)
    expected = [
        f"{P}:2: sources[0].type: unknown source type 'rss' "
        "(use one of arxiv, arxiv_api, hf_daily, feed, jsonfeed)",
        f"{P}:5: delivery.smtp.port: 0 is not a port number (use 1-65535)",
        f"{P}:6: web.base_url: 'ftp://x' is not an http(s) URL (write it as https://x)",
        f"{P}:9: subscribers[0].timezone: unknown time zone 'Europe/Londn' "
        "(did you mean 'Europe/London'?)",
        f"{P}:10: subscribers[0].schedule: 'weekdays 7:30pm' is not a schedule; use "
        "'daily HH:MM', 'weekdays HH:MM', 'weekly mon HH:MM' or a five-field cron line",
        f"{P}:14: subscribers[0].interests[0].max_papers: must be at least 1, got -1",
        f"{P}:15: subscribers[1].email: duplicate subscriber 'ada@example.ORG' "
        "(same as subscribers[0] at line 8; remove one)",
        f"{P}:17: subscribers[1].colour: unknown key (allowed: email, name, timezone, "
        "schedule, max_papers, min_score, interests, trending, exclude)",
    ]
    assert info.value.problems == expected
    assert str(info.value) == "\n".join(expected)
    assert info.value.exit_code == 2


def test_file_name_is_spelled_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", VALID + "sourcez: []\n", "my.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(Path("conf") / "my.yaml")
    assert info.value.problems == ["conf/my.yaml:6: sourcez: unknown key (did you mean 'sources'?)"]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "conf" / "my.yaml")
    assert info.value.problems[0].startswith(f"{tmp_path}/conf/my.yaml:6: sourcez: ")


def test_templates_folder_must_exist(in_tmp: Path) -> None:
    assert problems(in_tmp, VALID + "templates: mytemplates\n") == [
        f"{P}:6: templates: folder not found: {in_tmp / 'mytemplates'} "
        "(create it, or remove the key to use the packaged templates)"
    ]
    (in_tmp / "mytemplates").mkdir()
    assert load(in_tmp, VALID + "templates: mytemplates\n").templates == in_tmp / "mytemplates"


def test_state_that_is_a_folder(in_tmp: Path) -> None:
    (in_tmp / "var").mkdir()
    assert problems(in_tmp, VALID + "state: var\n") == [
        f"{P}:6: state: {in_tmp / 'var'} is a folder "
        f"(name the SQLite file, e.g. {in_tmp / 'var'}/newsletter.db)"
    ]


# --------------------------------------------------------------------- secrets


def test_password_comes_from_the_environment_and_is_not_shown(in_tmp: Path) -> None:
    text = VALID + SMTP + "    username: digest\n    password_env: DIGEST_PW\n"
    config = load(in_tmp, text, env={"DIGEST_PW": "hunter2", "NEWSLETTER_SECRET_KEY": "k" * 32})
    assert config.delivery.smtp.password == "hunter2"
    assert config.delivery.smtp.username == "digest"
    assert config.secret_key == "k" * 32
    assert "hunter2" not in repr(config) and "kkkk" not in repr(config)


def test_password_env_that_is_set_but_empty_counts_as_missing(in_tmp: Path) -> None:
    text = VALID + SMTP + "    username: digest\n    password_env: DIGEST_PW\n"
    assert problems(in_tmp, text, env={"DIGEST_PW": ""}) == [
        f"{P}:10: delivery.smtp.password_env: environment variable DIGEST_PW is not set "
        "(export DIGEST_PW=... before running)"
    ]


def test_a_value_that_looks_like_a_password_is_never_echoed(in_tmp: Path) -> None:
    text = VALID + SMTP + "    username: digest\n    password_env: 's3cr3t pass!'\n"
    assert not any("s3cr3t" in p for p in problems(in_tmp, text))


def test_secret_key_absent_is_none(in_tmp: Path) -> None:
    assert load(in_tmp, VALID).secret_key is None


def test_smtp_without_username_needs_no_password(in_tmp: Path) -> None:
    config = load(in_tmp, VALID + SMTP + "    host: relay.local\n    port: 25\n")
    assert config.delivery.smtp.password is None and config.delivery.smtp.port == 25


# What an smtp config needs besides the relay, so that it loads without warnings:
# a From at a real domain and an https base URL (for one-click unsubscribe).
SENDER = (
    '  from: "Paper Digest <digest@example.org>"\nweb: {base_url: https://digest.example.org}\n'
)


def test_plaintext_password_to_a_remote_relay_is_a_warning(in_tmp: Path) -> None:
    text = (
        VALID
        + SMTP
        + (
            "    host: mail.example.org\n    port: 25\n    security: none\n"
            "    username: u\n    password_env: PW\n"
        )
        + SENDER
    )
    config = load(in_tmp, text, env={"PW": "x"})
    assert config.warnings == (
        f"{P}:11: delivery.smtp.security: security: none sends the password to "
        "mail.example.org unencrypted (use starttls or tls)",
    )


def test_categories_checked_like_the_web_form_but_patterns_and_archives_pass(
    in_tmp: Path,
) -> None:
    # arXiv codes, bare archives, archive wildcards and fnmatch globs all match arXiv
    # categories (selector._cat_match): none is a problem or a warning.
    good = "[cs.LG, cs, quant-ph, astro-ph.*, cond-mat.stat-mech, q-bio.NC, quant-*, cs.C*, '*']"
    text = (
        VALID
        + f"  - email: bob@example.org\n    interests:\n      - {{name: A, categories: {good}}}\n"
    )
    config = load(in_tmp, text)
    assert config.subscribers[1].interests[0].categories[:3] == ("cs.LG", "cs", "quant-ph")
    assert config.warnings == ()


def test_a_non_arxiv_category_is_a_warning_when_a_feed_source_may_carry_such_tags(
    in_tmp: Path,
) -> None:
    # A generic feed's <category> tags are free text ("Neuroscience", "Machine Learning"),
    # and selection matches them as written: a legitimate config, so only a warning.
    text = (
        VALID.replace("sources:\n", "sources:\n  - {name: journal, type: feed, url: journal.xml}\n")
        + "  - email: bob@example.org\n    interests:\n"
        + "      - {name: A, categories: [cs.LG, Machine Learning]}\n"
    )
    config = load(in_tmp, text)
    assert config.subscribers[1].interests[0].categories == ("cs.LG", "Machine Learning")
    assert config.warnings == (
        f"{P}:9: subscribers[1].interests[0].categories[1]: category 'Machine Learning' is not "
        "an arXiv code (use e.g. cs.CL, hep-th or cs.*; a code has no spaces); it can only "
        "match a tag of the source(s) 'journal'",
    )


NEVER_COMES = """\
state: var/c2.db
sources: [{name: q, type: arxiv, url: feed.xml}]
subscribers:
  - {email: a@example.org, schedule: "0 7 31 2 *", interests: [{name: Y, keywords: [b]}]}
  - {email: b@example.org, trending: true}
"""


@pytest.mark.parametrize("command", ["validate", "status"])
def test_a_schedule_that_never_fires_is_a_config_error_not_a_crash(
    tmp_path: Path, command: str
) -> None:
    # The user report: validate said OK, status/run died with an OverflowError.
    write(tmp_path, NEVER_COMES, "c2.yaml")
    proc = run_cli("-c", "c2.yaml", command, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "Error: c2.yaml:4: subscribers[0].schedule: '0 7 31 2 *' never fires: day 31 never "
        "comes in February (use a day-of-month the month has, e.g. '0 7 28 2 *')"
    ]


def test_status_survives_a_never_firing_schedule_saved_on_the_web_earlier(tmp_path: Path) -> None:
    # Preferences saved before the web form checked this: the YAML schedule applies.
    write(tmp_path, NEVER_COMES.replace('schedule: "0 7 31 2 *", ', ""), "c2.yaml")
    (tmp_path / "var").mkdir()
    with Store(tmp_path / "var" / "c2.db") as store:
        store.set_prefs("a@example.org", {"version": 1, "schedule": "0 7 31 2 *"})
    proc = run_cli("-c", "c2.yaml", "status", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    subs = {s["email"]: s for s in json.loads(proc.stdout)["subscribers"]}
    assert subs["a@example.org"]["schedule"] == "daily 07:00"
    assert subs["a@example.org"]["next_edition"].endswith("T07:00+00:00")


# --------------------------------------------------------------------- DKIM


PEM = b"-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkq\n-----END PRIVATE KEY-----\n"


def test_dkim_key_is_loaded(in_tmp: Path) -> None:
    (in_tmp / "dkim").mkdir()
    (in_tmp / "dkim" / "mail.pem").write_bytes(PEM)
    text = (
        VALID
        + "delivery:\n  dkim: {selector: 2024, domain: example.org, key_file: dkim/mail.pem}\n"
    )
    dkim = load(in_tmp, text).delivery.dkim
    assert dkim is not None
    assert (dkim.selector, dkim.domain) == ("2024", "example.org")
    assert dkim.key_file == str(in_tmp / "dkim" / "mail.pem")
    assert dkim.key == PEM
    assert "PRIVATE" not in repr(dkim)


def test_dkim_key_file_missing_or_not_a_key(in_tmp: Path) -> None:
    text = VALID + "delivery:\n  dkim: {selector: s, domain: example.org, key_file: k.pem}\n"
    assert problems(in_tmp, text) == [
        f"{P}:7: delivery.dkim.key_file: DKIM key file not found: {in_tmp / 'k.pem'} "
        "(check the path)"
    ]
    (in_tmp / "k.pem").write_text("not a key")
    assert problems(in_tmp, text) == [
        f"{P}:7: delivery.dkim.key_file: {in_tmp / 'k.pem'} is not a PEM private key "
        "(expected '-----BEGIN ... PRIVATE KEY-----')"
    ]


# --------------------------------------------------------------------- defaults and paths


def test_defaults_apply_to_subscribers_that_do_not_override(in_tmp: Path) -> None:
    text = """\
        sources: [{name: s, type: arxiv, url: feed.xml}]
        defaults: {timezone: Asia/Tokyo, schedule: "weekly fri 18:00", max_papers: 4,
                   min_score: 0.5}
        subscribers:
          - {email: a@example.org, trending: true}
          - {email: b@example.org, trending: true, timezone: UTC, schedule: "0 7 * * 1-5",
             max_papers: 12, min_score: 0}
    """
    a, b = load(in_tmp, text).subscribers
    assert (a.timezone, a.schedule, a.max_papers, a.min_score) == (
        "Asia/Tokyo",
        "weekly fri 18:00",
        4,
        0.5,
    )
    assert (b.timezone, b.schedule, b.max_papers, b.min_score) == ("UTC", "0 7 * * 1-5", 12, 0)


def test_built_in_defaults(in_tmp: Path) -> None:
    config = load(in_tmp, VALID)
    sub = config.subscribers[0]
    assert (sub.timezone, sub.schedule, sub.max_papers, sub.min_score) == (
        "UTC",
        "daily 07:00",
        10,
        0.0,
    )
    assert config.state == str(in_tmp / "var" / "newsletter.db")
    assert config.delivery.transport == "outbox"
    assert config.delivery.outbox == in_tmp / "outbox"
    assert config.sources[0].announce_types == ("new", "cross")
    assert config.sources[0].enabled is True
    assert config.scheduler.fetch_schedule == "every 60m"
    assert config.templates is None
    assert config.path == Path(NAME)


def test_every_optional_key_is_read(in_tmp: Path) -> None:
    (in_tmp / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = (
        VALID
        + """\
        delivery:
          from: '"Digest, the" <digest@example.org>'
          transport: SMTP
          reply_to: team@example.org
          list_id: "Papers <papers.example.org>"
          max_failures: 5
          send_empty: true
          smtp: {host: mail.example.org, port: 465, security: tls, timeout: 10,
                 connections: 8, max_per_connection: 50, rate_per_second: 2.5,
                 rate_per_hour: 1000, retries: 0, backoff: 0.5, ca_file: ca.pem}
        web: {base_url: "https://d.example.org/", host: 0.0.0.0, port: 8080}
        selection: {semantic: true, semantic_model: models/minilm, trending_boost: 0.3}
        scheduler: {fetch_schedule: "*/30 * * * *", freshness_minutes: 15, grace_hours: 2}
    """.replace("        ", "")
    )
    c = load(in_tmp, text)
    d = c.delivery
    assert (d.from_addr, d.transport, d.reply_to, d.list_id, d.max_failures, d.send_empty) == (
        '"Digest, the" <digest@example.org>',
        "smtp",
        "team@example.org",
        "Papers <papers.example.org>",
        5,
        True,
    )
    s = d.smtp
    assert (s.host, s.port, s.security, s.timeout, s.connections, s.max_per_connection) == (
        "mail.example.org",
        465,
        "tls",
        10.0,
        8,
        50,
    )
    assert (s.rate_per_second, s.rate_per_hour, s.retries, s.backoff) == (2.5, 1000, 0, 0.5)
    assert s.ca_file == str(in_tmp / "ca.pem")
    assert (c.web.base_url, c.web.host, c.web.port) == ("https://d.example.org", "0.0.0.0", 8080)
    assert (c.selection.semantic, c.selection.semantic_model, c.selection.trending_boost) == (
        True,
        "models/minilm",
        0.3,
    )
    assert (c.scheduler.fetch_schedule, c.scheduler.freshness_minutes) == ("*/30 * * * *", 15)
    assert c.scheduler.grace_hours == 2.0


def test_paths_resolve_against_the_config_folder_and_urls_keep_their_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    abs_feed = tmp_path / "abs.xml"
    text = f"""\
        state: data/state.db
        sources:
          - {{name: local, type: arxiv, url: feeds/a.xml}}
          - {{name: up, type: feed, url: ../shared/b.xml}}
          - {{name: abs, type: feed, url: {abs_feed}}}
          - {{name: home, type: feed, url: ~/c.xml}}
          - {{name: file-url, type: feed, url: "file:///srv/d.xml"}}
          - {{name: web, type: feed, url: "HTTPS://example.org/feed"}}
        delivery: {{outbox: mail/out/}}
        subscribers: [{{email: a@example.org, trending: true}}]
    """
    write(folder, text)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc") / NAME, environ={})
    assert config.state == str(folder / "data" / "state.db")
    assert [s.url for s in config.sources] == [
        str(folder / "feeds" / "a.xml"),
        str(tmp_path / "shared" / "b.xml"),
        str(abs_feed),
        str(Path("~/c.xml").expanduser()),
        "file:///srv/d.xml",
        "HTTPS://example.org/feed",
    ]
    assert config.delivery.outbox == folder / "mail" / "out"
    # a sqlite URL is kept as written
    write(folder, text.replace("state: data/state.db", "state: sqlite:///rel/state.db"))
    assert load_config(Path("etc") / NAME, environ={}).state == "sqlite:///rel/state.db"


def test_yaml_anchors_and_extension_keys(in_tmp: Path) -> None:
    text = """\
        x-ml: &ml {categories: [cs.LG], exclude: [survey]}
        sources: [{name: s, type: arxiv, url: feed.xml}]
        subscribers:
          - email: a@example.org
            interests:
              - {<<: *ml, name: ML, keywords: [learning]}
    """
    interest = load(in_tmp, text).subscribers[0].interests[0]
    assert (interest.name, interest.categories, interest.exclude, interest.keywords) == (
        "ML",
        ("cs.LG",),
        ("survey",),
        ("learning",),
    )


def test_null_values_mean_default(in_tmp: Path) -> None:
    config = load(in_tmp, VALID + "web:\ndelivery:\n  reply_to:\n  outbox: ~\n")
    assert config.web.base_url == "http://localhost:8025"
    assert config.delivery.reply_to is None
    assert config.delivery.outbox == in_tmp / "outbox"


def test_control_characters_are_rejected(in_tmp: Path) -> None:
    text = VALID + '  - {email: b@example.org, trending: true, name: "Bob\\r\\nBcc: x@y.org"}\n'
    assert problems(in_tmp, text) == [
        f"{P}:6: subscribers[1].name: contains a line break or control character (use one line)"
    ]


# --------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("ada@example.org", None),
        ("first.last+tag@sub.example.co.uk", None),
        ("digest@localhost", None),
        ("ada@bücher.example", None),
        ("ada@example", "has a domain without a dot ('example')"),
        ("ada.example.org", "needs exactly one '@'"),
        ("ada@", "needs text on both sides of the '@'"),
        ("a..b@example.org", "has an invalid part before the '@' ('a..b')"),
        ("ada@-bad-.org", "has an invalid domain '-bad-.org'"),
        ("ada @example.org", "contains spaces or control characters"),
        ("ada@1.2.3.4", "has an invalid domain '1.2.3.4'"),
    ],
)
def test_check_email(address: str, why: str | None) -> None:
    assert check_email(address) == why


def test_parse_duration() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("every 1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="'0m' is not an interval"):
        parse_duration("0m")
    with pytest.raises(ValueError, match="'soon' is not an interval"):
        parse_duration("soon")


def test_fetch_intervals_and_cron_lines_are_accepted(in_tmp: Path) -> None:
    text = VALID.replace("url: feed.xml}", "url: feed.xml, fetch_every: 15 * * * *}") + (
        "scheduler: {fetch_schedule: every 2 hours}\n"
    )
    config = load(in_tmp, text)
    assert config.sources[0].fetch_every == "15 * * * *"
    assert config.scheduler.fetch_schedule == "every 2 hours"


def test_constants_match_the_issue() -> None:
    assert SOURCE_TYPES == ("arxiv", "arxiv_api", "hf_daily", "feed", "jsonfeed")
    assert ANNOUNCE_TYPES == ("new", "cross", "replace", "replace-cross")


def test_config_and_web_form_accept_the_same_categories() -> None:
    """One rule for both: codes, archive wildcards and globs over code characters."""
    from newsletter.prefs import is_category, validate_prefs

    good = ["cs.CL", "hep-th", "cs.*", "quant-*", "cs.C*", "*"]
    bad = ["foo bar", "cs.LG, stat.ML", "cs/LG", ""]
    assert [is_category(c) for c in good] == [True] * len(good)
    assert [is_category(c) for c in bad] == [False] * len(bad)
    interests = [{"name": "X", "keywords": ["x"], "categories": good}]
    _, problems = validate_prefs({"interests": interests})
    assert problems == []
    interests = [{"name": "X", "keywords": ["x"], "categories": ["foo bar"]}]
    _, problems = validate_prefs({"interests": interests})
    assert len(problems) == 1 and "'foo bar' is not an arXiv code" in problems[0]


# --------------------------------------------------------------------- deliverability

SMTP_ONLY = VALID + "delivery:\n  transport: smtp\n  smtp: {host: smtp.example.org}\n"  # 6-8
NO_WEB = (
    f"{P}: web.base_url: not set, so unsubscribe links point at http://localhost:8025 and "
    "messages carry no one-click unsubscribe, which needs https (RFC 8058) and which Gmail "
    "and Yahoo require of bulk senders (add web: {base_url: https://your-host}, where "
    "'newsletter serve' is reachable over HTTPS)"
)
NO_FROM = (
    f"{P}:7: delivery.from: not set, so mail goes out as 'Paper Digest <digest@localhost>', "
    "with Message-ID and List-Id at localhost too: relays reject such a sender and DMARC "
    'cannot align it (add from: "Paper Digest <digest@your-domain>" with a domain you '
    "send for)"
)


def test_smtp_without_from_or_base_url_warns_naming_both_keys(in_tmp: Path) -> None:
    # The review: mail went out as digest@localhost with an http://localhost one-click
    # unsubscribe link, and nothing said so. Still loads: existing configs keep working.
    config = load(in_tmp, SMTP_ONLY)
    assert config.delivery.from_addr == "Paper Digest <digest@localhost>"
    assert config.web.base_url == "http://localhost:8025"
    assert config.warnings == (NO_WEB, NO_FROM)
    # Both given: no warning.
    assert load(in_tmp, SMTP_ONLY + SENDER).warnings == ()


def test_smtp_with_a_plain_http_base_url_warns_but_a_local_one_does_not(in_tmp: Path) -> None:
    sender = '  from: "Paper Digest <digest@example.org>"\n'  # line 9
    config = load(in_tmp, SMTP_ONLY + sender + "web:\n  base_url: http://digest.example.org/nl/\n")
    assert config.warnings == (
        f"{P}:11: web.base_url: 'http://digest.example.org/nl' is not https, so messages carry "
        "no one-click unsubscribe, which needs https (RFC 8058) and which Gmail and Yahoo "
        "require of bulk senders (use https://digest.example.org/nl, served by your HTTPS "
        "reverse proxy)",
    )
    for local in ("http://localhost:8025", "http://127.0.0.1:8080", "HTTP://LOCALHOST"):
        assert load(in_tmp, SMTP_ONLY + sender + f"web: {{base_url: '{local}'}}\n").warnings == ()
    # web: without base_url is "not set" too.
    assert load(in_tmp, SMTP_ONLY + sender + "web: {port: 8030}\n").warnings == (
        NO_WEB.replace(f"{P}:", f"{P}:10:", 1),
    )


@pytest.mark.parametrize("transport", ["outbox", "console"])
def test_no_sender_warnings_for_transports_that_do_not_send(in_tmp: Path, transport: str) -> None:
    config = load(
        in_tmp, VALID + f"delivery: {{transport: {transport}}}\nweb: {{base_url: http://a.org}}\n"
    )
    assert config.warnings == ()


def test_validate_and_other_commands_print_the_sender_warnings(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_bytes(SAMPLE.read_bytes())
    write(tmp_path, SMTP_ONLY)
    for args in (("validate",), ("status",)):
        proc = run_cli("-c", P, *args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning: ")]
        assert warnings == [f"Warning: {NO_WEB}", f"Warning: {NO_FROM}"], args
    assert proc.stdout  # status still reports


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("papers.example.org", "papers.example.org"),
        ("Tägliche Papiere <daily.example.org>", "daily.example.org"),
        ('"Papers, daily" <papers.example.org>', "papers.example.org"),
        ("<a-1.b2.localhost>", "a-1.b2.localhost"),
    ],
)
def test_list_id_forms_that_load(in_tmp: Path, value: str, label: str) -> None:
    from newsletter.config import split_list_id

    config = load(in_tmp, VALID + f"delivery:\n  list_id: '{value}'\n")
    assert config.delivery.list_id == value
    parts = split_list_id(value)
    assert parts is not None and parts[1] == label


FIX = 'write it as papers.example.org or "Paper Digest <papers.example.org>"'
BAD_LABEL = f"is not a dot-separated name of letters, digits and - ({FIX})"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a b c>", f"'<a b c>': the list label 'a b c' {BAD_LABEL}"),
        ("daily", f"'daily': the list label 'daily' {BAD_LABEL}"),
        (
            "tägliche.example.org",
            f"'tägliche.example.org': the list label 'tägliche.example.org' {BAD_LABEL}",
        ),
        ("Papers <a..b>", f"'Papers <a..b>': the list label 'a..b' {BAD_LABEL}"),
        ("a <b.org> c", f"'a <b.org> c' is not an RFC 2919 List-Id ({FIX})"),
        ("<<b.org>>", f"'<<b.org>>' is not an RFC 2919 List-Id ({FIX})"),
    ],
)
def test_an_invalid_list_id_is_a_one_line_warning(in_tmp: Path, value: str, expected: str) -> None:
    """A warning, not an error: such values loaded before (the composer makes a usable
    label of them), and a config that loaded must keep loading."""
    config = load(in_tmp, VALID + f"delivery:\n  list_id: '{value}'\n")
    assert config.delivery.list_id == value
    assert list(config.warnings) == [f"{P}:7: delivery.list_id: {expected}"]


def test_a_non_ascii_list_id_description_is_sent_encoded(tmp_path: Path) -> None:
    # The review: send died with "Error: unexpected UnicodeEncodeError".
    import email
    import email.policy

    (tmp_path / "feed.xml").write_bytes(SAMPLE.read_bytes())
    write(
        tmp_path,
        """\
        sources: [{name: s, type: arxiv, url: feed.xml}]
        delivery:
          from: "Paper Digest <digest@example.org>"
          list_id: "Tägliche Papiere <daily.example.org>"
          outbox: outbox/
        defaults: {lookback_days: 3650}
        subscribers:
          - {email: ada@example.org, interests: [{name: L, keywords: [learning]}]}
        """,
    )
    proc = run_cli("-c", P, "send", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (eml,) = (tmp_path / "outbox").rglob("*.eml")
    raw = eml.read_bytes()
    assert raw.split(b"\r\n\r\n", 1)[0].isascii()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["List-Id"] == "Tägliche Papiere <daily.example.org>"


@pytest.mark.parametrize(
    ("sender", "signing", "warned"),
    [
        ("digest@example.org", "example.org", False),
        ("digest@news.example.org", "example.org", False),  # relaxed: a subdomain aligns
        ("digest@example.org", "mail.example.org", False),
        ("digest@news.example.org", "mail.example.org", False),  # one organisation
        ("digest@EXAMPLE.org", "example.org.", False),
        ("digest@lab.example.edu", "mailer.example.com", True),
        ("digest@example.org", "example.com", True),
    ],
)
def test_a_dkim_domain_that_can_not_align_with_the_sender_is_a_warning(
    in_tmp: Path, sender: str, signing: str, warned: bool
) -> None:
    """DKIM d= of another organisation than From passes DKIM but fails DMARC: the mail is
    as good as unsigned to Gmail and Yahoo, and nothing said so."""
    (in_tmp / "k.pem").write_bytes(PEM)
    text = (
        SMTP_ONLY
        + f'  from: "Digest <{sender}>"\n'  # line 9
        + "  dkim:\n    selector: s\n"
        + f"    domain: {signing}\n"  # line 12
        + "    key_file: k.pem\nweb: {base_url: 'https://digest.example.org'}\n"
    )
    config = load(in_tmp, text)
    want = sender.rpartition("@")[2].lower()
    d = signing.rstrip(".").lower()
    expected = (
        f"{P}:12: delivery.dkim.domain: '{d}' is not the domain of delivery.from ('{want}') "
        "nor one above or below it, so DMARC can not align the signature with the sender and "
        f"providers treat the mail as unauthenticated (sign with domain: {want}, or send "
        f"from an address at {d})",
    )
    assert config.warnings == (expected if warned else ())
    # Outbox and console send nothing: no warning about how mail would be received.
    outbox = text.replace("transport: smtp", "transport: outbox")
    assert load(in_tmp, outbox).warnings == ()

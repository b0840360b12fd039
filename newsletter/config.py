"""Configuration: the user-facing YAML schema, loaded and validated once.

Every default lives in this module. ``load_config`` reports *all* problems at once
as one ``ConfigError`` whose lines read
``<file>:<line>: <key path>: <what> (<how to fix>)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .models import Subscriber

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
    timeout: float = 20.0  # seconds, connect and read
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


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate the YAML file at ``path``; raise ``ConfigError`` listing all problems."""
    raise NotImplementedError  # implemented by the config work (issue 2)

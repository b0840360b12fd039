"""Fetch, parse, store: one source at a time, one failure never stopping the others."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx

from ..config import SOURCE_TYPES, Config, SourceConfig
from ..errors import SourceError
from ..models import SourceReport
from ..store import ARXIV, FEED, HF, Store, utcnow
from . import arxiv_api, arxiv_rss, feed, hf_daily, jsonfeed
from .base import NotAFeed, ParseResult
from .http import fetch_url, is_http, make_client
from .normalize import bounded

PARSERS: dict[str, Callable[[SourceConfig, bytes], ParseResult]] = {
    "arxiv": arxiv_rss.parse,
    "arxiv_api": arxiv_api.parse,
    "hf_daily": hf_daily.parse,
    "feed": feed.parse,
    "jsonfeed": jsonfeed.parse,
}
#: Whose metadata wins when one paper comes from several sources (``Store.upsert_papers``):
#: arXiv itself, then Hugging Face's API (arXiv's metadata, as copied by Hugging Face),
#: then any feed or JSON Feed (anyone can publish one and name any arXiv id in it).
AUTHORITY: dict[str, int] = {
    "arxiv": ARXIV,
    "arxiv_api": ARXIV,
    "hf_daily": HF,
    "feed": FEED,
    "jsonfeed": FEED,
}
#: Sources fetched at the same time by ``fetch_all``.
MAX_PARALLEL = 4
#: Warning lines kept per source and fetch.
MAX_WARNINGS = 5


def _error(source: SourceConfig, reason: str) -> str:
    return str(SourceError(source.name, reason))


def parse_bytes(source: SourceConfig, body: bytes) -> ParseResult:
    """Parse a feed body into papers, by the source's ``type``. Pure: no I/O. Never raises.

    A body that is not what the type expects (an HTML page, empty, JSON given to an
    RSS type, an arXiv API error entry...) gives a result with one named error and
    no papers.
    """
    parser = PARSERS.get(source.type)
    if parser is None:
        return ParseResult(
            errors=[
                _error(
                    source, f"unknown type '{source.type}'; use one of {', '.join(SOURCE_TYPES)}"
                )
            ]
        )
    try:
        result = _cap_warnings(parser(source, body))
        result.papers = [bounded(p) for p in result.papers]  # whatever the feed sent
        return result
    except NotAFeed as err:
        return ParseResult(errors=[_error(source, str(err))])
    except RecursionError:  # a body nested thousands deep (JSON, or XML a parser recursed on)
        return ParseResult(
            errors=[_error(source, "not a feed: the body is nested too deeply to be one")]
        )
    except Exception as err:  # a parser bug must not take the run down: report it
        return ParseResult(
            errors=[
                _error(
                    source,
                    f"could not be parsed ({type(err).__name__}: {err}); "
                    "this is a bug in newsletter, please report it with the feed",
                )
            ]
        )


def _cap_warnings(result: ParseResult) -> ParseResult:
    """At most ``MAX_WARNINGS`` lines: a feed of 1,000 bad entries is not 1,000 lines."""
    extra = len(result.warnings) - MAX_WARNINGS
    if extra > 0:
        result.warnings = [*result.warnings[:MAX_WARNINGS], f"... and {extra} more warnings"]
    return result


def fetch_source(
    source: SourceConfig,
    store: Store,
    *,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    backoff: float | None = None,
) -> SourceReport:
    """Fetch one source, parse it, store its papers and its fetch state. Never raises for
    a bad feed or a network problem: those are ``errors`` / ``warnings`` of the report.

    HTTP sources use a conditional GET with the stored ETag / Last-Modified; a 304
    costs no parsing. A 410 disables the source (a warning); a disabled source is
    skipped with a warning until ``enable_source`` is called. ``backoff`` overrides
    the first wait between retries (seconds).
    """
    now = now or utcnow()
    state = store.fetch_state(source.name)
    if state.disabled:
        return SourceReport(
            name=source.name,
            disabled=True,
            warnings=(
                f"source '{source.name}' is disabled ({state.disabled_reason}); "
                f"fix its url, then run: newsletter fetch --enable {source.name}",
            ),
        )
    http = is_http(source.url)
    own_client = client is None and http
    active = make_client(source.timeout) if own_client else client
    try:
        fetched = fetch_url(
            source.name,
            source.url,
            client=active,  # type: ignore[arg-type]  # unused for files
            timeout=source.timeout,
            retries=source.retries,
            backoff=backoff,
            etag=state.etag if http else None,
            last_modified=state.last_modified if http else None,
        )
    except SourceError as err:
        store.update_fetch_state(
            source.name, last_fetch_at=now, last_status="error", last_error=str(err), last_new=0
        )
        return SourceReport(name=source.name, errors=(str(err),))
    finally:
        if own_client and active is not None:
            active.close()

    if fetched.gone:
        reason = f"HTTP 410 Gone from {source.url} on {now.date().isoformat()}"
        store.update_fetch_state(
            source.name,
            last_fetch_at=now,
            last_status="error",
            last_error=reason,
            last_new=0,
            disabled=True,
            disabled_reason=reason,
        )
        return SourceReport(
            name=source.name,
            disabled=True,
            warnings=(
                f"source '{source.name}': {source.url} answered 410 Gone; the source is now "
                "disabled (remove it from the config, or fix its url and run "
                f"newsletter fetch --enable {source.name})",
            ),
        )
    if fetched.not_modified:
        store.update_fetch_state(
            source.name,
            last_fetch_at=now,
            last_success_at=now,
            last_status="not_modified",
            last_error=None,
            last_new=0,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )
        return SourceReport(name=source.name, not_modified=True)

    result = parse_bytes(source, fetched.body)
    if result.errors:
        # Keep the old validators: the next fetch must download and parse again.
        store.update_fetch_state(
            source.name,
            last_fetch_at=now,
            last_status="error",
            last_error="; ".join(result.errors),
            last_new=0,
        )
        return SourceReport(
            name=source.name,
            fetched=result.fetched,
            skipped=result.skipped,
            errors=tuple(result.errors),
            warnings=tuple(result.warnings),
        )
    new, duplicate = store.upsert_papers(
        result.papers, now=now, authority=AUTHORITY.get(source.type, FEED)
    )
    store.update_fetch_state(
        source.name,
        last_fetch_at=now,
        last_success_at=now,
        # partial: malformed XML, the recovered entries were stored (the warning says so)
        last_status="partial" if result.malformed else "ok",
        last_error=result.malformed,
        last_new=new,
        etag=fetched.etag if http else None,
        last_modified=fetched.last_modified if http else None,
    )
    return SourceReport(
        name=source.name,
        fetched=result.fetched,
        new=new,
        duplicate=duplicate,
        skipped=result.skipped,
        warnings=tuple(result.warnings),
        malformed=result.malformed,
    )


def fetch_status(report: SourceReport) -> str:
    """The status column of ``newsletter fetch``: ``ok``, ``not modified (304)``,
    ``partial: ...`` (malformed XML, the recovered entries kept), ``disabled ...`` (a
    410 Gone) or ``error: ...``."""
    if report.errors:
        return f"error: {report.errors[0]}"
    if report.disabled:
        return "disabled (410 Gone; see the warning)"
    if report.not_modified:
        return "not modified (304)"
    if report.malformed:
        return f"partial: malformed feed, {report.fetched} entries recovered (see the warning)"
    return "ok"


def enable_source(store: Store, name: str) -> None:
    """Re-enable a source disabled after a 410 (and forget its validators)."""
    store.update_fetch_state(
        name, disabled=False, disabled_reason=None, etag=None, last_modified=None
    )


def _resolve(source: SourceConfig, base: Path) -> SourceConfig:
    url = source.url
    if is_http(url) or url.lower().startswith("file://") or Path(url).expanduser().is_absolute():
        return source
    return replace(source, url=str(base / url))


def fetch_all(
    config: Config,
    store: Store,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    backoff: float | None = None,
) -> list[SourceReport]:
    """Fetch every enabled source (a few at a time); reports in config order.

    One failing source never stops the others; the caller decides the exit code
    (every report with errors = the fetch failed).
    """
    now = now or utcnow()
    base = Path(config.path).parent
    sources = [_resolve(s, base) for s in config.sources if s.enabled]
    if not sources:
        return []

    def run(source: SourceConfig) -> SourceReport:
        try:
            return fetch_source(source, store, client=shared, now=now, backoff=backoff)
        except Exception as err:  # never let one source stop the others
            return SourceReport(
                name=source.name,
                errors=(_error(source, f"failed unexpectedly ({type(err).__name__}: {err})"),),
            )

    shared = client
    own = client is None and any(is_http(s.url) for s in sources)
    if own:
        shared = make_client(max(s.timeout for s in sources))
    try:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(sources))) as pool:
            return list(pool.map(run, sources))
    finally:
        if own and shared is not None:
            shared.close()

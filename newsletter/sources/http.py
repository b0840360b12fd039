"""Getting the bytes of a source: HTTP(S) with timeouts, retries and conditional GET, or files.

feedparser never sees a URL: it has no timeout. Everything here returns bytes or
raises ``SourceError`` with a one-line reason that says what to check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from .. import __version__
from ..errors import SourceError

USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter-digest/newsletter)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
#: First wait between attempts, in seconds; doubled each retry, capped by MAX_BACKOFF.
BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: Bodies larger than this are refused (a feed is a few MB at most).
MAX_BYTES = 50 * 1024 * 1024
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Fetched:
    """The outcome of one successful fetch (``not_modified`` for a 304)."""

    body: bytes
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    url: str = ""
    attempts: int = 1
    not_modified: bool = False
    gone: bool = False  # HTTP 410: the source should be disabled


def make_client(timeout: float = 20.0) -> httpx.Client:
    """An HTTP client with the project's User-Agent, redirects and timeouts."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
        follow_redirects=True,
        timeout=httpx.Timeout(timeout),
        max_redirects=10,
    )


def is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def local_path(url: str) -> Path:
    """The file behind a ``file://`` URL or a plain path."""
    if url.lower().startswith("file://"):
        parsed = urlparse(url)
        return Path(unquote((parsed.netloc and "//" + parsed.netloc) + parsed.path))
    return Path(url).expanduser()


def read_file(name: str, url: str) -> Fetched:
    path = local_path(url)
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_BYTES + 1)
    except FileNotFoundError as err:
        raise SourceError(name, f"file not found: {path} (check the source's url)") from err
    except IsADirectoryError as err:
        raise SourceError(name, f"{path} is a folder, not a feed file") from err
    except OSError as err:
        raise SourceError(name, f"cannot read {path}: {err.strerror or err}") from err
    if len(body) > MAX_BYTES:
        raise SourceError(name, f"{path} is larger than {MAX_BYTES // 2**20} MB; not a feed?")
    return Fetched(body=body, url=str(path))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def fetch_url(
    name: str,
    url: str,
    *,
    client: httpx.Client,
    timeout: float = 20.0,
    retries: int = 2,
    backoff: float | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """GET ``url`` with a conditional request; retry timeouts, connection errors and 5xx.

    At most ``1 + retries`` attempts, waiting ``backoff * 2**n`` seconds in between
    (or the server's ``Retry-After``, capped). Raises ``SourceError`` when all fail.
    """
    if not is_http(url):
        return read_file(name, url)
    wait = BACKOFF if backoff is None else backoff
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    attempts = 1 + max(0, retries)
    reason = "no attempt made"
    for attempt in range(1, attempts + 1):
        delay = min(MAX_BACKOFF, wait * 2 ** (attempt - 1))
        try:
            response, body = _get(client, url, headers, timeout)
        except httpx.TimeoutException as err:
            reason = f"timed out after {timeout:g} s ({type(err).__name__}) fetching {url}"
        except httpx.TooManyRedirects as err:
            raise SourceError(name, f"too many redirects fetching {url}") from err
        except httpx.UnsupportedProtocol as err:
            raise SourceError(
                name, f"unsupported URL '{url}'; use http(s)://, file:// or a path"
            ) from err
        except httpx.TransportError as err:
            reason = f"cannot connect to {url}: {err or type(err).__name__}"
        except _TooLarge as err:
            raise SourceError(name, str(err)) from err
        else:
            status = response.status_code
            if status == 304:
                return Fetched(
                    body=b"",
                    status=304,
                    etag=response.headers.get("ETag") or etag,
                    last_modified=response.headers.get("Last-Modified") or last_modified,
                    url=str(response.url),
                    attempts=attempt,
                    not_modified=True,
                )
            if status == 410:
                return Fetched(body=b"", status=410, url=str(response.url), gone=True)
            if 200 <= status < 300:
                return Fetched(
                    body=body,
                    status=status,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    url=str(response.url),
                    attempts=attempt,
                )
            reason = f"HTTP {status} {response.reason_phrase} from {url}"
            if status not in RETRY_STATUS:
                hint = {
                    401: "the feed needs credentials",
                    403: "the server refused access; check the url",
                    404: "check the source's url",
                }.get(status, "check the source's url")
                raise SourceError(name, f"{reason} ({hint})")
            after = _retry_after(response)
            if after is not None:
                delay = min(MAX_BACKOFF, after)
        if attempt < attempts:
            time.sleep(delay)
    raise SourceError(name, f"{reason} ({attempts} attempt{'s' if attempts > 1 else ''})")


class _TooLarge(Exception):
    pass


def _get(
    client: httpx.Client, url: str, headers: dict[str, str], timeout: float
) -> tuple[httpx.Response, bytes]:
    """One GET, reading at most ``MAX_BYTES`` of the body."""
    with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_BYTES:
                raise _TooLarge(f"response from {url} is larger than {MAX_BYTES // 2**20} MB")
            chunks.append(chunk)
    return response, b"".join(chunks)

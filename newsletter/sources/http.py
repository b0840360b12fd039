"""Getting the bytes of a source: HTTP(S) with timeouts, retries and conditional GET, or files.

feedparser never sees a URL: it has no timeout. Everything here returns bytes or
raises ``SourceError`` with a one-line reason that says what to check.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
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
#: One attempt (connect, response headers and the whole body) may take at most this many
#: times the source's ``timeout``. httpx's timeout limits each read, not the download: a
#: server trickling a byte now and then would otherwise keep a fetch (and the edition
#: waiting for it) going for as long as it likes.
DEADLINE_FACTOR = 3


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
        # A new connection per request: its socket is known (connect trace), so the
        # per-attempt deadline can stop a server that trickles its headers, too.
        limits=httpx.Limits(max_keepalive_connections=0),
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
    (or the server's ``Retry-After``, capped). Each read waits at most ``timeout``
    seconds and each attempt as a whole at most ``DEADLINE_FACTOR * timeout`` (a slow
    server is an error like a timeout). Raises ``SourceError`` when all fail.
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
        except _TooSlow as err:
            reason = str(err)
        except httpx.TimeoutException as err:
            reason = f"timed out after {timeout:g} s ({type(err).__name__}) fetching {url}"
        except httpx.TooManyRedirects as err:
            raise SourceError(name, f"too many redirects fetching {url}") from err
        except httpx.UnsupportedProtocol as err:
            raise SourceError(
                name, f"unsupported URL '{url}'; use http(s)://, file:// or a path"
            ) from err
        except (httpx.RemoteProtocolError, httpx.ReadError) as err:  # connected, then cut off
            reason = f"the connection to {url} broke off: {err or type(err).__name__}"
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


class _TooSlow(Exception):
    """An attempt passed its deadline (the message is the source error's reason)."""


def _amount(size: int) -> str:
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 2**20:.1f} MB"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


class _Deadline:
    """Ends one attempt at its deadline: shuts its socket down, so a blocked read returns.

    The socket comes from httpcore's connect / TLS trace events (a new connection) or
    from the response's ``network_stream`` (a reused one, known once the headers are in).
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = time.monotonic()
        self.fired = False
        self._done = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(limit, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self) -> bool:
        return self.fired or self.elapsed() >= self.limit

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self.watch(info.get("return_value"))

    def watch(self, stream: Any) -> None:
        get = getattr(stream, "get_extra_info", None)
        sock = get("socket") if get is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._done:
                return
            self._socket = sock
            if self.fired:  # the deadline passed while connecting
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._socket is not None:
                _shutdown(self._socket)

    def finish(self) -> None:
        """Called before the connection is released: the timer never touches it again."""
        with self._lock:
            self._done = True
            self._socket = None
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSLSocket (whose own drops its TLS state
    # under the reading thread's feet); a socket closed meanwhile raises, harmlessly.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _get(
    client: httpx.Client, url: str, headers: dict[str, str], timeout: float
) -> tuple[httpx.Response, bytes]:
    """One GET, reading at most ``MAX_BYTES`` of the body within the attempt's deadline."""
    deadline = _Deadline(DEADLINE_FACTOR * timeout)
    size = 0
    current: httpx.Response | None = None

    def too_slow() -> _TooSlow:
        if current is not None:  # bytes as sent (before any gzip decoding)
            sent = _amount(current.num_bytes_downloaded)
            what = f"{url} sent {sent} in {_seconds(deadline.elapsed())} and was not done"
        else:
            what = f"{url} sent no complete response in {_seconds(deadline.elapsed())}"
        return _TooSlow(
            f"{what}; gave up (one download may take {DEADLINE_FACTOR} x the source's timeout"
            f" of {timeout:g} s = {deadline.limit:g} s; raise timeout if the server is just slow)"
        )

    try:
        with client.stream(
            "GET", url, headers=headers, timeout=timeout, extensions={"trace": deadline.trace}
        ) as response:
            current = response
            deadline.watch(response.extensions.get("network_stream"))
            chunks: list[bytes] = []
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise _TooLarge(f"response from {url} is larger than {MAX_BYTES // 2**20} MB")
                chunks.append(chunk)
                if deadline.expired():
                    raise too_slow()
            deadline.finish()  # before the connection goes back to the pool
    except httpx.RequestError as err:  # a read cut short by the deadline's shutdown
        if deadline.fired:
            raise too_slow() from err
        raise
    finally:
        deadline.finish()
    return response, b"".join(chunks)

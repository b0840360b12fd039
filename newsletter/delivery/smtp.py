"""SMTP transport: smtplib, one reused connection per worker thread.

- ``security``: ``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or
  ``none``; certificates are verified against the system store plus ``ca_file``.
- ``connections`` worker threads each keep one connection, recycled after
  ``max_per_connection`` messages and after any error.
- One global ``RateLimiter`` (messages per second and per hour) shared by all.
- 4xx replies, and timeouts and dropped connections *before the final "."* of
  DATA, are retried ``retries`` times with exponential backoff (``backoff``
  seconds, doubled, at most ``MAX_BACKOFF``); then the message is reported as a
  retryable failure with the last reason.
- A timeout or dropped connection *after the final "."* has an unknown outcome:
  the server may already have accepted the message. It is never retried in the
  same run: the result has ``uncertain=True`` and the reason starts with
  "outcome unknown"; the ledger decides whether a later run may resend it
  (at most ``max_uncertain`` = ``retries`` (at least 1) uncertain sends per message).
- 5xx on RCPT or DATA is a permanent failure carrying the server's reply.
- The envelope recipient is ``OutgoingMessage.recipient`` (the composer writes the
  IDNA form of an internationalised domain), else ``subscriber`` made ASCII.
- Any error inside a transaction drops the connection, so the next message starts
  on a fresh one (never "503 nested MAIL command"). A 503 at MAIL FROM on a reused
  connection is such a confused session: reconnect and retry.
- Failures that concern every message -- cannot connect after the retries,
  authentication refused, TLS verification failed, STARTTLS not offered, the
  sender refused (5xx at MAIL FROM on a fresh connection) -- raise
  ``TransportUnavailable`` and stop the run.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

from ..config import SmtpConfig
from ..models import DeliveryResult, OutgoingMessage
from .compose import ComposeError, ascii_address
from .engine import TransportUnavailable

_EOL = re.compile(rb"\r\n|\r|\n")
MAX_BACKOFF = 60.0  # seconds; the longest wait between two attempts


class RateLimiter:
    """At most ``per_second`` messages a second (evenly spaced) and ``per_hour`` in
    any sliding hour, across all threads. ``None`` disables a limit."""

    def __init__(
        self,
        per_second: float | None = None,
        per_hour: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour or 0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0
        self._window: deque[float] = deque()

    def reserve(self) -> float:
        """Reserve the next send slot; return how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next) if self.interval else now
            if self.per_hour:
                window = self._window
                while window and window[0] <= now - 3600.0:
                    window.popleft()
                if len(window) >= self.per_hour:
                    slot = max(slot, window.popleft() + 3600.0)
                window.append(slot)
            if self.interval:
                self._next = slot + self.interval
            return slot - now

    def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)


class _Connection:
    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.sent = 0

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()


class _Uncertain(Exception):
    """The connection failed after the final "." of DATA: the outcome is unknown."""

    def __init__(self, err: BaseException) -> None:
        self.err = err
        super().__init__(str(err))


class _Reply(Exception):
    """An SMTP reply other than success, inside one attempt."""

    def __init__(self, code: int, text: str, stage: str) -> None:
        self.code, self.text, self.stage = code, text, stage
        super().__init__(f"{code} {text}".strip())


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def blames_recipient(stage: str, code: int, text: str) -> bool:
    """Whether a 5xx reply says the *address* is bad, so that it counts towards
    suppressing the subscriber (``delivery.max_failures``).

    By the enhanced status code (RFC 3463) when the server gives one: 5.1.x (bad address
    or mailbox) and 5.2.x (mailbox disabled or full) do; 5.7.x (policy: the sender not
    authenticated, DMARC, spam, relaying denied) and 5.3.x-5.6.x (mail system, routing,
    protocol, content) do not: those refuse every reader alike, and suppressing everyone
    for the sender's own misconfiguration would lose the list. Without one: a 550, 551
    or 553 answer to RCPT TO ("no such user") does; anything else does not.
    """
    found = _ENHANCED.match(text)
    if found:
        return found.group(1) == "5" and found.group(2) in ("1", "2")
    return stage == "RCPT TO" and code in (550, 551, 553)


def _text(resp: bytes | str) -> str:
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return " ".join(resp.split())


class SmtpTransport:
    name = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if config.security not in ("starttls", "tls", "none"):
            raise TransportUnavailable(
                f"delivery.smtp.security '{config.security}': use starttls, tls or none",
                permanent=True,
            )
        self.config = config
        self.concurrency = max(1, config.connections)
        # Uncertain sends (no reply after the final ".") allowed per message, over all
        # runs; read by ``deliver``, which then marks the row failed instead.
        self.max_uncertain = max(1, config.retries)
        self.limiter = RateLimiter(config.rate_per_second, config.rate_per_hour, sleep=sleep)
        self._sleep = sleep
        self._context = ssl_context
        self._local = threading.local()
        self._open: set[_Connection] = set()
        self._lock = threading.Lock()
        self._helo = socket.gethostname() or "localhost"
        self.where = f"smtp {config.host}:{config.port}"

    # -- connections ---------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            ctx = ssl.create_default_context()
            if self.config.ca_file:
                try:
                    ctx.load_verify_locations(cafile=self.config.ca_file)
                except (OSError, ssl.SSLError) as err:
                    raise TransportUnavailable(
                        f"delivery.smtp.ca_file '{self.config.ca_file}': cannot load ({err});"
                        " point it at a PEM CA bundle",
                        permanent=True,
                    ) from err
            self._context = ctx
        return self._context

    def _connect(self) -> _Connection:
        cfg = self.config
        try:
            smtp: smtplib.SMTP
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    local_hostname=self._helo,
                    timeout=cfg.timeout,
                    context=self._ssl_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    cfg.host, cfg.port, local_hostname=self._helo, timeout=cfg.timeout
                )
        except ssl.SSLCertVerificationError as err:
            raise self._tls_error(err) from err
        try:
            smtp.ehlo()
            if cfg.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TransportUnavailable(
                        f"{self.where}: the server does not offer STARTTLS;"
                        " set delivery.smtp.security to tls (port 465) or none",
                        permanent=True,
                    )
                smtp.starttls(context=self._ssl_context())
                smtp.ehlo()
            if cfg.username:
                if cfg.password is None:
                    raise TransportUnavailable(
                        f"{self.where}: no password for '{cfg.username}'; set the environment"
                        f" variable named by delivery.smtp.password_env"
                        f" ({cfg.password_env or 'unset'})",
                        permanent=True,
                    )
                smtp.login(cfg.username, cfg.password)
        except smtplib.SMTPAuthenticationError as err:
            smtp.close()
            raise TransportUnavailable(
                f"{self.where}: login as '{cfg.username}' refused ({err.smtp_code}"
                f" {_text(err.smtp_error)}); check delivery.smtp.username and the password",
                permanent=True,
                code=err.smtp_code,
            ) from err
        except smtplib.SMTPNotSupportedError as err:
            smtp.close()
            raise TransportUnavailable(
                f"{self.where}: the server offers no AUTH for '{cfg.username}'"
                " (many offer it only after STARTTLS); check delivery.smtp.security",
                permanent=True,
            ) from err
        except ssl.SSLCertVerificationError as err:
            smtp.close()
            raise self._tls_error(err) from err
        except BaseException:
            smtp.close()
            raise
        conn = _Connection(smtp)
        with self._lock:
            self._open.add(conn)
        return conn

    def _tls_error(self, err: ssl.SSLCertVerificationError) -> TransportUnavailable:
        return TransportUnavailable(
            f"{self.where}: TLS certificate not trusted ({err.verify_message});"
            " set delivery.smtp.ca_file to the relay's CA bundle",
            permanent=True,
        )

    def _drop(self, conn: _Connection | None, *, polite: bool = False) -> None:
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._open.discard(conn)
        if polite:
            conn.close()
        else:
            conn.smtp.close()

    # -- sending -------------------------------------------------------------------

    def _attempt(self, conn: _Connection, message: OutgoingMessage, recipient: str) -> str:
        smtp = conn.smtp
        code, resp = smtp.mail(message.sender)
        if code != 250:
            raise _Reply(code, _text(resp), "MAIL FROM")
        code, resp = smtp.rcpt(recipient)
        if code not in (250, 251):
            raise _Reply(code, _text(resp), "RCPT TO")
        code, resp = _data(smtp, message.data, ready=message.wire_ready)
        if code != 250:
            raise _Reply(code, _text(resp), "end of DATA")
        return f"{code} {_text(resp)}"

    def send(self, message: OutgoingMessage) -> DeliveryResult:
        cfg = self.config
        try:
            recipient = message.recipient or ascii_address(message.subscriber)
        except ComposeError as err:
            return self._result(message, False, f"RCPT TO: {err}", 0, permanent=True)
        reason = ""
        attempts = 0
        connect_failures = 0
        for attempt in range(1, cfg.retries + 2):
            attempts = attempt
            if attempt > 1:
                self._sleep(min(cfg.backoff * 2 ** (attempt - 2), MAX_BACKOFF))
            conn: _Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                try:
                    conn = self._connect()
                except TransportUnavailable:
                    raise
                except smtplib.SMTPConnectError as err:
                    connect_failures += 1
                    reason = f"{self.where}: connect: {err.smtp_code} {_text(err.smtp_error)}"
                    continue
                except smtplib.SMTPResponseException as err:
                    connect_failures += 1
                    reason = f"{self.where}: {err.smtp_code} {_text(err.smtp_error)}"
                    continue
                except (OSError, smtplib.SMTPException) as err:
                    connect_failures += 1
                    reason = f"{self.where}: cannot connect: {_describe(err, cfg.timeout)}"
                    continue
                self._local.conn = conn
            self.limiter.acquire()
            try:
                reply = self._attempt(conn, message, recipient)
            except _Uncertain as err:
                self._drop(conn)
                reason = (
                    f"outcome unknown: {_describe(err.err, cfg.timeout)} after the end of DATA;"
                    " the server may have accepted it, so this run does not resend it"
                )
                return self._result(message, False, reason, attempts, uncertain=True)
            except _Reply as err:
                reused = conn.sent > 0
                self._drop(conn, polite=err.code != 421)
                reason = f"{err.stage}: {err}"
                if err.stage == "MAIL FROM" and err.code == 503:
                    # "Bad sequence of commands": the session is confused (a transaction
                    # left open), not a verdict on the sender. Retry on a new connection.
                    if reused:
                        continue
                    raise TransportUnavailable(
                        f"{self.where}: MAIL FROM answered '{err}' on a new connection"
                        " (out of sequence); the server may want AUTH first: check"
                        " delivery.smtp.username and delivery.smtp.security",
                        permanent=True,
                        code=err.code,
                    ) from None
                if 500 <= err.code < 600:
                    if err.stage == "MAIL FROM":
                        raise TransportUnavailable(
                            f"{self.where}: the server refused the sender '{message.sender}'"
                            f" ({err}); check delivery.from",
                            permanent=True,
                            code=err.code,
                        ) from None
                    return self._result(
                        message,
                        False,
                        reason,
                        attempts,
                        permanent=True,
                        recipient_fault=blames_recipient(err.stage, err.code, err.text),
                    )
                continue
            except (OSError, smtplib.SMTPException) as err:
                # Before the final "." of DATA: the server cannot have accepted it.
                self._drop(conn)
                reason = f"connection lost: {_describe(err, cfg.timeout)}"
                continue
            except BaseException:
                # Anything else (a bug, an address smtplib cannot encode): the session
                # may be mid-transaction, so it is never reused.
                self._drop(conn)
                raise
            conn.sent += 1
            if conn.sent >= cfg.max_per_connection:
                self._drop(conn, polite=True)
            return self._result(message, True, reply, attempts)
        if connect_failures == attempts:
            raise TransportUnavailable(f"{reason} (after {attempts} attempts)")
        return self._result(message, False, reason, attempts)

    @staticmethod
    def _result(
        message: OutgoingMessage,
        ok: bool,
        reply: str,
        attempts: int,
        *,
        permanent: bool = False,
        uncertain: bool = False,
        recipient_fault: bool = True,
    ) -> DeliveryResult:
        return DeliveryResult(
            subscriber=message.subscriber,
            edition=message.edition,
            message_id=message.message_id,
            ok=ok,
            permanent=permanent,
            reply=reply,
            attempts=attempts,
            uncertain=uncertain,
            recipient_fault=recipient_fault,
        )

    def close(self) -> None:
        """Close every open connection (QUIT); the transport can be used again."""
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()
        self._local = threading.local()


def _data(smtp: smtplib.SMTP, data: bytes, *, ready: bool = False) -> tuple[int, bytes]:
    """DATA, dot-stuffed with one ``bytes.replace``: ``smtplib.SMTP.data`` runs a
    regex over every message (~0.7 ms for a 60 KB digest) and, given bytes, sends
    bare line feeds as they are; those are turned into CRLF here first.

    ``ready`` (``OutgoingMessage.wire_ready``, set by the composer in the build
    workers) skips both: the three counts and the replace cost ~170 us for a 70 KB
    message, in the sending process and holding the GIL, about a third of its
    Python time per message.
    """
    if not ready:
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            data = _EOL.sub(b"\r\n", data)
    code, resp = smtp.docmd("data")
    if code != 354:
        raise _Reply(code, _text(resp), "DATA")
    payload = data if ready else data.replace(b"\r\n.", b"\r\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    smtp.send(payload + b".\r\n")
    # From here the server has the whole message: a timeout or a dropped connection
    # no longer means "not delivered" (it may have queued it and failed to answer).
    try:
        return smtp.getreply()
    except (OSError, smtplib.SMTPException) as err:
        raise _Uncertain(err) from err


def _describe(err: BaseException, timeout: float) -> str:
    # smtplib turns a read timeout into SMTPServerDisconnected("...: timed out").
    if isinstance(err, TimeoutError | socket.timeout) or str(err).endswith("timed out"):
        return f"no reply within {timeout:g} s (delivery.smtp.timeout)"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__

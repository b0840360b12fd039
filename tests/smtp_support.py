"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0, in a thread.

Usable by any test module (``from smtp_support import SmtpServer, Faults``)::

    with SmtpServer(tls="starttls", auth={"user": "pw"}) as server:
        ...  # connect to server.port; trust server.ca_file
        server.messages  # what was accepted, parsed with email.policy.default

TLS modes: ``None`` (plain), ``"starttls"`` (STARTTLS offered and required) and
``"implicit"`` (TLS from the first byte, like port 465). ``auth={"user": "pw"}``
requires AUTH (PLAIN and LOGIN; ``auth_exclude=["PLAIN"]`` hides one). Certificates come from a
throwaway trustme CA; ``server.ca_file`` is its PEM. Fault injection through
``server.faults`` (set after the server started, so the controller's own start-up
probe is never affected): reject connections with 421, answer RCPT with 451 or
550, drop the connection at the DATA command (before any data: nothing can have
been accepted) or after the final "." (the message was received, no reply),
accept a message and answer only after a delay, answer MAIL FROM with "503" on a
connection that already carried a message, or answer slowly.
"""

from __future__ import annotations

import asyncio
import email
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass
class Faults:
    """What the server does wrong. Counters count down as the faults are used."""

    reject_connections: int = 0  # the next N connections get "421" and are closed
    rcpt_tempfail: int = 0  # the next N RCPT commands get "451"
    rcpt_reject: set[str] = field(default_factory=set)  # these addresses always get "550"
    drop_in_data: int = 0  # the next N DATA transfers end with a dropped connection
    data_tempfail: int = 0  # the next N DATA transfers get "451" after the data
    delay_rcpt: float = 0.0  # seconds to wait before answering RCPT
    drop_at_data: int = 0  # the next N DATA commands drop the connection (before 354)
    slow_accept: int = 0  # the next N messages are accepted (recorded), then answered...
    slow_accept_delay: float = 0.0  # ... after this many seconds
    nested_mail: int = 0  # the next N MAIL FROM on a used connection get "503"
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> its RCPT reply
    data_reply: str = ""  # every DATA gets this reply (a 5xx) after the data
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, name: str) -> bool:
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if getattr(session, "carried", 0) and self.server.faults.take("nested_mail"):
            return "503 5.5.1 Error: nested MAIL command"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        faults = self.server.faults
        if faults.delay_rcpt:
            await asyncio.sleep(faults.delay_rcpt)
        if address in faults.rcpt_reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in faults.rcpt_replies:
            return faults.rcpt_replies[address]
        if faults.take("rcpt_tempfail"):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        faults = self.server.faults
        if faults.take("drop_in_data"):
            assert server.transport is not None
            server.transport.abort()  # type: ignore[attr-defined]
            return "250 OK (never seen: the connection is gone)"
        if faults.take("data_tempfail"):
            return "451 4.3.0 Temporary local problem"
        if faults.data_reply:
            return faults.data_reply
        data = envelope.original_content or envelope.content
        self.server._record(Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(data)))
        session.carried = getattr(session, "carried", 0) + 1
        if faults.take("slow_accept"):
            # Queued, but the reply comes late: a client that times out cannot know.
            await asyncio.sleep(faults.slow_accept_delay)
        return "250 2.0.0 Ok: queued"


class _FaultySMTP(SMTP):
    def __init__(self, *args: Any, owner: SmtpServer, **kwargs: Any) -> None:
        with warnings.catch_warnings():  # AUTH over implicit TLS is not "without TLS"
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(*args, **kwargs)
        self._owner = owner

    async def smtp_DATA(self, arg: str) -> None:
        if self._owner.armed and self._owner.faults.take("drop_at_data"):
            assert self.transport is not None
            self.transport.abort()  # type: ignore[attr-defined]
            return
        await super().smtp_DATA(arg)

    async def _handle_client(self) -> None:
        owner = self._owner
        if owner.armed:
            owner.connections += 1
            if owner.faults.take("reject_connections"):
                await self.push("421 4.3.2 Too many connections, try again later")
                assert self.transport is not None
                self.transport.close()
                return
        await super()._handle_client()


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        return _FaultySMTP(self.handler, owner=self.owner, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Port 0: learn the port the OS chose before the start-up probe connects.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        super()._trigger_server()


class SmtpServer:
    """An aiosmtpd server on port 0 that records what it accepted."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        auth: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        auth_exclude: list[str] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.tls = tls
        self.faults = Faults()
        self._armed_faults = faults or Faults()
        self.received: list[Received] = []
        self.connections = 0
        self.armed = False
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="smtp-ca-")
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        kwargs: dict[str, Any] = {}
        if tls:
            import ssl

            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(server_ctx)
            if tls == "starttls":
                kwargs.update(tls_context=server_ctx, require_starttls=True)
            elif tls == "implicit":
                kwargs.update(ssl_context=server_ctx)
            else:
                raise ValueError(f"tls must be None, 'starttls' or 'implicit', not {tls!r}")
        self.users = dict(auth or {})
        self.auth_mechanisms: set[str] = set()  # mechanisms clients logged in with
        if auth is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS; implicit TLS is TLS too.
                auth_require_tls=auth_require_tls and tls != "implicit",
                auth_exclude_mechanism=auth_exclude or [],
            )
        self.controller = _Controller(self, _Handler(self), **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            ok = self.users.get(user) == auth_data.password.decode()
            if ok:
                self.auth_mechanisms.add(mechanism)
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            items = list(self.received)
        return [r.message for r in items]

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]

    def start(self) -> SmtpServer:
        self.controller.start()
        self.faults = self._armed_faults
        self.armed = True
        return self

    def stop(self) -> None:
        self.controller.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

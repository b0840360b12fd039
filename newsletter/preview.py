"""Library parts of ``newsletter preview``: write a file, open it, or serve it live.

The command itself lives in ``cli.py``; these helpers never send and never touch the
delivery ledger.

    preview_path(email, edition, fmt, folder=Path("preview")) -> Path
    preview_folder(config) -> Path                                   <config folder>/preview
    settled_edition(store, ref) -> (EditionRef, str | None)          already sent? say so
    write_preview(content: str | bytes, path: Path) -> Path          atomic write
    open_in_browser(path: Path) -> bool                              system browser
    watch_files(*paths: Path | None) -> tuple[Path, ...]             template files + config
    PreviewServer(build, watch, host="127.0.0.1", port=0)            --serve [PORT]

``PreviewServer`` serves, on localhost only:

    /            a page showing subject and preheader, the email in a frame, a link to the
                 text part; it reloads the frame by itself when the output changes
    /email.html  the HTML exactly as it would be sent
    /email.txt   the plain-text part
    /version     a counter that changes on every successful or failed re-render

Before answering any request it checks the modification times of ``watch`` (the template
files and the config file); when one changed it calls ``build()`` again. ``build`` should
reload the config and construct a new ``Renderer`` so template and config edits show up.
A failing build (a template being edited) is shown as the error text, and the server
keeps running.
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
import webbrowser
from collections.abc import Callable, Iterable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .delivery.outbox import write_atomic
from .errors import NewsletterError
from .models import RenderedEmail
from .store import ACTIVE, FAILED, SENT, SUPPRESSED, Store

if TYPE_CHECKING:
    from .config import Config
    from .pipeline import EditionRef

FORMAT_SUFFIX = {"html": ".html", "text": ".txt", "eml": ".eml", "json": ".json"}


def preview_path(email: str, edition: str, fmt: str = "html", folder: Path | None = None) -> Path:
    """``preview/<email>-<edition>.<ext>``, with unsafe characters replaced."""
    stem = re.sub(r"[^A-Za-z0-9@._+-]+", "_", f"{email}-{edition}")
    stem = re.sub(r"\.{2,}", "_", stem).strip("._") or "preview"
    return (folder or Path("preview")) / (stem + FORMAT_SUFFIX.get(fmt, "." + fmt))


def preview_folder(config: Config) -> Path:
    """Where ``preview`` writes its HTML by default: ``preview/`` beside the config file
    (like ``state`` and ``delivery.outbox``), shown relative to the current folder when
    it is inside it. An explicit ``--output`` stays relative to the current folder."""
    folder = Path(os.path.abspath(config.path)).parent / "preview"
    cwd = Path.cwd()
    return folder.relative_to(cwd) if folder.is_relative_to(cwd) else folder


def settled_edition(store: Store, ref: EditionRef) -> tuple[EditionRef, str | None]:
    """The edition to preview, and a one-line notice when ``send`` would send nothing.

    * already **sent**: the notice names the time, papers and Message-ID (and the outbox
      file, if there is one), and the returned ref replays exactly the papers that were
      sent (as ``--date`` does), so the preview shows what was sent, not a new selection
      from what is left;
    * **failed**: ``send`` skips it unless ``--retry-failed``, which would send what the
      preview shows (the ref is unchanged);
    * subscriber **unsubscribed or suppressed**: ``send`` sends them nothing;
    * otherwise ``(ref, None)``: the preview is what ``send`` would send.
    """
    email, edition = ref.subscriber.email, ref.edition
    row = store.delivery(email, edition)
    if row is not None and row.message_id:  # what send would use: the ledger's id
        ref = replace(ref, message_id=row.message_id)
    if row is not None and row.state == SENT:
        n = len(row.paper_ids)
        when = f"{row.sent_at:%Y-%m-%d %H:%M} UTC" if row.sent_at else "an unknown time"
        outbox = (row.server_reply or "").removeprefix("written to ")
        sent_file = outbox.endswith(".eml") and Path(outbox).is_file()
        where = f"; the message sent is {outbox}" if sent_file else ""
        notice = (
            f"edition {edition} was already sent to {email} at {when} ({n} paper"
            f"{'s' if n != 1 else ''}, Message-ID <{row.message_id}>); 'send' would send "
            f"nothing. Showing what was sent, replayed from the stored papers{where}"
        )
        if ref.replay_ids is None:
            cutoff = row.cutoff or ref.cutoff
            ref = replace(
                ref,
                since=cutoff,
                cutoff=cutoff,
                replay_ids=row.paper_ids,
                since_seq=None,
                cutoff_seq=None,
            )
        return ref, notice
    status, why = store.subscriber_status(email)
    if status != ACTIVE:
        return ref, (
            f"{email} is {status} ({why or 'no reason recorded'}): 'send' would send them "
            f"nothing; showing what edition {edition} would hold"
            + (" (newsletter reactivate lifts a suppression)" if status == SUPPRESSED else "")
        )
    if row is not None and row.state == FAILED:
        return ref, (
            f"edition {edition} failed for {email} ({row.reason or 'no reason recorded'}): "
            "'send' skips it; 'send --retry-failed' would send what is shown"
        )
    return ref, None


def write_preview(content: str | bytes, path: Path) -> Path:
    """Write ``content`` to ``path`` atomically (parents created); return the absolute path."""
    path = Path(path).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, content.encode("utf-8") if isinstance(content, str) else content)
    return path


def open_in_browser(path: Path) -> bool:
    """Open ``path`` in the system browser; False when no browser could be started."""
    try:
        return webbrowser.open(Path(path).absolute().as_uri())
    except webbrowser.Error:
        return False


def watch_files(*paths: Path | None) -> tuple[Path, ...]:
    """The files to watch: each given file, and every file directly inside each folder."""
    found: list[Path] = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        if p.is_dir():
            found.extend(sorted(c for c in p.iterdir() if c.is_file()))
        else:
            found.append(p)
    return tuple(found)


def _stamp(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    stamp = []
    for p in paths:
        try:
            st = p.stat()
            stamp.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((str(p), -1, -1))
    return tuple(stamp)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {subject}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ margin: 0; font: 15px/1.5 system-ui, sans-serif; background: #e9ebef; color: #1f2328;
  display: flex; flex-direction: column; height: 100vh; }}
header {{ padding: 12px 20px; background: #fff; border-bottom: 1px solid #d0d7de; }}
header p {{ margin: 2px 0; }} .muted {{ color: #57606a; }}
.notice {{ color: #7d4e00; background: #fff8c5; padding: 4px 8px; border-radius: 4px; }}
pre.error {{ margin: 20px; padding: 16px; background: #fff1f0; color: #82071e;
  border: 1px solid #ffb3b8; white-space: pre-wrap; }}
iframe {{ display: block; width: 100%; flex: 1; border: 0; background: #fff; }}
</style></head><body>
<header><p><strong>{subject}</strong></p>{notice}
<p class="muted">{preheader} · <a href="/email.html" target="_blank">HTML</a> ·
<a href="/email.txt" target="_blank">Text</a> · re-renders when a template or the config
changes</p></header>
{body}
<script>
let version = {version};
setInterval(async () => {{
  try {{
    const r = await fetch("/version", {{cache: "no-store"}});
    const v = Number(await r.text());
    if (v !== version) location.reload();
  }} catch (e) {{}}
}}, 1000);
</script></body></html>
"""


class PreviewServer:
    """A tiny localhost server for ``preview --serve``; re-renders when watched files change.

    ``build`` returns the email, or (the email, a notice to show above it: the
    ``settled_edition`` note that ``send`` would send nothing, say).
    """

    def __init__(
        self,
        build: Callable[[], RenderedEmail | tuple[RenderedEmail, str | None]],
        watch: Iterable[Path] | Callable[[], Iterable[Path]] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._build = build
        self._watch = watch
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self.version = 0
        self.email: RenderedEmail | None = None
        self.notice: str | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self.refresh()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the CLI prints the URL once

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as err:
            raise NewsletterError(
                f"cannot serve the preview on {host}:{port}: {err.strerror or err} "
                "(choose another port: --serve PORT)"
            ) from err
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/"

    def _paths(self) -> tuple[Path, ...]:
        paths = self._watch() if callable(self._watch) else self._watch
        return tuple(Path(p) for p in paths)

    def refresh(self, *, force: bool = False) -> bool:
        """Re-render if a watched file changed (or ``force``); True when it re-rendered."""
        with self._lock:
            stamp = _stamp(self._paths())
            if not force and stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                built = self._build()
                email, notice = built if isinstance(built, tuple) else (built, None)
            except NewsletterError as err:
                self.error, self.notice = str(err), None
            except Exception as err:  # a preview must survive a half-edited template
                self.error, self.notice = f"{type(err).__name__}: {err}", None
            else:
                self.email, self.notice, self.error = email, notice, None
            self.version += 1
            return True

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        self.refresh()
        email, notice, error = self.email, self.notice, self.error
        if path == "/version":
            self._send(req, 200, "text/plain", str(self.version))
        elif path == "/email.html":
            if error or email is None:
                self._send(req, 500, "text/plain", error or "no preview yet")
            else:
                self._send(req, 200, "text/html", email.html)
        elif path == "/email.txt":
            if error or email is None:
                self._send(req, 500, "text/plain", error or "no preview yet")
            else:
                self._send(req, 200, "text/plain", email.text)
        elif path == "/email.json":
            body = json.dumps(
                {"error": error}
                if error or email is None
                else {
                    "subject": email.subject,
                    "preheader": email.preheader,
                    "text": email.text,
                    "notice": notice,
                }
            )
            self._send(req, 500 if error else 200, "application/json", body)
        elif path == "/":
            if error or email is None:
                subject, preheader = "Template error", "fix the file and save: this page reloads"
                body = f'<pre class="error">{html.escape(error or "no preview yet")}</pre>'
            else:
                subject, preheader = email.subject, email.preheader
                body = f'<iframe src="/email.html?v={self.version}" title="email"></iframe>'
            page = _PAGE.format(
                subject=html.escape(subject),
                notice=f'\n<p class="notice">{html.escape(notice)}</p>' if notice else "",
                preheader=html.escape(preheader),
                body=body,
                version=self.version,
            )
            self._send(req, 200, "text/html", page)
        else:
            self._send(req, 404, "text/plain", "not found: try / /email.html /email.txt")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, ctype: str, body: str) -> None:
        data = body.encode("utf-8")
        req.send_response(status)
        req.send_header("Content-Type", f"{ctype}; charset=utf-8")
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        req.wfile.write(data)

    def start(self) -> PreviewServer:
        """Serve in a background thread (tests, embedding); returns self."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C); the CLI calls this."""
        try:
            self.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Preview helpers: files, the system browser, and the live-reloading local server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_render_fixtures import LINKS, fixed_digest

from newsletter.models import RenderedEmail
from newsletter.preview import (
    PreviewServer,
    open_in_browser,
    preview_path,
    watch_files,
    write_preview,
)
from newsletter.render import Renderer, default_templates


def test_preview_path_is_safe() -> None:
    path = preview_path("Ana Smith <ana@x.org>/../", "2026-11-29", "eml")
    assert path.parent == Path("preview")
    assert path.suffix == ".eml"
    assert "/" not in path.name and " " not in path.name and ".." not in path.name
    assert preview_path("a@b.c", "2026-W48").name == "a@b.c-2026-W48.html"


def test_write_preview_is_atomic_and_absolute(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "p.html"
    written = write_preview("<p>é</p>", target)
    assert written.is_absolute() and written == target
    assert target.read_text(encoding="utf-8") == "<p>é</p>"
    write_preview(b"bytes", target)
    assert target.read_bytes() == b"bytes"
    assert [p.name for p in target.parent.iterdir()] == ["p.html"]  # no temp files left


def test_open_in_browser_runs_the_configured_browser(tmp_path: Path) -> None:
    """Real process: $BROWSER points at a script that records the URL it was given."""
    record = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}"\n')
    script.chmod(0o755)
    page = write_preview("<p>x</p>", tmp_path / "page.html")
    code = f"from newsletter.preview import open_in_browser; import sys; sys.exit(0 if open_in_browser({str(page)!r}) else 3)"  # noqa: E501
    env = {**os.environ, "BROWSER": f"{script} %s", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=30, check=False)
    assert done.returncode == 0
    for _ in range(50):  # the browser command may run in the background
        if record.exists() and record.read_text():
            break
        time.sleep(0.05)
    assert record.read_text() == page.as_uri()
    assert callable(open_in_browser)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8")


def _touch_later(path: Path, text: str) -> None:
    path.write_text(text)
    later = time.time() + 2
    os.utime(path, (later, later))


def test_server_serves_and_rerenders_on_template_change(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(default_templates(), folder)
    config = tmp_path / "subscribers.yaml"
    config.write_text("subscribers: []\n")
    builds = []

    def build() -> RenderedEmail:
        builds.append(1)
        return Renderer(folder).render(fixed_digest(), links=LINKS)

    with PreviewServer(build, lambda: watch_files(folder, config)).start() as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, page = _get(server.url)
        assert status == 200 and "Your paper digest, 29 Nov 2026" in page
        status, html = _get(server.url + "email.html")
        assert status == 200 and html == build().html
        status, text = _get(server.url + "email.txt")
        assert status == 200 and "PAPER DIGEST" in text
        version = int(_get(server.url + "version")[1])
        count = len(builds)
        assert int(_get(server.url + "version")[1]) == version  # nothing changed: no rebuild
        assert len(builds) == count

        _touch_later(folder / "subject.txt", "Edited subject {{ edition_date }}\n")
        assert int(_get(server.url + "version")[1]) == version + 1
        assert "Edited subject 29 Nov 2026" in _get(server.url)[1]

        # a half-edited template: the error is shown, the server keeps running
        _touch_later(folder / "digest.txt", "{% for x in %}\n")
        status, page = _get(server.url)
        assert status == 200 and f"{folder / 'digest.txt'}:1:" in page
        assert _get(server.url + "email.html")[0] == 500

        _touch_later(folder / "digest.txt", "fixed {{ edition_date }}\n")
        assert _get(server.url + "email.txt") == (200, "fixed 29 Nov 2026\n")

        # the config file is watched too
        version = int(_get(server.url + "version")[1])
        _touch_later(config, "subscribers: [] # edited\n")
        assert int(_get(server.url + "version")[1]) == version + 1
        assert _get(server.url + "nope")[0] == 404


def test_server_port_in_use_is_a_clear_error() -> None:
    def build() -> RenderedEmail:
        return RenderedEmail("s", "<p>h</p>", "t")

    with PreviewServer(build) as first:
        port = first.httpd.server_address[1]
        with pytest.raises(Exception, match=rf"127.0.0.1:{port}.*--serve PORT"):
            PreviewServer(build, port=port)


def test_server_shows_the_builds_notice_escaped_and_drops_it_on_an_error() -> None:
    email = RenderedEmail("Subject", "<p>mail</p>", "text")
    answers: list[object] = [(email, "sent <b>already</b> & 'replayed'")]

    def build() -> RenderedEmail | tuple[RenderedEmail, str | None]:
        answer = answers[-1]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    with PreviewServer(build).start() as server:
        page = _get(server.url)[1]
        shown = '<p class="notice">sent &lt;b&gt;already&lt;/b&gt; &amp; &#x27;replayed&#x27;</p>'
        assert shown in page
        assert json.loads(_get(server.url + "email.json")[1])["notice"].startswith("sent <b>")
        answers.append(ValueError("half-edited template"))
        server.refresh(force=True)
        page = _get(server.url)[1]
        assert "half-edited template" in page and 'class="notice"' not in page
        answers.append(email)  # a plain email: no notice
        server.refresh(force=True)
        page = _get(server.url)[1]
        assert 'class="notice"' not in page and "<iframe" in page
        assert json.loads(_get(server.url + "email.json")[1])["notice"] is None

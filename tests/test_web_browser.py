"""Headless Chromium follows the unsubscribe link of a real rendered email and clicks.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (fd 3 in,
fd 4 out, NUL-separated JSON): no extra package, no port, no browser download. The click
is a real mouse press and release at the button's position, not a scripted ``click()``.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from web_support import bound_socket, running

from newsletter.config import Config, WebConfig
from newsletter.models import Digest, Interest, Paper, Pick, Section, Subscriber
from newsletter.signing import Links
from newsletter.store import ACTIVE, UNSUBSCRIBED, Store
from newsletter.web import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECRET = "browser-test-secret"
READER = Subscriber(
    email="reader@example.org",
    name="Reader",
    interests=(Interest(name="Agents", keywords=("agents",)),),
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium); CI installs it",
)


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM, "chromium must be installed in CI (see .ci/run)"
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: its fd 3 reads commands, fd 4 writes replies
            # Park both ends above 4 first, so neither dup2 can clobber the other.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            pass_fds=(3, 4, to_child_r, from_child_w),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 65536)
            if not chunk:
                raise RuntimeError(f"chromium exited (code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 20
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", session=True, expression=expression)
        return reply["result"].get("value")

    def goto(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def click(self, selector: str) -> None:
        """Press and release the left mouse button in the middle of ``selector``."""
        box = json.loads(
            self.evaluate(
                f"JSON.stringify(document.querySelector({json.dumps(selector)})"
                ".getBoundingClientRect())"
            )
        )
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.events.clear()
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                session=True,
                type=kind,
                x=x,
                y=y,
                button="left",
                clickCount=1,
            )

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._to_child)
        os.close(self._from_child)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.close()


PAPER = Paper(
    id="2411.17700",
    title="Agents that use tools",
    abstract="We study agents.",
    authors=("A. Author",),
    categories=("cs.AI",),
    url="https://arxiv.org/abs/2411.17700",
)


def rendered_email(links: Links) -> str:
    from newsletter.render import Renderer

    paper = PAPER
    digest = Digest(
        subscriber=READER,
        edition="2026-11-29",
        edition_date=date(2026, 11, 29),
        sections=(Section("Agents", (Pick(paper, 1.0, "Agents", ("keyword: agents",)),)),),
        candidates=1,
    )
    return Renderer(base_url=links.base_url).render(digest, links=links).html


def reader_config(tmp_path: Path, base: str) -> Config:
    """A config with the one reader, links pointing at the app on ``base``."""
    return Config(
        path=tmp_path / "subscribers.yaml",
        state=str(tmp_path / "state.db"),
        sources=(),
        subscribers=(READER,),
        web=WebConfig(base_url=base),
        secret_key=SECRET,
    )


def test_chromium_follows_unsubscribe_link_from_email_and_clicks(
    tmp_path: Path, browser: Browser
) -> None:
    sock, base = bound_socket()
    config = reader_config(tmp_path, base)
    links = Links(base, SECRET, READER.email)
    email_html = rendered_email(links)
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', email_html)]
    unsubscribe = [h for h in hrefs if "/unsubscribe/" in h]
    assert unsubscribe == [links.unsubscribe], "the email's footer carries the signed link"

    with Store(config.state) as store, running(create_app(config, store), sock):
        browser.goto(unsubscribe[0])
        assert browser.evaluate("document.title") == "Unsubscribe"
        assert store.subscriber_status(READER.email)[0] == ACTIVE  # opening it changes nothing

        browser.click("#unsubscribe")
        browser.wait_for("Page.loadEventFired")
        assert browser.evaluate("document.querySelector('h1').textContent") == (
            "You are unsubscribed"
        )
        assert store.subscriber_status(READER.email)[0] == UNSUBSCRIBED

        # The done page's resubscribe button works in a real browser too (cookie + CSRF).
        browser.click("#resubscribe")
        browser.wait_for("Page.loadEventFired")
        assert browser.evaluate("document.querySelector('h1').textContent") == "Welcome back"
        assert store.subscriber_status(READER.email)[0] == ACTIVE


def test_chromium_feedback_link_asks_then_the_button_records(
    tmp_path: Path, browser: Browser
) -> None:
    sock, base = bound_socket()
    config = reader_config(tmp_path, base)
    links = Links(base, SECRET, READER.email)
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', rendered_email(links))]
    feedback = [h for h in hrefs if "/feedback/" in h]
    assert feedback == [links.feedback("2411.17700", 1), links.feedback("2411.17700", -1)]

    with Store(config.state) as store, running(create_app(config, store), sock):
        store.upsert_papers([PAPER])  # the emailed paper, as the sender stored it
        # What a mail link scanner does: open both links. Nothing is recorded.
        for link in feedback:
            browser.goto(link)
        assert store.feedback(READER.email) == {}

        browser.goto(feedback[0])
        assert browser.evaluate("document.querySelector('h1').textContent") == (
            "Mark as more like this?"
        )
        browser.click("#confirm")
        browser.wait_for("Page.loadEventFired")
        assert browser.evaluate("document.querySelector('h1').textContent") == "Thank you"
        assert store.feedback(READER.email) == {"2411.17700": 1}

        # Changed their mind: the thank-you page's button replaces the vote.
        browser.click("#vote-less")
        browser.wait_for("Page.loadEventFired")
        assert store.feedback(READER.email) == {"2411.17700": -1}

"""``newsletter serve`` as users run it: the real command in a subprocess (uvicorn)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cli_support import free_port, start_cli

from newsletter.signing import Links

SECRET = "serve-test-secret"


def test_the_access_log_never_holds_a_links_token(tmp_path: Path) -> None:
    """Whoever reads the log must not be able to unsubscribe, vote or edit as a reader."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "cfg.yaml").write_text(
        f"state: {tmp_path / 'state.db'}\n"
        "sources: [{name: q, type: feed, url: https://example.org/feed.xml}]\n"
        f"web: {{base_url: '{base}', host: 127.0.0.1, port: {port}}}\n"
        "subscribers:\n  - email: ada@example.org\n    trending: true\n",
        encoding="utf-8",
    )
    links = Links(base, SECRET, "ada@example.org")
    proc = start_cli(
        "--config", "cfg.yaml", "serve", cwd=tmp_path, env={"NEWSLETTER_SECRET_KEY": SECRET}
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(links.unsubscribe, timeout=5) as resp:
                    assert resp.status == 200  # GET only asks; nothing changes
                    break
            except OSError:
                assert proc.poll() is None, "newsletter serve exited"
                assert time.monotonic() < deadline, "newsletter serve did not answer in 30 s"
                time.sleep(0.1)
        with urllib.request.urlopen(links.preferences, timeout=5) as resp:
            assert resp.status == 200
        # A link whose case a client or a proxy changed: 404, yet its token is still valid.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(links.unsubscribe.replace("/unsubscribe/", "/Unsubscribe/"))
        assert refused.value.code == 404
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    log = out + err  # (uvicorn writes its access lines to stdout)
    assert '"GET /unsubscribe/[token] HTTP/1.1" 200' in log
    assert '"GET /preferences/[token] HTTP/1.1" 200' in log
    assert '"GET /Unsubscribe/[token] HTTP/1.1" 404' in log
    for link in (links.unsubscribe, links.preferences):
        token = link.rsplit("/", 1)[1]
        assert token.split(".")[1] not in log and token.split(".")[0] not in log

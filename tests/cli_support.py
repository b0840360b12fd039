"""The real ``newsletter`` command in a subprocess, as a user runs it (shared by tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the CLI runs in: a test secret key, no ``NEWSLETTER_CONFIG`` from
    the calling environment, then ``env``."""
    full_env = {**os.environ, "NEWSLETTER_SECRET_KEY": "test-secret", **(env or {})}
    full_env.pop("NEWSLETTER_CONFIG", None)
    return full_env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, text: bool = True
) -> subprocess.CompletedProcess[Any]:
    """``python -m newsletter ARGS`` in ``cwd`` (``cli_env``); output captured."""
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=text,
        timeout=120,
    )


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m newsletter ARGS`` started in ``cwd`` (a server: ``serve``, ``preview
    --serve``), stdout and stderr piped as text; the caller stops it."""
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port() -> int:
    """A port free on 127.0.0.1 now (a server started right after binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port

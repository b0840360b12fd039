"""The real ``newsletter`` command in a subprocess, as a user runs it (shared by tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, text: bool = True
) -> subprocess.CompletedProcess[Any]:
    """``python -m newsletter ARGS`` in ``cwd`` with a test secret key and no
    ``NEWSLETTER_CONFIG`` from the calling environment; output captured."""
    full_env = {**os.environ, "NEWSLETTER_SECRET_KEY": "test-secret", **(env or {})}
    full_env.pop("NEWSLETTER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=text,
        timeout=120,
    )

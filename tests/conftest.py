"""Shared test fixtures. Area-specific fixtures live in the area's own test module."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The real feeds and paper sets, read in place (never copied into the project).
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip, saying why, where it is absent."""
    if not (SHARED_DATA / "feeds").is_dir():
        pytest.skip(f"real feed data not found at {SHARED_DATA} (it ships beside the repo)")
    return SHARED_DATA


@pytest.fixture()
def store(tmp_path: Path):
    """A real SQLite state file in a temporary folder."""
    from newsletter.store import Store

    with Store(tmp_path / "state.db") as s:
        yield s

"""Every command has help, is in the README, and errors are one ``Error:`` line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli, main

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(cli.commands)


def test_expected_commands_exist() -> None:
    assert {"validate", "fetch", "preview", "send", "run", "status", "serve"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert f"Usage: cli {name}" in result.output or f"Usage: newsletter {name}" in result.output
    assert len(cli.commands[name].help or "") > 20


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_documented_in_readme(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"^#+ .*`newsletter {name}\b", readme, re.M), (
        f"README.md has no heading for `newsletter {name}`"
    )


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("fetch", ["--format"]),
        ("preview", ["--subscriber", "--format", "--output", "--date", "--open", "--serve"]),
        ("send", ["--subscriber", "--date", "--dry-run"]),
        ("run", ["--once"]),
        ("serve", ["--host", "--port"]),
    ],
)
def test_contract_flags_exist(name: str, flags: list[str]) -> None:
    help_text = CliRunner().invoke(cli, [name, "--help"]).output
    for flag in flags:
        assert flag in help_text, f"{name} lacks {flag}"


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["preview", "--format", "pdf", "--subscriber", "a@example.org"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ")
    assert "'pdf' is not one of" in err[0]


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(missing), "validate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "nope.yaml" in err and "\n" not in err


def test_validate_json_reports_a_bad_config_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script that asked for JSON gets JSON on stdout either way (and the exit code)."""
    import json

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "state: s.db\nsubscribers:\n  - email: not-an-address\n    interests: [{name: X}]\n"
        "  - email: b@example.org\n    timezone: Mars/Olympus\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(bad), "validate", "--format", "json"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["ok"] is False and report["config"] == str(bad)
    assert len(report["errors"]) >= 2
    assert any("not-an-address" in e for e in report["errors"])
    assert any("Mars/Olympus" in e for e in report["errors"])
    assert err.splitlines() == [f"Error: {e}" for e in report["errors"]]

    good = tmp_path / "good.yaml"
    good.write_text(
        "state: s.db\nsources: [{name: q, type: feed, url: https://example.org/feed.xml}]\n"
        "subscribers:\n  - email: a@example.org\n    trending: true\n"
    )
    main(["--config", str(good), "validate", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["subscribers"][0]["email"] == "a@example.org"

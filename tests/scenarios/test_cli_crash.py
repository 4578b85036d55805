"""A bug inside a `mesbot` command (not a refusal, not a store fault) still ends in one line for the
user, with a reference and where the traceback was kept."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import cli
from storage.engine import Store


def _broken(store: Store) -> None:
    raise RuntimeError("a bug in the upgrade")


def test_a_bug_is_one_line_with_a_reference_and_the_traceback_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "_upgrade", _broken)

    result = CliRunner().invoke(
        cli.main, ["db", "upgrade"], env={"MESBOT_DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}
    )

    assert result.exit_code == 1
    [line] = result.output.splitlines()
    found = re.fullmatch(
        r"Error: Something went wrong inside mesbot \(reference ([0-9a-f]{8})\); the "
        r"details are in (\S+)\. Please report it\.",
        line,
    )
    assert found, line
    kept = Path(found.group(2)).read_text()
    assert "Traceback" in kept and "RuntimeError: a bug in the upgrade" in kept
    Path(found.group(2)).unlink()

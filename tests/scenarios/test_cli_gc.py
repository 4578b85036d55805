"""Every `mesbot` command runs with the garbage collector's young generation widened (bot/cli.py says
why: batch applies spent a fifth of their time in it)."""

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import cli


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's default
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_a_command_runs_with_the_wider_young_generation(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["db", "upgrade"], env={"MESBOT_DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}
    )
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == cli.GC_THRESHOLDS
    assert cli.GC_THRESHOLDS[0] > 700

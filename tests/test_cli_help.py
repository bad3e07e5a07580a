"""Help text a new user reads: no words lost to markup, conventional metavars, choices listed and
checked, every link and subcommand there."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import get_args

import click
import pytest
from click.testing import CliRunner

from afi.cli.app import Metric
from afi.cli.main import cli
from afi.leaderboard import METRICS

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def commands(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            found += commands(sub, (*path, name))
    return found


def help_of(*path: str) -> str:
    result = runner.invoke(cli(), [*path, "--help"], prog_name="afi", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", commands(cli()), ids=lambda p: " ".join(p) or "afi")
def test_options_show_conventional_metavars(path: tuple[str, ...]) -> None:
    text = help_of(*path)
    options = text.split("Options:", 1)[-1]
    for label in ("<str>", "<bool>", "<int>", "<float>", "<list["):
        assert label not in options, f"afi {' '.join(path)} --help shows {label}"


def test_markup_keeps_its_words() -> None:
    assert "Spec with a [search] table" in help_of("tune", "run")
    assert "[budget] cap_usd" in help_of("budget")


def test_hidden_defaults_links_and_subcommands_are_shown() -> None:
    assert "which default to 20" in help_of("tune", "run")
    assert "docs/variants.md" in help_of("variant", "add") and (ROOT / "docs" / "variants.md").is_file()
    assert "compare" in help_of("run").split("Commands:", 1)[0]  # in the group's summary too


def test_choices_are_listed_and_checked() -> None:
    assert set(get_args(Metric)) == set(METRICS)
    assert "[psnr|ssim|ms_ssim|lineart|lpips]" in help_of("leaderboard")
    assert "[nearest|blend|dis|flow]" in help_of("interpolate")
    bad = runner.invoke(cli(), ["leaderboard", "--metric", "psnrr"], prog_name="afi")
    assert bad.exit_code == 2 and "psnrr" in bad.output


def test_third_party_warnings_only_with_debug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert runner.invoke(cli(), ["--db", url, "--debug", "leaderboard"]).exit_code == 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn("a library's warning", UserWarning)
        assert len(caught) == 1 and "PYTHONWARNINGS" not in os.environ
        assert runner.invoke(cli(), ["--db", url, "leaderboard"]).exit_code == 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn("a library's warning", UserWarning)
        assert caught == [] and os.environ["PYTHONWARNINGS"] == "ignore"  # children inherit it

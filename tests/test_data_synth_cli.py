"""`afi dataset synth --motion/--style/--max-gap` through the CLI, over a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from afi.cli import dataset
from afi.cli.app import state

runner = CliRunner()


@pytest.fixture
def afi(db_url: str, afi_home: Path):
    def invoke(*args: str):
        state.reset(db_url, debug=False)
        return runner.invoke(dataset.app, list(args))

    yield invoke
    state.reset(None, debug=False)


def test_synth_settings_reach_the_dataset(afi) -> None:
    common = ("--clips", "2", "--size", "64x48", "--frames", "12")
    made = afi("synth", "hard", *common, "--motion", "hard", "--max-gap", "3", "--json")
    assert made.exit_code == 0, made.output
    record = json.loads(made.stdout)
    assert record["params"]["synth"]["motion"] == "hard" and record["params"]["max_gap"] == 3
    painted = afi("synth", "painted", *common, "--style", "painted", "--json")
    assert painted.exit_code == 0, painted.output
    assert json.loads(painted.stdout)["params"]["synth"]["style"] == "painted"


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    "args, message",
    [
        (("--motion", "wild"), "unknown motion 'wild'"),
        (("--style", "oil"), "unknown style 'oil'"),
        (("--max-gap", "1"), "max gap must be between 2 and 8"),
    ],
)
def test_bad_synth_settings_are_one_line_errors(afi, args: tuple[str, ...], message: str) -> None:
    result = afi("synth", "x", "--clips", "1", "--frames", "4", *args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
    assert json.loads(afi("list", "--json").stdout) == []

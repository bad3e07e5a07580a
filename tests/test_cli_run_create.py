"""`afi run create` without --dataset: the only registered dataset, said so; none or several is a
one-line error that lists them and names --dataset (SQLite and MariaDB)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine
from train_factories import make_dataset
from typer.testing import CliRunner

from afi.cli.main import app
from registry import runs as registry_runs
from registry.db import session_scope
from registry_factories import make_run

runner = CliRunner()


def afi(engine: Engine, *args: str):
    return runner.invoke(app, ["--db", engine.url.render_as_string(hide_password=False), *args])


def test_run_create_picks_the_only_dataset_or_says_which_to_name(engine: Engine, afi_home: Path) -> None:
    none = afi(engine, "run", "create", "--arch", "isnet", "--res", "64")
    assert none.exit_code == 2 and "no dataset registered" in none.output and "--dataset" in none.output
    with session_scope(engine) as s:
        assert registry_runs.list_runs(s) == []  # nothing half-made
    make_dataset(engine, "toons")
    one = afi(engine, "run", "create", "--arch", "isnet", "--res", "64", "--json")
    assert one.exit_code == 0, one.output
    assert "using dataset toons, the only one registered" in one.output
    assert json.loads(one.stdout[one.stdout.index("{"):])["dataset"] == "toons"
    make_dataset(engine, "ink")
    several = afi(engine, "run", "create", "--arch", "isnet", "--res", "64")
    assert several.exit_code == 2
    assert "2 datasets registered (ink, toons): pick one with --dataset NAME" in several.output


def test_run_cancel_refuses_a_running_run_as_its_help_says(engine: Engine) -> None:
    running = make_run(engine, status="running")
    refused = afi(engine, "run", "cancel", running.name)
    assert refused.exit_code == 1 and "is running" in refused.output and "SIGTERM" in refused.output
    with session_scope(engine) as s:
        assert registry_runs.get_run(s, running.id).status == "running"
    queued = make_run(engine, status="queued")
    assert afi(engine, "run", "cancel", queued.name).exit_code == 0

"""The CLI spine over a real registry (SQLite and MariaDB): runs, SQL, leaderboard, bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from afi.cli.main import app
from registry.db import make_engine
from registry_factories import make_dataset_row

runner = CliRunner()


def afi(db_url: str, *args: str):
    return runner.invoke(app, ["--db", db_url, *args])


def run_count(db_url: str) -> int:
    result = afi(db_url, "sql", "SELECT COUNT(*) AS n FROM runs", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)[0]["n"]


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def url(db_url: str, afi_home) -> str:
    """A registry whose only dataset is `rows`, so `afi run create` may leave out --dataset."""
    assert afi(db_url, "db", "upgrade").exit_code == 0
    engine = make_engine(db_url)
    make_dataset_row(engine)
    engine.dispose()
    return db_url


def test_run_create_list_show_cancel(url: str) -> None:
    created = afi(url, "run", "create", "--arch", "isnet", "--res", "256", "--width", "8",
                  "--depth", "2", "--tag", "purpose=test", "--json")
    assert created.exit_code == 0, created.output
    record = json.loads(created.stdout)
    assert record["arch"] == "isnet" and record["resolution"] == "256"
    assert record["status"] == "created" and record["tags"] == {"purpose": "test"}
    assert record["config"]["variant"]["arch"] == "isnet"

    plain = afi(url, "run", "create", "--arch", "unet", "--res", "512x256", "--queue")
    assert plain.exit_code == 0, plain.output
    second_id = int(plain.stdout.strip())

    listed = json.loads(afi(url, "run", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [second_id, record["id"]]
    assert listed[0]["status"] == "queued" and listed[0]["resolution"] == "512x256"

    shown = afi(url, "run", "show", record["name"], "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["run"]["id"] == record["id"]

    cancelled = afi(url, "run", "cancel", str(record["id"]))
    assert cancelled.exit_code == 0, cancelled.output
    again = afi(url, "run", "cancel", str(record["id"]))
    assert_one_line_error(again, 1, "cancelled")


def test_unknown_run_is_one_line(url: str) -> None:
    assert_one_line_error(afi(url, "run", "show", "9999"), 1, "not found")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--arch", "resnet"], "unknown arch"),
        (["--res", "-5"], "resolution"),
        (["--res", "256", "--steps", "0"], "steps"),
        (["--tag", "novalue"], "key=value"),
    ],
)
def test_bad_run_options_exit_2_and_write_nothing(url: str, args: list[str], fragment: str) -> None:
    assert_one_line_error(afi(url, "run", "create", *args), 2, fragment)
    assert run_count(url) == 0


def test_unknown_dataset_writes_no_rows(url: str) -> None:
    result = afi(url, "run", "create", "--dataset", "nope", "--width", "8", "--depth", "2")
    assert_one_line_error(result, 1, "dataset 'nope' not found")
    counts = json.loads(
        afi(url, "sql", "SELECT (SELECT COUNT(*) FROM runs) AS r, "
            "(SELECT COUNT(*) FROM model_variants) AS v", "--json").stdout
    )[0]
    assert counts == {"r": 0, "v": 0}


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM runs",
        "DROP TABLE runs",
        "UPDATE runs SET status = 'failed'; --",
        "SELECT 1; DELETE FROM runs",
        "WITH x AS (SELECT 1) DELETE FROM runs",
    ],
)
def test_sql_refuses_writes_and_changes_nothing(url: str, statement: str) -> None:
    assert afi(url, "run", "create", "--width", "8", "--depth", "2").exit_code == 0
    result = afi(url, "sql", statement)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert run_count(url) == 1


def test_leaderboard_is_empty_then_json(url: str) -> None:
    result = afi(url, "leaderboard", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert afi(url, "leaderboard", "--metric", "bogus").exit_code == 2


def test_bad_url_and_unreachable_server_are_one_line(afi_home) -> None:
    assert_one_line_error(afi("nonsense://x", "run", "list"), 1)
    unreachable = afi("mysql+pymysql://afi:s3cret@127.0.0.1:1/afi", "run", "list")
    assert_one_line_error(unreachable, 1, "127.0.0.1")
    assert "s3cret" not in unreachable.output


def test_db_current_masks_password(afi_home) -> None:
    result = afi("mysql+pymysql://afi:s3cret@127.0.0.1:1/afi", "db", "current")
    assert result.exit_code == 1
    assert "s3cret" not in result.output

"""Migrating safely on SQLite and MariaDB: concurrent first use, a half-applied upgrade, a schema
newer than the code, bad targets, and read-only commands that create nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from afi.cli.main import app
from registry.db import VERSION_TABLE, current_revision, head_revision, make_engine, upgrade
from registry.schema import Base

runner = CliRunner()
# Imports AFI, waits until all three have (a barrier of files in argv[2]), then opens the
# registry as every command does: the three first uses overlap however loaded the machine is.
OPEN_TOGETHER = (
    "import os, sys, time\n"
    "import alembic.command, sqlalchemy.dialects.mysql, sqlalchemy.dialects.sqlite\n"
    "from afi.db import open_registry\n"
    "open(os.path.join(sys.argv[2], str(os.getpid())), 'w').close()\n"
    "while len(os.listdir(sys.argv[2])) < 3:\n"
    "    time.sleep(0.005)\n"
    "open_registry(sys.argv[1]).dispose()\n"
)


def afi(url: str, *args: str):
    return runner.invoke(app, ["--db", url, *args])


def one_line(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_three_processes_opening_a_fresh_registry_at_once_all_succeed(
    db_url: str, afi_home, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_TOGETHER, db_url, str(barrier)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=300), p.communicate()[1][-300:]) for p in processes]
    assert [code for code, _ in results] == [0, 0, 0], results
    assert current_revision(db_url) == (head_revision(), head_revision())


def half_applied(db_url: str) -> None:
    """What `afi db upgrade` killed after three CREATE TABLEs leaves on MariaDB: an empty
    version table and some of the registry's tables."""
    engine = make_engine(db_url)
    tables = [Base.metadata.tables[name] for name in ("datasets", "experiments", "model_variants")]
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL)")
        Base.metadata.create_all(connection, tables=tables)
    engine.dispose()


def test_a_half_applied_upgrade_is_reported_with_its_fix_and_repaired(db_url: str, afi_home) -> None:
    half_applied(db_url)
    for args in (["run", "list"], ["db", "upgrade"]):
        line = one_line(afi(db_url, *args))
        assert "stopped part-way" in line and "afi db upgrade --repair" in line, line
    status = json.loads(afi(db_url, "db", "current", "--json").stdout)
    assert status["revision"] is None and "--repair" in status["status"]
    repaired = afi(db_url, "db", "upgrade", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert current_revision(db_url) == (head_revision(), head_revision())
    # The repaired registry takes writes again: a dataset, then a run on it.
    assert afi(db_url, "dataset", "synth", "toons", "--clips", "2", "--size", "32").exit_code == 0
    created = afi(db_url, "run", "create", "--width", "8", "--depth", "2", "--dataset", "toons")
    assert created.exit_code == 0, created.output


def test_repair_leaves_tables_that_hold_rows(db_url: str, afi_home) -> None:
    half_applied(db_url)
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO experiments (name, kind, created_at) "
                                "VALUES ('keep', 'single', CURRENT_TIMESTAMP)"))
    engine.dispose()
    assert "experiments hold rows" in one_line(afi(db_url, "db", "upgrade", "--repair"))
    assert current_revision(db_url)[0] is None


def test_a_newer_schema_says_upgrade_afi(db_url: str, afi_home) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099_future'"))
    engine.dispose()
    for args in (["run", "list"], ["db", "upgrade"]):
        line = one_line(afi(db_url, *args))
        assert "newer than this AFI" in line and "upgrade AFI" in line and "afi db upgrade" not in line
    assert "upgrade AFI" in json.loads(afi(db_url, "db", "current", "--json").stdout)["status"]


@pytest.mark.parametrize("target", ["head+1", "+1", "nonsense"])
def test_an_unknown_target_revision_is_one_line(db_url: str, afi_home, target: str) -> None:
    assert f"unknown revision {target!r}" in one_line(afi(db_url, "db", "upgrade", target))


def test_db_current_creates_nothing(afi_home: Path) -> None:
    result = runner.invoke(app, ["db", "current", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["revision"] is None
    assert not afi_home.exists()


def test_afi_home_under_a_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plain-file").write_text("")
    monkeypatch.setenv("AFI_HOME", str(tmp_path / "plain-file" / "afi"))
    monkeypatch.delenv("AFI_DB_URL", raising=False)
    line = one_line(runner.invoke(app, ["run", "list"]))
    assert "a file is in the way" in line and "plain-file" in line

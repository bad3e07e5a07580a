"""`run_readonly`: one query only, writes refused by the parser AND by the database, in a time limit."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from registry.db import make_engine, session_scope
from registry.errors import ReadOnlyViolation, RegistryError
from registry.evaluations import add_evaluations
from registry.sql import check_readonly, execute_readonly, run_readonly
from registry_factories import make_run

REFUSED = [
    "DELETE FROM runs",
    "DROP TABLE runs",
    "UPDATE runs SET name = 'x'; --",
    "update runs set name = 'x' -- ; select 1",
    "SELECT 1; DROP TABLE runs",
    "SELECT 1;DELETE FROM runs;",
    "WITH doomed AS (SELECT id FROM runs) DELETE FROM runs WHERE id IN (SELECT id FROM doomed)",
    "INSERT INTO tags (run_id, key, value) VALUES (1, 'a', 'b')",
    "WITH x AS (SELECT 1) REPLACE INTO tags (run_id, key, value) VALUES (1, 'a', 'b')",
    "PRAGMA query_only = OFF",
    "ATTACH DATABASE '/tmp/x.db' AS x",
    "ALTER TABLE runs ADD COLUMN x INT",
    "CREATE TABLE x (id INT)",
    "SELECT * FROM runs FOR UPDATE",
    "SELECT name INTO OUTFILE '/tmp/x' FROM runs",
    "/* harmless */ DELETE FROM runs",
    "SELECT 1 /* ; */ ; DELETE FROM runs",
    "",
    "   ;  ",
    # What the server runs though a scanner missed it: MySQL's `#` comment hid the INTO from it.
    "SELECT name FROM runs # '\nINTO OUTFILE '/tmp/afi-outfile.txt' -- '",
    "SELECT name FROM runs # '\nINTO DUMPFILE '/tmp/afi-dumpfile.bin' -- '",
    "SELECT name FROM runs INTO DUMPFILE '/tmp/afi-dumpfile.bin'",
    "SELECT LOAD_FILE('/etc/passwd')",
    "SELECT name FROM runs # '\nLOCK IN SHARE MODE -- '",
    "SELECT SLEEP(20), name FROM runs LOCK IN SHARE MODE",
    "SELECT * FROM runs FOR SHARE",
    "SELECT SLEEP(100)",
    "SELECT BENCHMARK(100000000, MD5('x'))",
    "SELECT GET_LOCK('afi', 10)",
    "SELECT @@datadir",
    "SELECT @x := 1",
    "SELECT load_extension('/tmp/x.so')",
]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
@pytest.mark.parametrize("sql", REFUSED)
def test_writes_and_tricks_are_refused_by_the_parser(sql: str, dialect: str) -> None:
    with pytest.raises(ReadOnlyViolation) as info:
        check_readonly(sql, dialect)
    assert "\n" not in str(info.value) and "afi sql" in str(info.value)


def test_quoting_rules_follow_the_database() -> None:
    # MySQL reads \' as an escaped quote: one string literal. SQLite ends the string at \'
    # and would then see a second statement.
    trick = "SELECT 'a\\'; DELETE FROM runs; -- '"
    assert check_readonly(trick, "mysql")
    with pytest.raises(ReadOnlyViolation):
        check_readonly(trick, "sqlite")
    # MySQL executes /*! ... */ comments; what runs is regenerated from the parse, without them.
    assert check_readonly("SELECT 1 /*! ; DROP TABLE runs */", "mysql") == "SELECT 1"
    assert check_readonly("SELECT 'DROP TABLE runs; --' AS \"update\", replace(name, 'a', 'b') FROM runs;", "sqlite")


def test_queries_run_and_nothing_changes(engine: Engine) -> None:
    run = make_run(engine, "queued", name="keep")
    for sql in REFUSED:
        with pytest.raises(ReadOnlyViolation):
            run_readonly(engine, sql)
    columns, rows = run_readonly(engine, "with q as (select id, name from runs) select * from q where name like 'ke%';")
    assert columns == ["id", "name"] and [tuple(r) for r in rows] == [(run.id, "keep")]
    assert len(run_readonly(engine, "SELECT * FROM runs", limit=0)[1]) == 0
    with session_scope(engine) as s:
        assert s.scalar(text("SELECT name FROM runs")) == "keep"


def test_the_database_refuses_writes_even_past_the_text_check(engine: Engine) -> None:
    run = make_run(engine, "queued", name="keep")
    for sql in ("DELETE FROM runs", f"UPDATE runs SET name = 'gone' WHERE id = {run.id}"):
        with pytest.raises(ReadOnlyViolation, match="refused a write"):
            execute_readonly(engine, sql, limit=10)
    with session_scope(engine) as s:  # and pooled connections are writable again afterwards
        assert s.scalar(text("SELECT name FROM runs")) == "keep"
    make_run(engine, "created", name="still-writable")


def test_sums_and_averages_come_back_as_numbers(engine: Engine) -> None:
    # MariaDB computes SUM and AVG as DECIMAL; rows must hold what SQLite gives, for `--json`.
    run = make_run(engine, "completed", name="r")
    with session_scope(engine) as s:
        add_evaluations(s, run.id, {"psnr": 30.0, "ssim": 0.5, "lpips": 0.25}, split="val", step=1)
    _, rows = run_readonly(engine, "SELECT SUM(evals), AVG(evals), AVG(psnr), SUM(stage) FROM leaderboard")
    assert rows == [(3, 3.0, 30.0, 0)]
    assert [type(cell) for cell in rows[0]] == [int, float, float, int]
    assert json.loads(json.dumps(rows)) == [[3, 3.0, 30.0, 0]]


# A recursive CTE counting 10^9 rows: minutes of work that only the time limit stops.
ENDLESS = ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) "
           "SELECT COUNT(*) FROM c AS a, c AS b, c AS d")


def test_a_query_past_its_time_limit_is_stopped(engine: Engine) -> None:
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"stopped after 0.5 s.*--timeout") as info:
        run_readonly(engine, ENDLESS, timeout_s=0.5)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 60  # the query alone would never end
    assert run_readonly(engine, "SELECT COUNT(*) FROM runs")[1] == [(0,)]  # and the next one runs


def test_the_server_stops_sleep_even_past_the_parser(engine: Engine, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no SLEEP")
    started = time.monotonic()
    with pytest.raises(RegistryError, match="stopped after 1 s"):
        execute_readonly(engine, "SELECT SLEEP(100) FROM DUAL WHERE 1 = 0 OR SLEEP(100) = 0", 10, 1)
    assert time.monotonic() - started < 60


def test_a_select_only_account_cannot_write_files(engine: Engine, backend: str, tmp_path: Path) -> None:
    """What README says to set AFI_SQL_URL to: with it even a query past the parser writes nothing."""
    if backend == "sqlite":
        pytest.skip("SQLite opens the file read-only instead")
    user, password = f"afi_ro_{uuid.uuid4().hex[:8]}", "ro-pass"
    database = engine.url.database
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        connection.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%%'")
    readonly = make_engine(engine.url.set(username=user, password=password, host="127.0.0.1"))
    target = f"/tmp/afi-outfile-{uuid.uuid4().hex}.txt"
    try:
        assert run_readonly(readonly, "SELECT COUNT(*) FROM runs")[1] == [(0,)]
        with pytest.raises(RegistryError, match="denied"):
            execute_readonly(readonly, f"SELECT name FROM runs INTO OUTFILE '{target}'", 10)
    finally:
        readonly.dispose()
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP USER '{user}'@'%%'")
    assert not Path(target).exists()


def test_sqlite_is_opened_read_only(engine: Engine, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only")
    make_run(engine, "queued", name="keep")
    # query_only is a pragma a statement could switch off: the file itself is opened read-only.
    for sql in ("PRAGMA query_only = OFF", "DELETE FROM runs"):
        with pytest.raises((ReadOnlyViolation, RegistryError)):
            execute_readonly(engine, sql, 10)
    with session_scope(engine) as s:
        assert s.scalar(text("SELECT COUNT(*) FROM runs")) == 1

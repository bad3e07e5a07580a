"""`run_readonly`: one query only, writes refused by the text check AND by the database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text

from registry.db import session_scope
from registry.errors import ReadOnlyViolation
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
]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
@pytest.mark.parametrize("sql", REFUSED)
def test_writes_and_tricks_are_refused_by_the_text_check(sql: str, dialect: str) -> None:
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
    with pytest.raises(ReadOnlyViolation, match="executable"):
        check_readonly("SELECT 1 /*! ; DROP TABLE runs */", "mysql")
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

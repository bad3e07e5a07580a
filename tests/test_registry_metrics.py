"""Metric upserts and the buffered MetricLogger, including a connection dropped mid-write."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import Engine, event, func, select

from registry.db import make_engine, session_scope
from registry.errors import DatabaseUnavailable, RegistryError
from registry.metrics import MetricLogger, get_metrics, log_points, metric_keys
from registry.schema import SqlMetric
from registry_factories import make_run


def _count(engine: Engine, run_id: int) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count(SqlMetric.id)).where(SqlMetric.run_id == run_id)) or 0


def test_log_points_is_an_idempotent_upsert(engine: Engine) -> None:
    run = make_run(engine, "running")
    points = [("train/loss", step, 1.0 / (step + 1)) for step in range(50)]
    with session_scope(engine) as s:
        assert log_points(s, run.id, points) == 50
    with session_scope(engine) as s:  # a resumed run repeats steps 40..49 with new values
        log_points(s, run.id, [("train/loss", step, -1.0) for step in range(40, 50)])
        log_points(s, run.id, [("val/psnr", 10, 30.5), ("loss/D/r1", 10, float("nan"))])
    assert _count(engine, run.id) == 52
    with session_scope(engine) as s:
        losses = get_metrics(s, run.id, "train/loss")
        keys = metric_keys(s, run.id)
        r1 = get_metrics(s, run.id, "loss/D/r1")
    assert [m.step for m in losses] == list(range(50))
    assert [m.value for m in losses[40:]] == [-1.0] * 10 and losses[0].value == 1.0
    assert keys == ["loss/D/r1", "train/loss", "val/psnr"]
    assert r1[0].value is None  # NaN is stored as NULL on both backends


def test_logger_buffers_and_flushes_in_batches(engine: Engine) -> None:
    run = make_run(engine, "running")
    with MetricLogger(engine, run.id, flush_every=10, flush_seconds=3600) as logger:
        for step in range(9):
            logger.log("train/loss", step, float(step))
        assert logger.pending == 9 and _count(engine, run.id) == 0
        logger.log("train/loss", 9, 9.0)
        assert logger.pending == 0 and _count(engine, run.id) == 10
        logger.log_many(10, {"train/loss": 1.0, "train/lr": 2e-4})
        logger.log("train/loss", 10, 0.5)  # same (key, step) again: the last value wins
        assert logger.pending == 2
    assert _count(engine, run.id) == 12
    with session_scope(engine) as s:
        assert get_metrics(s, run.id, "train/loss")[-1].value == 0.5


@pytest.fixture
def drop_connection_once(engine: Engine, backend: str) -> Iterator[list[int]]:
    """Kill the connection under the first metrics INSERT, for real: MariaDB `KILL`s it from
    another session; SQLite has its file handle closed. Yields the number of kills done."""
    kills: list[int] = []

    def before_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if kills or not statement.startswith("INSERT INTO metrics"):
            return
        kills.append(1)
        dbapi_connection = conn.connection.dbapi_connection
        if backend == "sqlite":
            dbapi_connection.close()
            return
        admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        with admin.cursor() as admin_cursor:
            admin_cursor.execute(f"KILL {dbapi_connection.thread_id()}")
        admin.close()

    event.listen(engine, "before_cursor_execute", before_execute)
    yield kills
    event.remove(engine, "before_cursor_execute", before_execute)


def test_logger_survives_a_dropped_connection(engine: Engine, drop_connection_once: list[int]) -> None:
    run = make_run(engine, "running")
    logger = MetricLogger(engine, run.id, flush_every=10_000, first_backoff_s=0.01)
    for step in range(300):
        logger.log_many(step, {"train/loss": math.exp(-step / 100), "train/lr": 1e-4})
    assert logger.flush() == 600
    assert drop_connection_once == [1]
    assert logger.pending == 0 and _count(engine, run.id) == 600
    logger.log("train/loss", 0, 7.0)  # rewriting a point after the retry still never duplicates
    logger.close()
    assert _count(engine, run.id) == 600


def test_points_stay_buffered_while_the_database_is_down() -> None:
    unreachable = make_engine("mysql+pymysql://afi:s3cret@127.0.0.1:1/afi")
    logger = MetricLogger(unreachable, 1, flush_every=2, max_attempts=2, first_backoff_s=0.001)
    logger.log("train/loss", 0, 1.0)
    logger.log("train/loss", 1, 0.9)  # triggers a flush that fails: training must go on
    assert logger.pending == 2 and isinstance(logger.last_error, DatabaseUnavailable)
    with pytest.raises(DatabaseUnavailable, match="2 metric points .* stay buffered") as info:
        logger.flush()
    assert "s3cret" not in str(info.value) and logger.pending == 2


def test_non_transient_errors_are_raised_not_retried(engine: Engine) -> None:
    logger = MetricLogger(engine, 999_999, flush_every=1)  # no such run: a foreign key error
    with pytest.raises(RegistryError, match="database error"):
        logger.log("train/loss", 0, 1.0)

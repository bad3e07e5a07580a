"""Training metrics: batched, idempotent upserts on (run, key, step), and a buffered logger.

A resumed run that repeats steps overwrites its earlier points instead of duplicating them, so
the logger can retry a batch after a lost connection without knowing whether it half-landed.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

from sqlalchemy import Connection, Dialect, Engine, Insert, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from registry.clock import utcnow
from registry.db import database_error, mask_url
from registry.errors import DatabaseUnavailable, RegistryError
from registry.records import MetricRecord
from registry.schema import SqlMetric

MetricPoint = tuple[str, int, float]  # (key, step, value)
METRICS = SqlMetric.__table__


def upsert_statement(dialect_name: str) -> Insert:
    """INSERT of metric rows that overwrites value and time when (run_id, key, step) exists."""
    if dialect_name == "sqlite":
        stmt = sqlite_insert(METRICS)
        return stmt.on_conflict_do_update(
            index_elements=["run_id", "key", "step"],
            set_={"value": stmt.excluded.value, "logged_at": stmt.excluded.logged_at},
        )
    if dialect_name in ("mysql", "mariadb"):
        stmt = mysql_insert(METRICS)
        return stmt.on_duplicate_key_update(
            value=stmt.inserted.value, logged_at=stmt.inserted.logged_at
        )
    raise RegistryError(f"metric upserts are not implemented for {dialect_name}: use SQLite or MySQL")


def finite_or_none(value: float) -> float | None:
    # MySQL rejects NaN and infinities; a diverged loss is stored as NULL on both backends.
    number = float(value)
    return number if math.isfinite(number) else None


POINT_COLUMNS = ("run_id", "key", "step", "value", "logged_at")
_DRIVER_SQL: dict[tuple[str, str], tuple[str, bool]] = {}


def _driver_upsert(dialect: Dialect) -> tuple[str, bool]:
    """The upsert compiled once to the driver's SQL text; True when parameters are positional
    (then in POINT_COLUMNS order, the table's column order)."""
    cache_key = (dialect.name, dialect.paramstyle)
    if cache_key not in _DRIVER_SQL:
        compiled = upsert_statement(dialect.name).compile(dialect=dialect, column_keys=list(POINT_COLUMNS))
        positional = bool(compiled.positional)
        assert not positional or tuple(compiled.positiontup or ()) == POINT_COLUMNS
        _DRIVER_SQL[cache_key] = (compiled.string, positional)
    return _DRIVER_SQL[cache_key]


def write_points(connection: Connection, run_id: int, points: Sequence[MetricPoint]) -> int:
    """One executemany upsert of `points` for `run_id` on `connection`; returns the point count.

    Rows go to the driver as plain tuples: SQLAlchemy's per-row parameter processing would
    cost more than the database's own work (bench/registry.py). The one typed value, the
    timestamp, is shared by the batch and converted once.
    """
    if not points:
        return 0
    dialect = connection.dialect
    sql, positional = _driver_upsert(dialect)
    to_driver_time = METRICS.c.logged_at.type.dialect_impl(dialect).bind_processor(dialect)
    now = utcnow()
    logged_at = to_driver_time(now) if to_driver_time else now
    rows = [(run_id, key, int(step), finite_or_none(value), logged_at) for key, step, value in points]
    if positional:
        connection.exec_driver_sql(sql, rows)
    else:
        connection.exec_driver_sql(sql, [dict(zip(POINT_COLUMNS, row)) for row in rows])
    return len(rows)


def log_points(s: Session, run_id: int, points: Sequence[MetricPoint]) -> int:
    """Upsert `points` in the session's transaction as one batched statement."""
    return write_points(s.connection(), run_id, points)


def get_metrics(s: Session, run_id: int, key: str | None = None) -> list[MetricRecord]:
    query = select(SqlMetric).where(SqlMetric.run_id == run_id)
    if key is not None:
        query = query.where(SqlMetric.key == key)
    query = query.order_by(SqlMetric.key, SqlMetric.step)
    return [MetricRecord.from_row(row) for row in s.scalars(query)]


def metric_keys(s: Session, run_id: int) -> list[str]:
    query = select(SqlMetric.key).where(SqlMetric.run_id == run_id).distinct().order_by(SqlMetric.key)
    return list(s.scalars(query))


def is_transient(exc: DBAPIError) -> bool:
    """Deadlocks, lock timeouts, lost or killed connections, a restarting server: worth a retry."""
    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated


class MetricLogger:
    """Buffers points and writes them in batches, retrying transient failures.

    A batch is written when `flush_every` points are buffered or `flush_seconds` have passed.
    If the database stays unreachable through every retry, `log` keeps the points buffered
    (training goes on) and, while the outage lasts, tries once per `flush_seconds` without
    pausing the caller; `flush`/`close` raise DatabaseUnavailable instead, still keeping them,
    `close` only after `outage_s` more seconds of retries. Upserts make a retried batch that had
    half-landed harmless. Not thread-safe: one logger per thread.
    """

    def __init__(
        self,
        engine: Engine,
        run_id: int,
        flush_every: int = 500,
        flush_seconds: float = 5.0,
        max_attempts: int = 6,
        first_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        outage_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.max_attempts = max_attempts
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.outage_s = outage_s
        self.last_error: DatabaseUnavailable | None = None
        self._buffer: dict[tuple[str, int], float] = {}  # (key, step) -> value; last one wins
        self._next_flush = time.monotonic() + flush_seconds

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def log(self, key: str, step: int, value: float) -> None:
        self._buffer[(key, int(step))] = value
        # Inlined due-check: this runs once per point, on the training loop's hot path.
        if len(self._buffer) >= self.flush_every or time.monotonic() >= self._next_flush:
            self.try_flush()

    def log_many(self, step: int, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self._buffer[(key, int(step))] = value
        if len(self._buffer) >= self.flush_every or time.monotonic() >= self._next_flush:
            self.try_flush()

    def try_flush(self) -> None:
        """Flush if the database answers; else keep the points and remember why (`last_error`).
        During an outage this makes one attempt: the caller (a training step) is not held up."""
        points = self._points()
        if not points:
            return
        try:
            self._write_with_retries(points, 1 if self.last_error else self.max_attempts)
        except DatabaseUnavailable as exc:
            self.last_error = exc
            self._next_flush = time.monotonic() + self.flush_seconds  # then try again
            return
        self._written()

    def flush(self, patience_s: float = 0.0) -> int:
        """Write every buffered point; returns how many. Raises DatabaseUnavailable after the
        last retry, and not before `patience_s` seconds of them (the points stay buffered)."""
        points = self._points()
        if not points:
            return 0
        self._write_with_retries(points, self.max_attempts, patience_s)
        self._written()
        return len(points)

    def _points(self) -> list[MetricPoint]:
        return [(key, step, value) for (key, step), value in self._buffer.items()]

    def _written(self) -> None:
        self._buffer.clear()
        self._next_flush = time.monotonic() + self.flush_seconds
        self.last_error = None

    def _write_with_retries(self, points: list[MetricPoint], attempts: int, patience_s: float = 0.0) -> None:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.begin() as connection:
                    write_points(connection, self.run_id, points)
                return
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise database_error(exc, self.engine.url) from exc
                waited = time.monotonic() - started
                if attempt >= attempts and waited >= patience_s:
                    raise DatabaseUnavailable(
                        f"could not write {len(points)} metric points to "
                        f"{mask_url(self.engine.url)} after {attempt} attempts in {waited:.0f} s "
                        f"({' '.join(str(exc.orig).split())}): they stay buffered; "
                        "check the database and call flush() again"
                    ) from exc
                # Exponential backoff with jitter, so workers hit by the same outage spread out.
                delay = min(self.max_backoff_s, self.first_backoff_s * 2 ** (attempt - 1))
                time.sleep(delay * random.uniform(0.5, 1.5))

    def close(self) -> None:
        self.flush(self.outage_s)

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

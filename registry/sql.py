"""Read-only SQL for `afi sql`: one SELECT (or WITH ... SELECT), nothing else, under a time limit.

Two independent guards, so a trick that fools one still meets the other:
1. the text is parsed by sqlglot for the database's dialect (MySQL's `#` comments and backslash
   escapes included) and must be one query built only from the node types in ALLOWED_NODES: no
   INTO / OUTFILE / DUMPFILE, no locking clause, no variable, and no function sqlglot does not
   know (LOAD_FILE, SLEEP, BENCHMARK, GET_LOCK, ...) unless it is in PLAIN_FUNCTIONS. The server
   then runs the SQL regenerated from that tree without comments, so it runs exactly what was
   checked (MySQL's `/*! ... */` comments, which the server executes, are gone);
2. it runs on a connection that cannot write: SQLite opened read-only (`mode=ro`, plus
   `PRAGMA query_only`), MySQL / MariaDB in `START TRANSACTION READ ONLY` that is rolled back,
   as the account in AFI_SQL_URL when one is set, and always under a time limit (a progress
   handler on SQLite, `max_statement_time` on MariaDB, `MAX_EXECUTION_TIME` on MySQL).
"""

from __future__ import annotations

import inspect
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError

from registry.db import SQLITE_BEGIN, SQLITE_BUSY_TIMEOUT_S, database_error
from registry.errors import ReadOnlyViolation, RegistryError

HINT = 'afi sql only runs one read-only query, e.g. afi sql "SELECT * FROM leaderboard"'
DEFAULT_TIMEOUT_S = 30.0
QUERY_ROOTS = (exp.Select, exp.Union, exp.Except, exp.Intersect)
# The shape of a query: clauses, names, literals, operators. Anything else (INTO, Lock, Command,
# Insert, Set, Parameter, SessionParameter, PropertyEQ `:=`, ...) is refused.
STRUCTURE_NODES: frozenset[type[exp.Expression]] = frozenset({
    exp.Select, exp.Union, exp.Except, exp.Intersect, exp.With, exp.CTE, exp.Subquery,
    exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit,
    exp.Offset, exp.Distinct, exp.Column, exp.Identifier, exp.Table, exp.TableAlias, exp.Alias,
    exp.Star, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Tuple, exp.Case, exp.If,
    exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam, exp.Interval, exp.Var, exp.Window,
    exp.WindowSpec, exp.Not, exp.Neg, exp.BitwiseNot, exp.Exists, exp.In, exp.Between, exp.Is,
    exp.Like, exp.ILike, exp.Escape, exp.Dot, exp.Collate, exp.JSONPath, exp.JSONPathKey,
    exp.JSONPathRoot, exp.JSONPathSubscript, exp.JSONPathWildcard,
})
# Functions sqlglot models that read or write files or sequences (on other engines; refused
# here all the same).
REFUSED_FUNCTIONS: frozenset[type[exp.Expression]] = frozenset({
    exp.ReadCSV, exp.ReadParquet, exp.ToFile, exp.NextValueFor,
})
# Every operator except assignment, and every function sqlglot models except REFUSED_FUNCTIONS.
ALLOWED_NODES: frozenset[type[exp.Expression]] = STRUCTURE_NODES | frozenset(
    cls for cls in vars(exp).values()
    if inspect.isclass(cls)
    and (issubclass(cls, exp.Binary) or (issubclass(cls, exp.Func) and cls is not exp.Anonymous))
    and cls not in REFUSED_FUNCTIONS and cls is not exp.PropertyEQ
)
# Functions sqlglot does not model (they parse as Anonymous) that only compute a value.
PLAIN_FUNCTIONS = frozenset({
    "PRINTF", "TYPEOF", "TOTAL", "HEX", "IIF", "INSTR", "LIKELY", "FIELD", "ELT", "FORMAT",
})


def _one_line(error: ParseError) -> str:
    if not error.errors:
        return " ".join(str(error).split())
    first = error.errors[0]
    return f"{first.get('description')} near line {first.get('line')}, column {first.get('col')}"


def _refusal(node: exp.Expression) -> str | None:
    """Why `node` may not appear in a read-only query, or None when it may."""
    if isinstance(node, exp.Anonymous):
        name = str(node.name).upper()
        return None if name in PLAIN_FUNCTIONS else f"function {name}() is not allowed"
    if type(node) in ALLOWED_NODES:
        return None
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE) is not allowed"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}() is not allowed"
    return f"{node.key.upper()} is not allowed"


def check_readonly(sql: str, dialect: str) -> str:
    """The one query in `sql`, as the SQL to run; raises ReadOnlyViolation for anything else."""
    read = "sqlite" if dialect == "sqlite" else "mysql"
    try:
        trees = [tree for tree in sqlglot.parse(sql, read=read) if tree is not None]
    except SqlglotError as exc:
        detail = _one_line(exc) if isinstance(exc, ParseError) else " ".join(str(exc).split())
        raise ReadOnlyViolation(f"cannot parse the query ({detail}): {HINT}") from None
    if not trees:
        raise ReadOnlyViolation(f"empty query: {HINT}")
    if len(trees) > 1:
        raise ReadOnlyViolation(f"only one statement at a time (found {len(trees)}): {HINT}")
    tree = trees[0]
    if not isinstance(tree, QUERY_ROOTS):
        raise ReadOnlyViolation(f"{tree.key.upper()} is not a query: {HINT}")
    for node in tree.walk():
        reason = _refusal(node)
        if reason:
            raise ReadOnlyViolation(f"{reason} in a read-only query: {HINT}")
    try:
        return tree.sql(dialect=read, comments=False, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise ReadOnlyViolation(f"cannot run this query here ({exc}): {HINT}") from None


def _is_readonly_refusal(exc: DBAPIError) -> bool:
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code == 1792 or "readonly" in str(exc.orig).lower()  # MySQL ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION


def _is_timeout(exc: DBAPIError) -> bool:
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    # MariaDB max_statement_time (1969), MySQL MAX_EXECUTION_TIME (3024), SQLite interrupted.
    return code in (1969, 3024) or str(exc.orig) == "interrupted"


@contextmanager
def _readonly_connection(engine: Engine) -> Iterator[Connection]:
    """A connection on the engine's database that cannot write, thrown away afterwards."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        with engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
            try:
                yield connection
            finally:
                # Never hand a connection that may still be read-only back to the pool.
                connection.invalidate()
        return
    uri = f"{Path(database).resolve().as_uri()}?mode=ro"
    readonly = create_engine(
        "sqlite://", poolclass=NullPool,
        creator=lambda: sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S),
    )
    try:
        with readonly.connect() as connection:
            yield connection
    finally:
        readonly.dispose()


def _limit_time(connection: Connection, timeout_s: float) -> None:
    if connection.dialect.name == "sqlite":
        deadline = time.monotonic() + timeout_s
        raw = connection.connection.dbapi_connection
        # Called every 10k virtual-machine steps; a non-zero answer interrupts the statement.
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)  # type: ignore[union-attr]
        connection.exec_driver_sql("PRAGMA query_only=ON")
        return
    if getattr(connection.dialect, "is_mariadb", False):
        connection.exec_driver_sql(f"SET SESSION max_statement_time = {timeout_s:.3f}")
    else:
        connection.exec_driver_sql(f"SET SESSION MAX_EXECUTION_TIME = {max(1, round(timeout_s * 1000))}")
    connection.exec_driver_sql("START TRANSACTION READ ONLY")


def execute_readonly(
    engine: Engine, sql: str, limit: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on a connection that cannot write, stopped after `timeout_s`; no parsing here."""
    try:
        with _readonly_connection(engine) as connection:
            _limit_time(connection, timeout_s)
            return _fetch(connection, sql, limit)
    except DBAPIError as exc:
        if _is_readonly_refusal(exc):
            raise ReadOnlyViolation(f"the database refused a write: {HINT}") from None
        if _is_timeout(exc):
            raise RegistryError(
                f"the query was stopped after {timeout_s:g} s: narrow it, or give more time "
                "with --timeout SECONDS"
            ) from None
        raise database_error(exc, engine.url) from exc


def _number(cell: Any) -> Any:
    """MySQL returns SUM and AVG as DECIMAL, which JSON cannot print: give what SQLite gives,
    an int for a whole-number column (SUM of integers) and a float otherwise."""
    if not isinstance(cell, Decimal):
        return cell
    return int(cell) if cell.as_tuple().exponent >= 0 else float(cell)


def _fetch(connection: Connection, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    if connection.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")  # the driver formats even without parameters: keep % literal
    result = connection.exec_driver_sql(sql)
    if not result.returns_rows:
        raise ReadOnlyViolation(f"the statement returned no rows: {HINT}")
    columns = list(result.keys())
    rows = [tuple(_number(cell) for cell in row) for row in result.fetchmany(limit)] if limit else []
    connection.rollback()
    return columns, rows


def run_readonly(
    engine: Engine, sql: str, limit: int = 1000, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, at most `limit` rows) of one read-only query; writes raise ReadOnlyViolation."""
    if limit < 0:
        raise RegistryError(f"limit must be 0 or more, got {limit}")
    if not 0 < timeout_s <= 86_400:
        raise RegistryError(f"timeout must be between 0 and 86400 seconds, got {timeout_s:g}")
    query = check_readonly(sql, engine.dialect.name)
    return execute_readonly(engine, query, limit, timeout_s)

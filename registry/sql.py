"""Read-only SQL for `afi sql`: one SELECT (or WITH ... SELECT, or EXPLAIN of one), nothing else.

Two independent guards, so a trick that fools one still meets the other:
1. the text is scanned with comments and literals removed (the way the target database would
   read them) and must be exactly one statement that starts with SELECT / WITH / EXPLAIN and
   names no writing keyword;
2. it then runs in a read-only transaction (SQLite `PRAGMA query_only`, MySQL
   `START TRANSACTION READ ONLY`) that is always rolled back.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from registry.db import SQLITE_BEGIN, database_error
from registry.errors import ReadOnlyViolation, RegistryError

ALLOWED_FIRST_WORDS = ("SELECT", "WITH", "EXPLAIN")
# Words that write, lock, change session state or leave the transaction. A column that happens
# to share a name must be quoted ("set", `lock`), which the scanner then ignores.
FORBIDDEN_WORDS = frozenset(
    """INSERT UPDATE DELETE MERGE UPSERT DROP ALTER CREATE RENAME TRUNCATE ATTACH DETACH PRAGMA
    VACUUM REINDEX ANALYZE GRANT REVOKE LOCK UNLOCK CALL DO LOAD HANDLER SET INTO OUTFILE DUMPFILE
    BEGIN START COMMIT ROLLBACK SAVEPOINT RELEASE FLUSH KILL SHUTDOWN INSTALL UNINSTALL""".split()
)
HINT = 'afi sql only runs one read-only query, e.g. afi sql "SELECT * FROM leaderboard"'
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")


def _skip_quoted(sql: str, start: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the literal or quoted identifier opening at `start`."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash_escapes and char == "\\":
            i += 2
            continue
        if char == quote:
            if sql[i + 1 : i + 2] == quote:  # doubled quote: an escaped quote, not the end
                i += 2
                continue
            return i + 1
        i += 1
    raise ReadOnlyViolation(f"unterminated {quote} quote: {HINT}")


def strip_comments_and_literals(sql: str, dialect: str) -> str:
    """The statement as the database tokenises it, with every comment replaced by a space and
    every string / quoted identifier by an empty one. MySQL honours backslash escapes in
    strings and runs `/*! ... */` comments as code, so those are refused."""
    mysql = dialect in ("mysql", "mariadb")
    out: list[str] = []
    i = 0
    while i < len(sql):
        char, pair = sql[i], sql[i : i + 2]
        if pair == "/*":
            if mysql and sql[i + 2 : i + 3] in ("!", "M"):
                raise ReadOnlyViolation(f"executable /*! comments are not allowed: {HINT}")
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ReadOnlyViolation(f"unterminated /* comment: {HINT}")
            out.append(" ")
            i = end + 2
        elif pair == "--" and (i + 2 == len(sql) or sql[i + 2].isspace()):
            # Both databases read "-- " as a comment; "--x" MySQL reads as minus minus x, so it
            # stays in the text and gets checked.
            end = sql.find("\n", i)
            out.append(" ")
            i = len(sql) if end < 0 else end
        elif char in "'\"`":
            i = _skip_quoted(sql, i, char, backslash_escapes=mysql and char != "`")
            out.append(char * 2)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def check_readonly(sql: str, dialect: str) -> str:
    """Raise ReadOnlyViolation unless `sql` is one query; returns it without a trailing ';'."""
    bare = strip_comments_and_literals(sql, dialect).strip().rstrip(";").strip()
    if not bare:
        raise ReadOnlyViolation(f"empty query: {HINT}")
    if ";" in bare:
        raise ReadOnlyViolation(f"only one statement at a time (found ';' inside): {HINT}")
    words = [w.upper() for w in _WORD.findall(bare)]
    if not words or words[0] not in ALLOWED_FIRST_WORDS:
        first = words[0] if words else bare[:20]
        raise ReadOnlyViolation(f"{first} is not a query: {HINT}")
    for match in _WORD.finditer(bare):
        word = match.group().upper()
        # REPLACE(...) is a string function; REPLACE INTO is a write.
        follows = bare[match.end() :].lstrip()[:1]
        if word in FORBIDDEN_WORDS or (word == "REPLACE" and follows != "("):
            raise ReadOnlyViolation(f"{word} is not allowed in a read-only query: {HINT}")
    return sql.strip().rstrip(";")


def _is_readonly_refusal(exc: DBAPIError) -> bool:
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code == 1792 or "readonly" in str(exc.orig).lower()  # MySQL ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION


def execute_readonly(engine: Engine, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` inside a read-only transaction that is rolled back; no text checks here."""
    with engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        try:
            return _run_guarded(connection, sql, limit)
        except DBAPIError as exc:
            if _is_readonly_refusal(exc):
                raise ReadOnlyViolation(f"the database refused a write: {HINT}") from None
            raise database_error(exc, engine.url) from exc
        finally:
            # Never hand a connection that may still be read-only back to the pool.
            connection.invalidate()


def _number(cell: Any) -> Any:
    """MySQL returns SUM and AVG as DECIMAL, which JSON cannot print: give what SQLite gives,
    an int for a whole-number column (SUM of integers) and a float otherwise."""
    if not isinstance(cell, Decimal):
        return cell
    return int(cell) if cell.as_tuple().exponent >= 0 else float(cell)


def _run_guarded(connection: Connection, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only=ON")
    else:
        connection.exec_driver_sql("START TRANSACTION READ ONLY")
    if connection.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")  # the driver formats even without parameters: keep % literal
    result = connection.exec_driver_sql(sql)
    if not result.returns_rows:
        raise ReadOnlyViolation(f"the statement returned no rows: {HINT}")
    columns = list(result.keys())
    rows = [tuple(_number(cell) for cell in row) for row in result.fetchmany(limit)] if limit else []
    connection.rollback()
    return columns, rows


def run_readonly(engine: Engine, sql: str, limit: int = 1000) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, at most `limit` rows) of one read-only query; writes raise ReadOnlyViolation."""
    if limit < 0:
        raise RegistryError(f"limit must be 0 or more, got {limit}")
    query = check_readonly(sql, engine.dialect.name)
    return execute_readonly(engine, query, limit)

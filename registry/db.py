"""Engines, sessions and schema revisions: the one place that knows about drivers and Alembic.

Every query module takes a `Session` from `session_scope`, which commits or rolls back and turns
driver errors into `RegistryError`s whose messages never show a password; `in_transaction` also
runs a transaction again when MariaDB aborts it for a deadlock (what concurrent trainers write).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from registry.errors import DatabaseUnavailable, RegistryError, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Not alembic_version: Optuna studies share the registry database and Optuna reads that table.
VERSION_TABLE = "afi_alembic_version"
URL_HINT = "use sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE"
# URL query options that hold a secret (pymysql takes ?password= and ?passwd= as well).
SECRET_OPTION = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
SQLITE_BUSY_TIMEOUT_S = 30.0
MYSQL_POOL_RECYCLE_S = 1800  # below MariaDB's default wait_timeout (8 h) and typical proxy idle cuts
MYSQL_CONNECT_TIMEOUT_S = 10
# MySQL/MariaDB client and server codes that mean "cannot reach or log in", not "bad query":
# db access denied, access denied, unknown db, socket, can't connect, unknown host, gone away, lost.
MYSQL_UNREACHABLE_CODES = frozenset({1044, 1045, 1049, 2002, 2003, 2005, 2006, 2013})
# Deadlock, lock wait timeout: InnoDB rolled the transaction back and it can simply run again.
MYSQL_LOCK_CONFLICT_CODES = frozenset({1213, 1205})
CONFLICT_ATTEMPTS = 5
# Server shutting down, connection killed, can't connect (socket, TCP), gone away, lost, idle cut.
MYSQL_CONNECTION_LOST_CODES = frozenset({1053, 1927, 2002, 2003, 2006, 2013, 4031})
# Execution option: how long `in_transaction` keeps retrying a lost server (see outage_tolerant).
OUTAGE_OPTION = "afi_outage_s"
OUTAGE_MAX_BACKOFF_S = 5.0
MIGRATION_LOCK_TIMEOUT_S = 300
# Views the migrations create next to the tables (registry/migrations/versions).
REGISTRY_VIEWS = ("leaderboard", "run_summary")
# Execution option naming how an SQLite transaction starts. IMMEDIATE takes the write lock up
# front, so read-then-write transactions (claiming a run) serialise instead of failing with
# SQLITE_BUSY when two writers both try to upgrade their read locks.
SQLITE_BEGIN = "sqlite_begin"


def resolve_url(db: str | None = None) -> str:
    """The registry URL: `db` (from --db), else $AFI_DB_URL, else an SQLite file in $AFI_HOME."""
    if db:
        return db
    from_env = os.environ.get("AFI_DB_URL")
    if from_env:
        return from_env
    home = Path(os.environ.get("AFI_HOME") or Path.home() / ".afi").expanduser()
    # Not created here: read-only commands create nothing; the first upgrade makes the folder.
    return f"sqlite:///{home / 'registry.db'}"


def mask_url(url: str | URL) -> str:
    """The URL with every secret replaced by ***, safe to print and log: the password, query
    options that look like one (`?password=`), and a URL that does not parse is not shown at all
    beyond its scheme, since where its password starts is anyone's guess."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        scheme, sep, _rest = str(url).partition("://")
        shown = f"{scheme}://..." if sep and re.fullmatch(r"[A-Za-z0-9+._-]+", scheme) else "..."
        return f"{shown} (not shown: it does not parse)"
    if parsed.host and "@" in parsed.host:  # an unencoded @ in the password: the rest is secret too
        parsed = parsed.set(host=parsed.host.rpartition("@")[2], password="***")
    secret_options = {key: "***" for key in parsed.query if SECRET_OPTION.search(key)}
    masked = parsed.update_query_dict(secret_options).render_as_string(hide_password=True)
    return masked.replace("%2A%2A%2A", "***")


def make_engine(url: str | URL) -> Engine:
    """An engine tuned per backend; raises DatabaseUnavailable for a malformed or unknown URL."""
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed)
        if backend in ("mysql", "mariadb"):
            return _mysql_engine(_with_password_file(parsed))
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DatabaseUnavailable(f"no driver for {mask_url(parsed)} ({exc}): {URL_HINT}") from None
    raise DatabaseUnavailable(f"unsupported database {backend!r} in {mask_url(parsed)}: {URL_HINT}")


def _parse_url(url: str | URL) -> URL:
    """`url` parsed, or a one-line DatabaseUnavailable naming what is wrong (never the password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(f"bad database URL {mask_url(url)}: {URL_HINT}") from None
    except ValueError:  # sqlalchemy's int() of the port
        raise DatabaseUnavailable(
            f"bad database URL {mask_url(url)}: the port is not a number: {URL_HINT}"
        ) from None
    if parsed.host and "@" in parsed.host:
        raise DatabaseUnavailable(
            f"bad database URL {mask_url(url)}: the user name or password holds an '@': write it as "
            "%40, or keep the password in a file named by AFI_DB_PASSWORD_FILE"
        )
    return parsed


def _with_password_file(url: URL) -> URL:
    """`url` with the password read from $AFI_DB_PASSWORD_FILE when the URL has none, so that it
    appears neither in `ps` (as --db would put it) nor in the environment."""
    path = os.environ.get("AFI_DB_PASSWORD_FILE")
    if url.password is not None or not path:
        return url
    try:
        password = Path(path).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot read AFI_DB_PASSWORD_FILE {path}: {exc.strerror}: point it at a readable file "
            "holding the password"
        ) from None
    return url.set(password=password)


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    configure_sqlite(engine)
    return engine


def configure_sqlite(engine: Engine) -> None:
    """Foreign keys, WAL, and transactions that take the write lock when they begin (see
    SQLITE_BEGIN): also for engines made elsewhere on the registry's file, such as Optuna's."""
    on_disk = engine.url.database not in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # pysqlite starts transactions late and always DEFERRED; take that over (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if on_disk:
            # WAL lets readers (afi run list, afi sql) run while a trainer writes metrics.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _mysql_engine(url: URL) -> Engine:
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    connect_args = {}
    if url.get_driver_name() in ("pymysql", "mysqldb"):
        connect_args["connect_timeout"] = MYSQL_CONNECT_TIMEOUT_S
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=MYSQL_POOL_RECYCLE_S,
        # READ COMMITTED avoids InnoDB gap locks, the usual cause of deadlocks between workers
        # upserting metrics; state changes lock their row explicitly (SELECT ... FOR UPDATE).
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )


def database_error(exc: DBAPIError, url: URL | str) -> RegistryError:
    """A driver error as a one-line RegistryError naming the (masked) database."""
    original = exc.orig if exc.orig is not None else exc
    detail = " ".join(str(original).split())
    code = original.args[0] if original.args else None
    unreachable = code in MYSQL_UNREACHABLE_CODES or "unable to open database file" in detail
    if unreachable:
        return DatabaseUnavailable(
            f"cannot use database {mask_url(url)}: {detail}: "
            "check the URL, that the server is up, and the credentials"
        )
    return RegistryError(f"database error on {mask_url(url)}: {detail}")


@contextmanager
def translate_errors(url: URL | str) -> Iterator[None]:
    """Re-raise driver errors inside the block as RegistryError / DatabaseUnavailable."""
    try:
        yield
    except DBAPIError as exc:
        raise database_error(exc, url) from exc


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commits when the block ends, rolls back if it raises."""
    session = Session(engine, expire_on_commit=False)
    try:
        with translate_errors(engine.url):
            yield session
            session.commit()
    except BaseException:
        # The original error matters more than a failed rollback on a connection that is gone.
        with suppress(SQLAlchemyError):
            session.rollback()
        raise
    finally:
        session.close()


def in_transaction(
    engine: Engine, work: Callable[[Session], T], attempts: int = CONFLICT_ATTEMPTS,
    outage_s: float | None = None,
) -> T:
    """`work(session)` in one transaction, run again from the start (after a short random pause)
    when the server aborts it for a lock conflict. InnoDB deadlocks even at READ COMMITTED: an
    upsert's duplicate-key check takes next-key locks, and a child row's foreign-key check a shared
    lock on its parent. `work` must touch nothing but the session, so that running it twice is safe.

    A lost or refused connection (a server restart) is retried too, with backoff, for up to
    `outage_s` seconds (default: the engine's OUTAGE_OPTION, 0 unless `outage_tolerant` set it).
    The commit of an attempt whose connection dropped may have landed, so only idempotent work
    (heartbeats, upserts, guarded transitions) should run on an outage-tolerant engine."""
    patience = engine.get_execution_options().get(OUTAGE_OPTION, 0.0) if outage_s is None else outage_s
    started = time.monotonic()
    conflicts = outages = 0
    while True:
        try:
            with session_scope(engine) as session:
                return work(session)
        except RegistryError as exc:
            waited = time.monotonic() - started
            if _is_lock_conflict(exc.__cause__) and conflicts + 1 < attempts:
                conflicts += 1
                time.sleep(random.uniform(0.05, 0.2) * conflicts)
            elif is_connection_lost(exc.__cause__) and waited < patience:
                outages += 1
                time.sleep(min(outage_backoff_s(outages), patience - waited))
            else:
                raise


def outage_backoff_s(failures: int) -> float:
    """The pause after the n-th failure in a row: doubling from 0.2 s to 5 s, with jitter so that
    the workers an outage hit together do not all come back in the same instant."""
    return min(OUTAGE_MAX_BACKOFF_S, 0.2 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


def outage_tolerant(engine: Engine, outage_s: float) -> Engine:
    """`engine` (same pool) whose `in_transaction` calls ride out a lost server for `outage_s`."""
    return engine.execution_options(**{OUTAGE_OPTION: outage_s})


def is_connection_lost(exc: BaseException | None) -> bool:
    """A driver error meaning the server went away or is not accepting connections yet."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in MYSQL_CONNECTION_LOST_CODES


def _is_lock_conflict(exc: BaseException | None) -> bool:
    original = getattr(exc, "orig", None)
    args = getattr(original, "args", ())
    return bool(args) and args[0] in MYSQL_LOCK_CONFLICT_CODES


# Alembic is imported inside the functions that migrate: workers and trainers only read and write
# rows, and each spawned process saves its import time.
def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "registry/migrations has no revisions"
    return head


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(r.revision for r in ScriptDirectory.from_config(_alembic_config()).walk_revisions())


def _revision_of(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with translate_errors(engine.url), engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _leftovers(connection: Connection) -> list[str]:
    """Registry tables and views in a database that records no revision: what an upgrade
    stopped part-way left behind (MariaDB commits each CREATE TABLE on its own)."""
    from sqlalchemy import inspect

    from registry.schema import Base

    inspector = inspect(connection)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    ours = [*Base.metadata.tables, *REGISTRY_VIEWS]
    return [name for name in ours if name in present]


def _half_applied(url: URL | str, leftovers: list[str]) -> SchemaOutOfDate:
    return SchemaOutOfDate(
        f"registry {mask_url(url)} holds {len(leftovers)} registry tables or views "
        f"({', '.join(leftovers[:4])}{', ...' if len(leftovers) > 4 else ''}) but no schema "
        "revision: an earlier `afi db upgrade` stopped part-way; run `afi db upgrade --repair` "
        "to drop them and create the schema again"
    )


def _newer(url: URL | str, current: str) -> SchemaOutOfDate:
    return SchemaOutOfDate(
        f"registry {mask_url(url)} is at revision {current}, newer than this AFI knows "
        f"(head {head_revision()}): upgrade AFI (pip install -U afi) to use it"
    )


def check_schema(engine: Engine) -> None:
    """Raise SchemaOutOfDate unless the database is at the revision this code was written for."""
    current, head = _revision_of(engine), head_revision()
    if current == head:
        return
    if current is not None and current not in known_revisions():
        raise _newer(engine.url, current)
    if current is None:
        with translate_errors(engine.url), engine.connect() as connection:
            leftovers = _leftovers(connection)
        if leftovers:
            raise _half_applied(engine.url, leftovers)
    state = "empty" if current is None else f"at revision {current}"
    raise SchemaOutOfDate(
        f"registry {mask_url(engine.url)} is {state} but this AFI needs revision {head}: "
        "run `afi db upgrade`"
    )


def schema_status(url: str) -> tuple[str | None, str, str]:
    """(revision, head, what to do) without creating anything: a missing SQLite file is empty."""
    head = head_revision()
    if _missing_sqlite_file(url):
        return None, head, "empty: run `afi db upgrade` (or any command) to create it"
    engine = make_engine(url)
    try:
        check_schema(engine)
    except SchemaOutOfDate as exc:
        return _revision_of(engine), head, str(exc).rpartition(": ")[2]
    finally:
        engine.dispose()
    return head, head, "up to date"


def current_revision(url: str) -> tuple[str | None, str]:
    """(revision the database is at, None when empty; the head revision of this code).
    Creates nothing: a SQLite file that does not exist is an empty registry."""
    if _missing_sqlite_file(url):
        return None, head_revision()
    engine = make_engine(url)
    try:
        return _revision_of(engine), head_revision()
    finally:
        engine.dispose()


def _missing_sqlite_file(url: str) -> bool:
    parsed = _parse_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return False
    return not Path(database).exists()


def upgrade(url: str, revision: str = "head", repair: bool = False) -> None:
    """Create or upgrade the schema to `revision`; safe to run again, and from several processes
    at once. `repair`: first drop the empty registry tables an interrupted upgrade left."""
    from alembic import command

    _migrate(url, command.upgrade, revision, repair)


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the schema to `revision` ("base" drops every registry table and view)."""
    from alembic import command

    _migrate(url, command.downgrade, revision)


def _check_target(revision: str) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    try:
        ScriptDirectory.from_config(_alembic_config()).get_revisions(revision)
    except CommandError:
        known = ", ".join(sorted(known_revisions()))
        raise RegistryError(
            f"unknown revision {revision!r}: use head, base, or one of {known} (see `afi db current`)"
        ) from None


def _migrate(
    url: str, action: Callable[[Config, str], None], revision: str, repair: bool = False
) -> None:
    from alembic.util.exc import CommandError

    _check_target(revision)
    _make_sqlite_folder(url)
    engine = make_engine(url)
    try:
        with translate_errors(engine.url), engine.begin() as connection, _migration_lock(connection):
            _prepare(connection, engine.url, repair)
            action(_alembic_config(connection), revision)
    except CommandError as exc:
        raise RegistryError(f"migration to {revision!r} failed: {exc}: see `afi db current`") from None
    finally:
        engine.dispose()


def _prepare(connection: Connection, url: URL, repair: bool) -> None:
    """Under the migration lock: refuse a schema newer than this code, and a half-applied one
    unless `repair`, which drops its leftovers when they hold no rows."""
    from alembic.runtime.migration import MigrationContext

    current = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    if current is not None:
        if current not in known_revisions():
            raise _newer(url, current)
        return
    leftovers = _leftovers(connection)
    if not leftovers:
        return
    if not repair:
        raise _half_applied(url, leftovers)
    from sqlalchemy import inspect

    from registry.schema import Base

    views = set(inspect(connection).get_view_names())
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name in leftovers]
    filled = [t.name for t in tables if connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t.name}").scalar()]
    if filled:
        raise SchemaOutOfDate(
            f"registry {mask_url(url)}: {', '.join(filled)} hold rows, so --repair leaves them: "
            "back them up, drop the registry tables by hand, then run `afi db upgrade`"
        )
    for name in REGISTRY_VIEWS:
        if name in views:
            connection.exec_driver_sql(f"DROP VIEW {name}")
    for table in tables:
        table.drop(connection)


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """One migration at a time per database. MariaDB/MySQL: a named lock (GET_LOCK), since DDL
    commits on its own there. SQLite: the migration's transaction began IMMEDIATE (see
    SQLITE_BEGIN), which already holds the file's write lock until it commits."""
    if connection.dialect.name == "sqlite":
        yield
        return
    name = f"afi_migrate_{connection.engine.url.database}"[:64]
    got = connection.exec_driver_sql(
        f"SELECT GET_LOCK(%s, {MIGRATION_LOCK_TIMEOUT_S})", (name,)
    ).scalar()
    if got != 1:
        raise RegistryError(
            f"another process has been migrating {mask_url(connection.engine.url)} for "
            f"{MIGRATION_LOCK_TIMEOUT_S} s: wait for it to finish, then run `afi db upgrade` again"
        )
    try:
        yield
    finally:
        with suppress(SQLAlchemyError):
            connection.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))


def _make_sqlite_folder(url: str) -> None:
    """Creating an SQLite registry: its folder first, with a one-line error if it cannot be."""
    parsed = _parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    folder = Path(parsed.database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DatabaseUnavailable(
            f"cannot create the registry folder {folder}: a file is in the way (check AFI_HOME "
            "or the sqlite:/// path)"
        ) from None
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create the registry folder {folder}: {exc.strerror}") from None

"""Alembic environment for the registry.

`registry.db.upgrade()` hands over an open connection (config.attributes["connection"]); the
`alembic` command line (alembic.ini at the repo root) connects to $AFI_DB_URL / $AFI_HOME instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from registry.db import VERSION_TABLE, make_engine, resolve_url
from registry.schema import Base

config = context.config


def registry_table(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate compares only the registry's tables: Optuna keeps its studies in the same
    database (its tables start with `studies`, `trials`, ...), and they are not ours to migrate."""
    return type_ != "table" or name in Base.metadata.tables


def run_on(connection: Connection) -> None:
    # Batch mode lets later migrations alter SQLite tables (copy-and-move) like MySQL ones.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        version_table=VERSION_TABLE,
        include_name=registry_table,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    url = resolve_url(config.get_main_option("sqlalchemy.url") or None)
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=Base.metadata,
            literal_binds=True,
            render_as_batch=True,
            version_table=VERSION_TABLE,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = make_engine(url)
    try:
        with engine.begin() as own_connection:
            run_on(own_connection)
    finally:
        engine.dispose()


run_migrations()

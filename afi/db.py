"""Opening the registry from the toolkit side: URL resolution, first-use set-up, schema check."""

from __future__ import annotations

from typing import Any

from registry import db as registry_db


def open_registry(db: str | None = None) -> Any:
    """An engine on the registry at `db` (or AFI_DB_URL, or the SQLite default).

    An empty database is brought to the current schema on first use, so a new user needs no set-up
    step; a database at an older schema is refused with the command that upgrades it, because
    migrating someone's shared registry must be a deliberate act.
    """
    url = registry_db.resolve_url(db)
    current, _head = registry_db.current_revision(url)
    if current is None:
        registry_db.upgrade(url)
    engine = registry_db.make_engine(url)
    registry_db.check_schema(engine)
    return engine

"""Shared fixtures: every registry test runs against SQLite and MariaDB.

- `db_url`: an empty database (SQLite file in tmp_path, or a fresh MariaDB database dropped after
  the test). The MariaDB leg is skipped when the server is unreachable, except in CI (CI=true),
  where that is a failure.
- `engine`: `db_url` upgraded to head by Alembic, as an engine from `registry.db.make_engine`.
- `afi_home`: AFI_HOME pointed at tmp_path, AFI_DB_URL cleared.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import Engine, make_url

from registry.db import make_engine, upgrade

MARIADB_SERVER = os.environ.get("AFI_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def _mariadb_admin() -> pymysql.Connection:
    url = make_url(MARIADB_SERVER)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=3,
        autocommit=True,
    )


@lru_cache(maxsize=1)
def _mariadb_problem() -> str | None:
    """Why MariaDB cannot be used (None when it can); asked once per test session."""
    try:
        _mariadb_admin().close()
    except pymysql.MySQLError as exc:
        return f"MariaDB at {MARIADB_SERVER} unreachable: {exc}"
    return None


def require_mariadb() -> None:
    problem = _mariadb_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{problem} (the MariaDB leg is mandatory in CI)")
    pytest.skip(problem)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "mariadb":
        require_mariadb()
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    name = f"afi_t_{uuid.uuid4().hex[:12]}"
    admin = _mariadb_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        yield f"{MARIADB_SERVER}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture(scope="session")
def _sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file upgraded once per session; tests get a copy (cheaper than migrating)."""
    path = tmp_path_factory.mktemp("template") / "registry.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(backend: str, db_url: str, _sqlite_at_head: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        shutil.copyfile(_sqlite_at_head, make_url(db_url).database)
    else:
        upgrade(db_url)
    registry_engine = make_engine(db_url)
    yield registry_engine
    registry_engine.dispose()


@pytest.fixture
def afi_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "afi_home"
    monkeypatch.setenv("AFI_HOME", str(home))
    monkeypatch.delenv("AFI_DB_URL", raising=False)
    return home

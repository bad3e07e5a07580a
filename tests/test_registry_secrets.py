"""Passwords never shown: in the URL, its query string, a URL that does not parse; and kept out of
`ps` by AFI_DB_PASSWORD_FILE. Against a real MariaDB where a server is involved."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from afi.cli.main import app
from afi.launch.sky import task_yaml
from conftest import MARIADB_SERVER, require_mariadb
from registry.db import make_engine, mask_url
from registry.errors import DatabaseUnavailable

SECRET = "S3cret"
runner = CliRunner()


@pytest.mark.parametrize(
    "url",
    [
        f"mysql+pymysql://u:{SECRET}@db.example/afi",
        f"mysql+pymysql://u@db.example/afi?password={SECRET}",
        f"mysql+pymysql://u@db.example/afi?charset=utf8mb4&passwd={SECRET}",
        f"u:{SECRET}@garbage",
        f"mysql+pymysql://u:p@{SECRET}@db.example/afi",  # an unencoded @ inside the password
        f"mysql+pymysql://u:{SECRET}@db.example:notaport/afi",
    ],
)
def test_no_form_of_url_shows_its_password(url: str) -> None:
    assert SECRET not in mask_url(url)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"u:{SECRET}@garbage", "does not parse"),
        (f"mysql+pymysql://u:p@{SECRET}@db.example/afi", "%40"),
        (f"mysql+pymysql://u:{SECRET}@db.example:notaport/afi", "port is not a number"),
    ],
)
def test_bad_urls_are_one_line_and_hide_the_password(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        make_engine(url)
    assert fragment in str(info.value) and SECRET not in str(info.value) and "\n" not in str(info.value)


def test_query_string_password_is_masked_in_cli_output_and_sky_yaml(afi_home) -> None:
    url = f"mysql+pymysql://afi@127.0.0.1:1/afi?password={SECRET}"  # nothing listens on port 1
    result = runner.invoke(app, ["--db", url, "db", "current", "--json"])
    assert result.exit_code == 1 and SECRET not in result.output and "password=***" in result.output
    shown = task_yaml({"name": "afi-run", "run": "true"}, url)
    assert SECRET not in shown and "password=***" in shown


@pytest.mark.mariadb
def test_access_denied_hides_a_query_string_password(afi_home) -> None:
    require_mariadb()
    url = f"{MARIADB_SERVER}/afi?password={SECRET}".replace("//root@", "//afi_nobody@")
    result = runner.invoke(app, ["--db", url, "run", "list"])
    assert result.exit_code == 1 and "denied" in result.output, result.output
    assert SECRET not in result.output


@pytest.mark.mariadb
def test_password_file_keeps_the_password_out_of_the_url(
    engine, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "mariadb":
        pytest.skip("a password is a server account's")
    user = f"afi_pw_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{SECRET}'")
        connection.exec_driver_sql(f"GRANT SELECT ON `{engine.url.database}`.* TO '{user}'@'%%'")
    url = engine.url.set(username=user, password=None, host="127.0.0.1").render_as_string()
    try:
        (tmp_path / "pw").write_text(f"{SECRET}\n")
        monkeypatch.setenv("AFI_DB_PASSWORD_FILE", str(tmp_path / "pw"))
        with make_engine(url).connect() as connection:
            assert connection.execute(text("SELECT CURRENT_USER()")).scalar().startswith(user)
        monkeypatch.setenv("AFI_DB_PASSWORD_FILE", str(tmp_path / "missing"))
        with pytest.raises(DatabaseUnavailable, match="cannot read AFI_DB_PASSWORD_FILE"):
            make_engine(url)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP USER '{user}'@'%%'")


def test_db_help_warns_about_ps() -> None:
    help_text = " ".join(runner.invoke(app, ["--help"]).output.split())
    assert "`ps`" in help_text and "AFI_DB_PASSWORD_FILE" in help_text

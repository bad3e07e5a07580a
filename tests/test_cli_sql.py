"""`afi sql` from the command line on SQLite and MariaDB: README's examples, tricks, --timeout."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from afi.cli.main import app
from test_registry_sql import ENDLESS

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_queries() -> list[str]:
    """The query of every `afi sql '...'` / `afi sql "..."` in README.md."""
    found = re.findall(r"afi sql ((?:\"[^\"]*\")|(?:'[^']*'))", README.read_text(), flags=re.S)
    return [shlex.split(quoted)[0] for quoted in found]


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_readme_examples_run(db_url: str, afi_home) -> None:
    queries = readme_queries()
    assert len(queries) >= 3 and any("metrics" in q for q in queries)
    for query in queries:
        result = runner.invoke(app, ["--db", db_url, "sql", query, "--json"])
        assert result.exit_code == 0, (query, result.output)
        assert isinstance(json.loads(result.stdout), list)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT name FROM runs # '\nINTO OUTFILE '/tmp/afi-x.txt' -- '", "cannot parse"),
        ("SELECT LOAD_FILE('/etc/passwd')", "LOAD_FILE"),
        ("SELECT SLEEP(20), name FROM runs LOCK IN SHARE MODE", "SLEEP"),
        ("SELECT name FROM runs LOCK IN SHARE MODE", "locking clause"),
    ],
)
def test_tricks_are_one_line_refusals(db_url: str, afi_home, query: str, fragment: str) -> None:
    assert fragment in one_error_line(runner.invoke(app, ["--db", db_url, "sql", query]))


def test_timeout_is_one_line(db_url: str, afi_home) -> None:
    line = one_error_line(runner.invoke(app, ["--db", db_url, "sql", ENDLESS, "--timeout", "0.5"]))
    assert "stopped after 0.5 s" in line and "--timeout" in line


def test_afi_sql_url_is_used(db_url: str, afi_home, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["--db", db_url, "db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("AFI_SQL_URL", "mysql+pymysql://nobody:pw@127.0.0.1:1/afi")
    line = one_error_line(runner.invoke(app, ["--db", db_url, "sql", "SELECT 1"]))
    assert "127.0.0.1:1" in line and "pw@" not in line

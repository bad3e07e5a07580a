"""`afi sql`: read-only SQL over the registry (tables and the leaderboard / run_summary views)."""

from __future__ import annotations

from typing import Annotated

import typer

from afi.cli.app import JsonOption, command, print_json, print_table, state
from registry.sql import run_readonly


@command
def sql(
    query: Annotated[str, typer.Argument(help="One SELECT (or WITH ... SELECT) statement.")],
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Run a read-only query, e.g. afi sql "SELECT * FROM leaderboard ORDER BY psnr DESC". Writes are refused."""
    columns, rows = run_readonly(state.engine(), query, limit=limit)
    if as_json:
        print_json([dict(zip(columns, row)) for row in rows])
        return
    print_table(columns, rows, title=f"{len(rows)} row(s)")

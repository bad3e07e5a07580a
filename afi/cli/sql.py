"""`afi sql`: read-only SQL over the registry (tables and the leaderboard / run_summary views)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from afi.cli.app import JsonOption, command, print_json, print_table, state
from registry.db import make_engine
from registry.sql import DEFAULT_TIMEOUT_S, run_readonly


@command
def sql(
    query: Annotated[str, typer.Argument(help="One SELECT (or WITH ... SELECT) statement.")],
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 1000,
    timeout: Annotated[
        float, typer.Option(help="Stop the query after this many seconds.")
    ] = DEFAULT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Run one read-only query, e.g. afi sql "SELECT * FROM leaderboard ORDER BY psnr DESC".

    Anything but one SELECT is refused (no INTO, locking clause, file, lock or sleep function),
    and it runs on a connection that cannot write, for at most --timeout seconds. Set
    AFI_SQL_URL to run it as a SELECT-only database account instead of the registry's.
    """
    readonly_url = os.environ.get("AFI_SQL_URL")
    engine = make_engine(readonly_url) if readonly_url else state.engine()
    try:
        columns, rows = run_readonly(engine, query, limit=limit, timeout_s=timeout)
    finally:
        if readonly_url:
            engine.dispose()
    if as_json:
        print_json([dict(zip(columns, row)) for row in rows])
        return
    print_table(columns, rows, title=f"{len(rows)} row(s)")

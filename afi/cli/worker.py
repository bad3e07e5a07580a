"""`afi worker`: train queued runs from the registry, on this machine."""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from afi.cli.app import JsonOption, command, console, print_json, print_table, state
from afi.errors import UsageError
from afi.launch.worker import Worker, WorkerOptions
from registry.db import resolve_url


@command
def worker(
    max_parallel: Annotated[int, typer.Option(help="Runs trained at once, each in its own process.")] = 1,
    once: Annotated[bool, typer.Option("--once", help="Claim up to --max-parallel runs, train them, exit.")] = False,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Exit when no run is queued or running any more.")
    ] = False,
    stale_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat before a running run is requeued.")
    ] = 120.0,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the queue and heartbeats.")] = 5.0,
    threads: Annotated[
        int | None,
        typer.Option(help="CPU threads per run (default: the machine's cores shared among --max-parallel)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Claim queued runs and train them; stale runs of dead workers go back to the queue."""
    if once and until_empty:
        raise UsageError("--once and --until-empty exclude each other: pick one")
    mode = "once" if once else "until-empty" if until_empty else "forever"
    state.engine()  # the schema check, before any claim
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    runner = Worker(
        resolve_url(state.db),
        WorkerOptions(
            max_parallel=max_parallel, mode=mode, stale_after_s=stale_after, poll_s=poll, threads=threads
        ),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    report = runner.run()
    if as_json:
        print_json(
            {"worker_id": report.worker_id, "runs": [vars(o) for o in report.outcomes],
             "requeued": report.requeued}
        )
        return
    print_table(
        ["run", "name", "status", "exit code"],
        ([o.run_id, o.name, o.status, o.exit_code] for o in report.outcomes),
        title=f"worker {report.worker_id}: {len(report.outcomes)} run(s)",
    )
    if report.requeued:
        console.print(f"requeued stale runs: {', '.join(map(str, report.requeued))}")

"""`afi tensorboard`: serve the runs' TensorBoard logs (AFI_HOME/tb)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from afi.cli.app import command, err_console, state
from afi.errors import UsageError
from afi.launch import runs as run_service
from afi.paths import tensorboard_dir


@command
def tensorboard(
    run: Annotated[Optional[str], typer.Option(help="Only this run (id or name).")] = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 6006,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")
    ] = "localhost",
) -> None:
    """Start TensorBoard on the training logs of every run, or of one; Ctrl-C stops it."""
    log_dir = tensorboard_dir()
    if run is not None:
        log_dir = log_dir / str(run_service.get_run(state.engine(), run).id)
    if not log_dir.is_dir():
        raise UsageError(
            f"no TensorBoard logs at {log_dir}: train a run first with `afi run start RUN`"
        )
    err_console.print(
        f"TensorBoard on http://{host}:{port} for {log_dir} (Ctrl-C stops it)", highlight=False
    )
    # This process becomes TensorBoard: Ctrl-C and SIGTERM reach it and leave nothing behind.
    arguments = ["--logdir", str(log_dir), "--port", str(port), "--host", host]
    os.execv(sys.executable, [sys.executable, "-m", "tensorboard.main", *arguments])

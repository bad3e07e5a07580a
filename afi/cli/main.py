"""`afi`: the command-line entry point. One Typer module per command group, composed here."""

from __future__ import annotations

from typing import Annotated, Optional

import click
import typer

from afi import __version__
from afi.cli import dataset, db, leaderboard, run, sql, variant
from afi.cli import budget, experiment, tune, worker
from afi.cli import tensorboard
from afi.cli import eval as eval_cli, interpolate
from afi.cli import compare, quickstart, report, weights
from afi.cli.app import closed_pipe, conventional_metavars, new_app, quiet_third_parties, state

app = new_app(
    "AFI: frame interpolation research for 2D animation. Data -> runs -> leaderboard -> video, "
    "all recorded in a SQL registry (SQLite by default, MySQL/MariaDB via AFI_DB_URL)."
)
app.add_typer(db.app, name="db")
app.add_typer(run.app, name="run")
app.add_typer(dataset.app, name="dataset")
app.add_typer(variant.app, name="variant")
app.command("leaderboard")(leaderboard.leaderboard)
app.command("sql")(sql.sql)
app.command("tensorboard")(tensorboard.tensorboard)
app.add_typer(experiment.app, name="experiment")
app.command("worker")(worker.worker)
app.command("budget")(budget.budget)
app.add_typer(tune.app, name="tune")
app.command("interpolate")(interpolate.interpolate)
app.command("eval")(eval_cli.evaluate)
app.add_typer(weights.app, name="weights")
app.command("report")(report.report)
app.command("quickstart")(quickstart.quickstart)
run.app.command("compare")(compare.compare)
# `afi runs compare A B` reads naturally too: the same group under its plural, kept out of --help.
app.add_typer(run.app, name="runs", hidden=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"afi {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    db_url: Annotated[
        Optional[str],
        typer.Option(
            "--db",
            help="Registry URL (sqlite:///path.db or mysql+pymysql://user@host/db). "
            "Default: $AFI_DB_URL, else $AFI_HOME/registry.db. A password given here shows in `ps` "
            "to every user of the machine: put it in $AFI_DB_URL, in a file named by "
            "$AFI_DB_PASSWORD_FILE, or in a MySQL option file (?read_default_file=~/.my.cnf).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks on errors, and third-party warnings (torch, Optuna).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state.reset(db_url, debug)
    if not debug:
        quiet_third_parties()


def cli() -> click.Command:
    """The click command `afi` runs: the Typer app, with conventional metavars."""
    return conventional_metavars(typer.main.get_command(app))


def run() -> None:
    try:
        cli()(prog_name="afi")
    except BrokenPipeError:  # outside a command: `afi --help | head -1`
        raise SystemExit(closed_pipe().exit_code) from None

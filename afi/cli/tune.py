"""`afi tune SPEC`: an Optuna study in the registry's database; `afi tune show STUDY`: its best."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from afi.cli.app import JsonOption, command, console, print_fields, print_json, print_table, state
from afi.launch.spec import load_spec, parse_set
from registry.db import resolve_url


class TuneGroup(TyperGroup):
    """`afi tune SPEC ...` means `afi tune run SPEC ...`: the study is the common case."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=TuneGroup,
    help="Optuna studies: `afi tune SPEC --trials N` runs trials (share a study by running it in "
    "several processes or machines); `afi tune show STUDY` lists the best. The study lives in the "
    "registry's database: `optuna-dashboard $AFI_DB_URL` shows it too.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command("run")
@command
def run_study(
    spec: Annotated[Path, typer.Argument(help="Spec with a [search] table, e.g. experiments/tune-isnet.toml.")],
    trials: Annotated[
        Optional[int], typer.Option(
            help="Trials this process runs (default: the spec's [tune] trials, which default to "
            "20; the study stops at those, counted across every process sharing it).")
    ] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name (default: the spec's experiment name).")] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a base field: --set stage.steps=4 (repeatable).")
    ] = [],
    heartbeat: Annotated[int, typer.Option(help="Seconds between trial heartbeats.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Run trials of SPEC's study; each trial trains one AFI run here."""
    from afi.launch.tune import TuneOptions, tune

    experiment_spec = load_spec(spec, parse_set(set_))
    outcomes = tune(
        state.engine(),
        resolve_url(state.db),
        experiment_spec,
        TuneOptions(study=study, trials=trials, heartbeat_s=heartbeat),
    )
    if as_json:
        print_json([vars(outcome) for outcome in outcomes])
        return
    print_table(
        ["trial", "state", "value", "run"],
        ([o.number, o.state, o.value, o.run_id] for o in outcomes),
        title=f"study {study or experiment_spec.name}: {len(outcomes)} trial(s) here",
    )


@app.command()
@command
def show(
    study: Annotated[str, typer.Argument(help="Study name.")],
    top: Annotated[int, typer.Option(help="How many of the best trials to list.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """A study's trials by state and its best trials, each with its AFI run."""
    from afi.launch.tune import study_summary

    state.engine()  # the schema check
    summary = study_summary(resolve_url(state.db), study, top)
    if as_json:
        print_json(summary)
        return
    print_fields(
        [("direction", summary["direction"]), ("trials", summary["trials"]), ("by state", summary["by_state"])],
        title=f"study {summary['study']}",
    )
    if not summary["best"]:
        console.print("no finished trial yet")
        return
    print_table(
        ["trial", "value", "run", "params", "retry of"],
        (
            [t["number"], t["value"], t["run_id"],
             " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items()),
             t["retry_of"]]
            for t in summary["best"]
        ),
        title="best trials",
    )

"""`afi budget`: what runs have cost, what queued runs will cost, and what is left of the cap."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from afi.cli.app import JsonOption, command, console, print_fields, print_json, print_table, state
from afi.launch.budget import budget_report
from afi.launch.pricing import load_price_table


@command
def budget(
    cap: Annotated[
        Optional[float], typer.Option(help="Cap in USD (default: [budget] cap_usd in prices.toml, 200).")
    ] = None,
    prices: Annotated[bool, typer.Option("--prices", help="Also list the prices in force.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Spend so far, committed (estimated cost of runs not finished) and remaining under the cap."""
    table = load_price_table()
    report = budget_report(state.engine(), table, cap)
    price_rows = [table.lookup(name) for name in table.names()] if prices else []
    if as_json:
        data = report.to_dict()
        if prices:
            data["prices"] = [vars(entry) for entry in price_rows]
        print_json(data)
        return
    print_fields(
        [
            ("cap", f"${report.cap_usd:,.2f}"),
            ("spent", f"${report.spent_usd:,.2f}"),
            ("committed", f"${report.committed_usd:,.2f}"),
            ("remaining", f"${report.remaining_usd:,.2f}"),
            ("GPU-hours", round(report.gpu_hours, 3)),
            ("runs", report.runs_counted),
        ],
        title="budget",
    )
    if report.by_accelerator:
        print_table(["accelerator", "spent USD"], report.by_accelerator.items(), title="spent by accelerator")
    if prices:
        print_table(
            ["accelerator", "on-demand $/h", "spot $/h", "Mpx/s", "source"],
            ([p.name, p.on_demand, p.spot, p.mpix_per_s, p.source] for p in price_rows),
            title=f"prices (edit {table.user_path})",
        )
    if report.remaining_usd < 0:
        console.print("[bold red]over the cap[/bold red]: new launches are refused without --force")

"""`afi variant`: the model variants an ablation chooses from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afi import variants as variant_service
from afi.cli.app import JsonOption, command, console, new_app, print_fields, print_json, print_table, state
from afi.config import parse_resolution

app = new_app("Model variants: list, show (params, MACs), add from a TOML/JSON file.")


@app.command("list")
@command
def list_variants(as_json: JsonOption = False) -> None:
    """List built-in and registered variants."""
    rows = variant_service.list_variants(state.engine())
    if as_json:
        print_json(rows)
        return
    print_table(
        ["name", "kind", "arch", "flow", "disc", "losses", "builtin", "registered", "params"],
        (
            [r["name"], r["kind"], r["arch"], r["flow"], r["disc"],
             ", ".join(f"{k}={v:g}" for k, v in r["losses"].items()), r["builtin"],
             r["registered"], r["params"]]
            for r in rows
        ),
        title=f"{len(rows)} variant(s)",
    )


@app.command()
@command
def show(
    name: Annotated[str, typer.Argument(help="Variant name (see `afi variant list`).")],
    res: Annotated[str, typer.Option(help="Resolution for the MAC count.")] = "256",
    as_json: JsonOption = False,
) -> None:
    """Show a variant's config, parameter count and MACs at a resolution."""
    width, height = parse_resolution(res)
    details = variant_service.show_variant(state.engine(), name, width, height)
    if as_json:
        print_json(details)
        return
    print_fields(details.items(), title=f"variant {name}")


@app.command()
@command
def add(
    path: Annotated[Path, typer.Argument(help="TOML or JSON file with variant settings.")],
    as_json: JsonOption = False,
) -> None:
    """Register a variant from a file (see docs/variants.md for the settings)."""
    record = variant_service.add_variant(state.engine(), path)
    if as_json:
        print_json(record.to_dict())
        return
    console.print(f"variant {record.name} registered ({record.param_count:,} parameters)")

"""`afi db`: create, upgrade and inspect the registry schema."""

from __future__ import annotations

from typing import Annotated

import typer

from afi.cli.app import JsonOption, command, console, new_app, print_json, state
from afi.errors import UsageError
from registry import db as registry_db

app = new_app("Registry schema: upgrade, downgrade, current revision.")


@app.command()
@command
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: head, or a revision id.")] = "head",
    repair: Annotated[bool, typer.Option(
        "--repair", help="First drop the empty registry tables an interrupted upgrade left behind.",
    )] = False,
) -> None:
    """Create or upgrade the registry schema (safe to run again, and from several processes)."""
    url = registry_db.resolve_url(state.db)
    registry_db.upgrade(url, revision, repair=repair)
    current, head = registry_db.current_revision(url)
    console.print(f"registry {registry_db.mask_url(url)} at revision {current} (head {head})")


@app.command()
@command
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' drops everything).")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm; downgrading can drop data.")] = False,
) -> None:
    """Downgrade the registry schema to REVISION."""
    if not yes:
        raise UsageError("downgrading can drop registry data: add --yes to confirm")
    url = registry_db.resolve_url(state.db)
    registry_db.downgrade(url, revision)
    current, _ = registry_db.current_revision(url)
    console.print(f"registry {registry_db.mask_url(url)} at revision {current}")


@app.command()
@command
def current(as_json: JsonOption = False) -> None:
    """Print the registry URL (password masked) and its schema revision."""
    url = registry_db.resolve_url(state.db)
    revision, head, status = registry_db.schema_status(url)
    info = {"url": registry_db.mask_url(url), "revision": revision, "head": head,
            "up_to_date": revision == head, "status": status}
    if as_json:
        print_json(info)
        return
    console.print(f"{info['url']}: revision {revision} (head {head}, {status})")

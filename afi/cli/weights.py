"""`afi weights import FILE`: install a weight file the user has (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from afi.cli.app import JsonOption, command, console, new_app, print_json

app = new_app("Pretrained weights from files you have: AFI never downloads any.")


@app.command("import")
@command
def import_file(
    path: Annotated[Path, typer.Argument(
        help="Weight file from torchvision: vgg16-397923af.pth, or alexnet-owt-7be5be79.pth for LPIPS.")],
    name: Annotated[Literal["vgg16", "alexnet"], typer.Option(
        help="Which weights the file holds: vgg16 (perceptual and style losses) or alexnet (LPIPS)."
    )] = "vgg16",
    as_json: JsonOption = False,
) -> None:
    """Check a weight file (keys, shapes, sha256) and copy it into AFI_HOME/weights."""
    from afi.weights import import_weights  # torch: not needed by the other commands

    imported = import_weights(path, name=name)
    info = {"name": imported.name, "path": str(imported.path), "sha256": imported.sha256,
            "official": imported.official}
    if as_json:
        print_json(info)
        return
    origin = "official torchvision file" if imported.official else "your own weights"
    console.print(f"{imported.name} weights installed at {imported.path} ({origin}, sha256 {imported.sha256})")

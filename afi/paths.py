"""Where AFI keeps its files: everything lives under AFI_HOME (default ~/.afi)."""

from __future__ import annotations

import os
from pathlib import Path


def afi_home() -> Path:
    return Path(os.environ.get("AFI_HOME", Path.home() / ".afi")).expanduser()


def datasets_dir() -> Path:
    return afi_home() / "datasets"


def runs_dir() -> Path:
    return afi_home() / "runs"


def tensorboard_dir() -> Path:
    return afi_home() / "tb"


def weights_dir() -> Path:
    return afi_home() / "weights"

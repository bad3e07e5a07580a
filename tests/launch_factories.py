"""Builders for the launch tests: a tiny dataset, tiny-run overrides, and `afi` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.split import SplitConfig
from afi.data.synth import SynthConfig

AFI = str(Path(sys.executable).with_name("afi"))  # the console script of this environment
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
DATASET = "tiny"
# --set overrides that shrink any shipped spec to seconds of CPU: 32 px, width 8, 2 levels.
TINY = [
    "stage.res=32", "stage.batch=2", "variant.width=8", "variant.depth=2",
    f"data.dataset={DATASET}", "log_every=1", "val_every=2", "ckpt_every=2",
]


def tiny_dataset(engine: Engine) -> None:
    """Three synthetic shots at 40 px: one for validation (so runs are evaluated), two to train."""
    synth_dataset(
        engine,
        DATASET,
        SynthConfig(clips=3, frames_per_clip=10, width=40, height=40, characters=1),
        options=ImportOptions(split=SplitConfig(val=0.34, test=0.0)),
    )


def set_args(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def afi_process(db_url: str, afi_home: Path, *args: str) -> subprocess.Popen:
    """`afi --db URL ARGS` in its own process; one torch thread, as on a shared 2-core box."""
    env = {**os.environ, "AFI_HOME": str(afi_home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("AFI_DB_URL", None)
    return subprocess.Popen(
        [AFI, "--db", db_url, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

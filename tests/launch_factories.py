"""Builders for the launch tests: a tiny dataset, tiny-run overrides, and `afi` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.split import SplitConfig
from afi.data.synth import SynthConfig
from registry import runs as registry_runs
from registry.db import session_scope

AFI = str(Path(sys.executable).with_name("afi"))  # the console script of this environment
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
DATASET = "tiny"
# --set overrides that shrink any shipped spec to seconds of CPU: 32 px, width 8, 2 levels.
TINY = [
    "stage.res=32", "stage.batch=2", "variant.width=8", "variant.depth=2",
    f"data.dataset={DATASET}", "log_every=1", "val_every=2", "ckpt_every=2",
]


# A test waiting on workers fails only when the registry shows no progress (no run changes status
# or step) for this long: a loaded machine makes training slow, never stuck.
STALL_S = 900.0


def tiny_dataset(engine: Engine, test: float = 0.0) -> None:
    """Three synthetic shots at 40 px: one for validation (so runs are evaluated), two to train
    (or, with `test`, one to train and one for the test split)."""
    synth_dataset(
        engine,
        DATASET,
        SynthConfig(clips=3, frames_per_clip=10, width=40, height=40, characters=1),
        options=ImportOptions(split=SplitConfig(val=0.34, test=test)),
    )


def registry_progress(engine: Engine) -> list[tuple[int, str, int]]:
    with session_scope(engine) as s:
        return [(r.id, r.status, r.step) for r in registry_runs.list_runs(s)]


def communicate_while_progressing(
    processes: list[subprocess.Popen], engine: Engine, stall_s: float = STALL_S
) -> list[tuple[str, str]]:
    """Each process's (stdout, stderr) once it exits; processes are killed, and the test fails,
    only when the registry's runs stop moving for `stall_s`, however slowly they move."""
    outputs: list[tuple[str, str] | None] = [None] * len(processes)

    def read(index: int) -> None:
        outputs[index] = processes[index].communicate()

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(processes))]
    for reader in readers:
        reader.start()
    seen, moved = registry_progress(engine), time.monotonic()
    while any(reader.is_alive() for reader in readers):
        time.sleep(0.5)
        now = registry_progress(engine)
        if now != seen:
            seen, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall_s:
            for process in processes:
                process.kill()
            for reader in readers:
                reader.join()
            raise AssertionError(f"no run progressed for {stall_s:.0f} s: {seen}; logs: "
                                 + "\n".join((o or ("", ""))[1][-3000:] for o in outputs))
    return [o for o in outputs if o is not None]


def set_args(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def afi_process(db_url: str, afi_home: Path, *args: str) -> subprocess.Popen:
    """`afi --db URL ARGS` in its own process; one torch thread, as on a shared 2-core box."""
    env = {**os.environ, "AFI_HOME": str(afi_home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("AFI_DB_URL", None)
    return subprocess.Popen(
        [AFI, "--db", db_url, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

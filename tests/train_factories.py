"""Tiny datasets and run configs for trainer tests: 32-48 px crops, width-8 models, a few steps."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from afi.config import DataConfig, RunConfig, StageConfig, default_variant
from afi.data.importers import ImportOptions
from afi.data.service import synth_dataset
from afi.data.split import SplitConfig
from afi.data.synth import SynthConfig
from afi.launch.runs import RunRequest, create_run
from registry import checkpoints as registry_checkpoints
from registry import metrics as registry_metrics
from registry import runs as registry_runs
from registry.db import session_scope
from registry.records import RunRecord

DATASET = "toons"
AFI = str(Path(sys.executable).with_name("afi"))


def make_dataset(engine: Any, name: str = DATASET) -> None:
    """Three 64x64 cartoon clips; one shot goes to val so validation has something to score."""
    options = ImportOptions(split=SplitConfig(val=0.34, test=0.0))
    synth_dataset(
        engine, name, SynthConfig(clips=3, frames_per_clip=12, width=64, height=64), options=options
    )


def tiny_config(
    steps: int = 12,
    stages: tuple[StageConfig, ...] | None = None,
    arch: str = "unet",
    flow: str = "none",
    disc: str = "none",
    **run: Any,
) -> RunConfig:
    variant = replace(default_variant(arch, flow=flow, disc=disc), width=8, depth=2)
    settings: dict[str, Any] = dict(
        val_every=4, ckpt_every=4, log_every=1, image_every=4, keep_last=2
    )
    settings.update(run)
    return RunConfig(
        variant=variant,
        data=DataConfig(dataset=DATASET, val_limit=4),
        stages=stages or (StageConfig(width=32, height=32, steps=steps, batch=2, lr=1e-3),),
        **settings,
    ).validate()


def new_run(engine: Any, config: RunConfig, name: str | None = None) -> RunRecord:
    return create_run(engine, RunRequest(config=config, name=name))


def final_weights(engine: Any, run_id: int) -> dict[str, torch.Tensor]:
    """Generator and EMA tensors of the run's newest checkpoint."""
    with session_scope(engine) as session:
        latest = registry_checkpoints.latest_checkpoint(session, run_id)
    assert latest is not None
    state = torch.load(latest.path, map_location="cpu", weights_only=True)
    return {
        **{f"model.{k}": v for k, v in state["model"].items()},
        **{f"ema.{k}": v for k, v in state["ema"].items()},
    }


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def metric_rows(engine: Any, run_id: int) -> dict[tuple[str, int], float | None]:
    """(key, step) -> value; perf/* values are wall-clock figures, so only their keys count."""
    with session_scope(engine) as session:
        points = registry_metrics.get_metrics(session, run_id)
    rows = {(p.key, p.step): (None if p.key.startswith("perf/") else p.value) for p in points}
    assert len(rows) == len(points), "duplicate metric rows"
    return rows


def get_run(engine: Any, run_id: int) -> RunRecord:
    with session_scope(engine) as session:
        return registry_runs.get_run(session, run_id)


def start_afi(engine: Any, run_id: int, *flags: str) -> subprocess.Popen:
    """`afi run start RUN` in a child process, on one thread as the tests' own trainers."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [AFI, "--db", url, "run", "start", str(run_id), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

"""Recording runs: resolve a request into a validated RunConfig and one registry row.

Everything is written in one transaction, so a bad dataset name or a database error leaves no
variant, experiment or run row behind.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afi.config import LOWER_IS_BETTER, RunConfig
from afi.errors import AfiError
from afi.variants import variant_row
from registry import checkpoints as registry_checkpoints
from registry import evaluations as registry_evaluations
from registry import experiments as registry_experiments
from registry import metrics as registry_metrics
from registry import runs as registry_runs
from registry import variants as registry_variants
from registry.db import session_scope
from registry.records import MetricRecord, RunRecord


@dataclass(frozen=True)
class RunRequest:
    """What `afi run create` (or an experiment launcher) asks for."""

    config: RunConfig
    name: str | None = None
    experiment: str | None = None
    experiment_kind: str = "single"
    tags: dict[str, str] = field(default_factory=dict)
    backend: str = "local"
    queue: bool = False


def git_commit() -> str | None:
    """The commit of the AFI checkout that records the run, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def create_run(engine: Any, request: RunRequest) -> RunRecord:
    """One run outside any grid: its variant, experiment and row in a single transaction."""
    from afi.launch.experiments import record_run  # it imports this module: import at call time

    config = request.config.validate()
    variant = variant_row(config.variant)  # builds the model once: outside the transaction
    with session_scope(engine) as session:
        experiment_id = None
        if request.experiment is not None:
            experiment_id = registry_experiments.get_or_create_experiment(
                session, request.experiment, request.experiment_kind, {}
            ).id
        return record_run(
            session,
            config,
            name=request.name,
            experiment_id=experiment_id,
            variant_id=registry_variants.get_or_create_variant(session, variant).id,
            tags=request.tags,
            backend=request.backend,
            host=socket.gethostname(),
            status="queued" if request.queue else "created",
        )


def get_run(engine: Any, run: str) -> RunRecord:
    with session_scope(engine) as session:
        return registry_runs.get_run(session, run)


def cancel_run(engine: Any, run: str) -> RunRecord:
    """Cancel a created or queued run. A running one is refused: cancelled mid-step it would keep
    no best checkpoint and could never resume; stopped with a signal it checkpoints first."""
    with session_scope(engine) as session:
        record = registry_runs.get_run(session, run)
        if record.status == "running":
            raise AfiError(
                f"run {record.name!r} is running (worker {record.worker_id}, step {record.step}): "
                "stop its process with Ctrl-C or SIGTERM (it checkpoints and can resume), then cancel it"
            )
        return registry_runs.transition(session, record.id, "cancelled", expected={"created", "queued"})


def list_runs(
    engine: Any, status: str | None = None, experiment: str | None = None, limit: int | None = None
) -> list[RunRecord]:
    with session_scope(engine) as session:
        return registry_runs.list_runs(session, status=status, experiment=experiment, limit=limit)


def run_details(engine: Any, run: str) -> dict[str, Any]:
    """A run with the summary of its metrics (last and best value per key), checkpoints, evaluations."""
    with session_scope(engine) as session:
        record = registry_runs.get_run(session, run)
        points = registry_metrics.get_metrics(session, record.id)
        checkpoints = registry_checkpoints.list_checkpoints(session, record.id)
        evaluations = registry_evaluations.list_evaluations(session, record.id)
    return {
        "run": record.to_dict(),
        "metrics": summarise_metrics(points),
        "checkpoints": [c.to_dict() for c in checkpoints],
        "evaluations": [e.to_dict() for e in evaluations],
    }


def summarise_metrics(points: list[MetricRecord]) -> list[dict[str, Any]]:
    """Last and best value of each metric key; 'best' respects the metric's direction."""
    by_key: dict[str, list[MetricRecord]] = {}
    for point in points:
        by_key.setdefault(point.key, []).append(point)
    summary = []
    for key, series in sorted(by_key.items()):
        series.sort(key=lambda p: p.step)
        values = [p.value for p in series]
        lower_better = key.split("/")[-1] in LOWER_IS_BETTER or "loss" in key
        summary.append(
            {
                "key": key,
                "last_step": series[-1].step,
                "last": values[-1],
                "best": min(values) if lower_better else max(values),
                "points": len(values),
            }
        )
    return summary

"""`afi run compare`: configs side by side with differences marked, metrics, validation curves, and
the runs ranked beside the baselines of one split (the same protocol as `afi leaderboard`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from afi.errors import UsageError
from afi.launch.runs import summarise_metrics
from afi.leaderboard import DEFAULT_SPLIT, Board, rows_as_dicts, with_baselines
from afi.report.plots import Series, curves_png
from registry import leaderboard as registry_leaderboard
from registry import metrics as registry_metrics
from registry import runs as registry_runs
from registry.db import session_scope
from registry.records import MetricRecord, RunRecord

# Run fields shown above the config, in this order.
RUN_FIELDS = ("status", "variant", "dataset", "resolution", "stage", "step", "train_seconds", "cost_usd")


@dataclass(frozen=True)
class ConfigRow:
    key: str
    values: tuple[Any, ...]

    @property
    def differs(self) -> bool:
        return len({repr(v) for v in self.values}) > 1


@dataclass(frozen=True)
class Comparison:
    runs: tuple[RunRecord, ...]
    rows: tuple[ConfigRow, ...]
    # {metric key: [last/best summary per run, None where the run never logged it]}
    metrics: dict[str, list[dict[str, Any] | None]]
    curves: dict[str, dict[str, Series]]
    board: Board  # the runs' scores on one split beside that split's baselines

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.name for r in self.runs],
            "config": [
                {"key": row.key, "values": list(row.values), "differs": row.differs}
                for row in self.rows
            ],
            "metrics": self.metrics,
            "leaderboard": {"split": self.board.split, "label": self.board.label,
                            "rows": rows_as_dicts(self.board.rows)},
        }


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as dotted keys: {'stages': [{'lr': 1}]} -> {'stages.0.lr': 1}."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_rows(runs: list[RunRecord]) -> tuple[ConfigRow, ...]:
    flats = [flatten(run.config or {}) for run in runs]
    keys = sorted(set().union(*flats))
    head = [ConfigRow(name, tuple(getattr(run, name) for run in runs)) for name in RUN_FIELDS]
    return tuple(head) + tuple(ConfigRow(key, tuple(f.get(key) for f in flats)) for key in keys)


def compare_runs(engine: Any, names: list[str], split: str = DEFAULT_SPLIT) -> Comparison:
    if len(names) < 2:
        raise UsageError("compare needs at least two runs: afi run compare A B [C ...]")
    with session_scope(engine) as session:
        runs = [registry_runs.get_run(session, name) for name in names]
        points = {run.id: registry_metrics.get_metrics(session, run.id) for run in runs}
        ids = {run.id for run in runs}
        query = registry_leaderboard.LeaderboardQuery(split=split, best_per_variant=False)
        scored = [row for row in registry_leaderboard.leaderboard(session, query) if row.run_id in ids]
        datasets = [r.dataset for r in runs if r.dataset]
        board = Board(split, with_baselines(session, scored, datasets, split, "psnr"))
    summaries = {run.id: {m["key"]: m for m in summarise_metrics(points[run.id])} for run in runs}
    keys = sorted({key for summary in summaries.values() for key in summary})
    metrics = {key: [summaries[run.id].get(key) for run in runs] for key in keys}
    return Comparison(
        runs=tuple(runs),
        rows=config_rows(runs),
        metrics=metrics,
        curves=validation_curves(runs, points),
        board=board,
    )


def validation_curves(
    runs: list[RunRecord], points: dict[int, list[MetricRecord]]
) -> dict[str, dict[str, Series]]:
    """{'val/psnr': {run name: [(step, value), ...]}} for every validation metric."""
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for run in runs:
        for point in sorted(points[run.id], key=lambda p: p.step):
            if point.key.startswith("val/") and point.value is not None:
                curves.setdefault(point.key, {}).setdefault(run.name, []).append(
                    (point.step, point.value)
                )
    return curves


def comparison_png(comparison: Comparison) -> bytes:
    names = ", ".join(run.name for run in comparison.runs)
    return curves_png(comparison.curves, title=f"validation: {names}")

"""bench.recipe end to end on tiny sets: make the three sets, train one step through the launch
path, and score the model and every baseline per triplet at full frame size."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from bench.recipe import (
    BASELINES,
    METRICS,
    MOVING_BELOW_DB,
    DataPlan,
    evaluate_set,
    format_report,
    load_recipe,
    synth_sets,
    train_runs,
)

SPEC = Path(__file__).with_name("recipe-smoke.toml")  # steps = 50, which the bench replaces


@pytest.mark.parametrize("backend", ["sqlite"])
def test_recipe_scores_model_and_baselines_on_every_set(
    engine: Engine, db_url: str, afi_home: Path, tmp_path: Path
) -> None:
    plan = DataPlan(clips=4, frames=12, train_size=32, eval_clips=3, unseen_size=(48, 32),
                    painted_size=(64, 36))
    sets = synth_sets(engine, plan, report=lambda line: None)
    assert [s.dataset for s in sets] == ["recipe-train", "recipe-unseen", "recipe-painted"]
    # A budget is shared by the runs' stages, each then a time-budgeted stage with no step cap.
    budgeted = load_recipe(SPEC, [], steps=None, minutes=6.0).expand()[0].config.stages[0]
    assert budgeted.minutes == 6.0 and budgeted.steps > 1_000_000
    spec = load_recipe(SPEC, [], steps=1)
    runs = train_runs(engine, db_url, spec, report=lambda line: None)
    assert len(runs) == 1 and runs[0].step == 1  # --steps replaced the spec's 50

    sizes = {"recipe-train": (32, 32), "recipe-unseen": (48, 32), "recipe-painted": (64, 36)}
    for eval_set in sets:
        report = evaluate_set(engine, runs, eval_set, tmp_path / "predictions")
        assert report.size == sizes[eval_set.dataset]  # whole frames, never crops
        assert [r.method for r in report.rows] == [runs[0].name, *BASELINES]
        assert 0 <= report.moving <= report.triplets and report.triplets > 0
        for row in report.rows:
            # Per-triplet scores of the saved predictions agree with evaluate_run's own means.
            for metric in METRICS:
                assert row.all[metric] == pytest.approx(report.recorded[row.method][metric], abs=1e-3)
        blend = next(r for r in report.rows if r.method == "blend")
        assert not report.moving or blend.moving["psnr"] < MOVING_BELOW_DB
        text = format_report(report)
        assert "minus the best baseline" in text and "flow (baseline)" in text

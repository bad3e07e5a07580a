"""The leaderboard and run_summary views: best-over-steps ranking in one query, both backends."""

from __future__ import annotations

from sqlalchemy import Engine

from registry.datasets import NewDataset, add_dataset
from registry.db import session_scope
from registry.evaluations import add_evaluations, list_evaluations
from registry.leaderboard import LeaderboardQuery, leaderboard
from registry.sql import run_readonly
from registry_factories import make_run


def _evaluate(engine: Engine, run_id: int, steps: list[dict[str, float]], dataset_id: int | None = None) -> None:
    with session_scope(engine) as s:
        for step, values in enumerate(steps, start=1):
            add_evaluations(s, run_id, values, split="val", dataset_id=dataset_id, step=step * 100)


def _board(engine: Engine, **query: object) -> list[tuple[str, float | None]]:
    metric = str(query.get("metric", "psnr"))
    with session_scope(engine) as s:
        return [(r.run, getattr(r, metric)) for r in leaderboard(s, LeaderboardQuery(**query))]  # type: ignore[arg-type]


def test_runs_rank_by_their_best_value_not_their_last(engine: Engine) -> None:
    peaked = make_run(engine, "completed", name="peaked")  # best 31, last 25
    steady = make_run(engine, "completed", name="steady")  # best = last = 29
    _evaluate(engine, peaked.id, [{"psnr": 28.0, "lineart": 3.0}, {"psnr": 31.0, "lineart": 2.0}, {"psnr": 25.0, "lineart": 4.0}])
    _evaluate(engine, steady.id, [{"psnr": 27.0, "lineart": 1.5}, {"psnr": 29.0, "lineart": 1.0}])
    everything = dict(best_per_variant=False)
    assert _board(engine, **everything) == [("peaked", 31.0), ("steady", 29.0)]
    # lineart is a distance: lower is better, and the best is the minimum over steps.
    assert _board(engine, metric="lineart", **everything) == [("steady", 1.0), ("peaked", 2.0)]
    columns, rows = run_readonly(engine, "SELECT run, psnr, evals FROM leaderboard WHERE arch = 'isnet' ORDER BY psnr DESC")
    assert columns == ["run", "psnr", "evals"]
    assert [tuple(r) for r in rows] == [("peaked", 31.0, 6), ("steady", 29.0, 4)]


def test_best_per_variant_filters_baselines_and_nulls_last(engine: Engine) -> None:
    a1 = make_run(engine, "completed", name="isnet-a")
    a2 = make_run(engine, "completed", name="isnet-b")
    unet = make_run(engine, "completed", arch="unet", name="unet-a")
    blend = make_run(engine, "completed", arch="blend", name="blend", kind="baseline")
    ssim_only = make_run(engine, "completed", arch="vae", name="vae-a")
    _evaluate(engine, a1.id, [{"psnr": 30.0}])
    _evaluate(engine, a2.id, [{"psnr": 32.0}])
    _evaluate(engine, unet.id, [{"psnr": 29.0}])
    _evaluate(engine, blend.id, [{"psnr": 24.0}])
    _evaluate(engine, ssim_only.id, [{"ssim": 0.9}])
    assert _board(engine) == [("isnet-b", 32.0), ("unet-a", 29.0), ("blend", 24.0), ("vae-a", None)]
    assert _board(engine, include_baselines=False, limit=2) == [("isnet-b", 32.0), ("unet-a", 29.0)]
    assert _board(engine, arch="isnet", best_per_variant=False) == [("isnet-b", 32.0), ("isnet-a", 30.0)]
    assert _board(engine, kind="baseline") == [("blend", 24.0)]
    with session_scope(engine) as s:
        row = leaderboard(s, LeaderboardQuery(kind="baseline"))[0]
    assert row.is_baseline is True and row.to_dict()["split"] == "val"


def test_rows_are_per_dataset_and_split(engine: Engine) -> None:
    run = make_run(engine, "completed", name="r")
    with session_scope(engine) as s:
        ids = [add_dataset(s, NewDataset(name=n, format="png", root=f"/d/{n}"), [], []).id for n in ("anime", "toons")]
        add_evaluations(s, run.id, {"psnr": 30.0}, split="test", dataset_id=ids[0])
        assert len(list_evaluations(s, run.id)) == 1
    _evaluate(engine, run.id, [{"psnr": 20.0}], dataset_id=ids[1])
    assert _board(engine, dataset="toons") == [("r", 20.0)]
    assert _board(engine, split="test") == [("r", 30.0)]
    assert len(_board(engine)) == 2


def test_run_summary_has_one_row_per_run(engine: Engine) -> None:
    make_run(engine, "created", name="one")
    make_run(engine, "queued", arch="unet", name="two")
    columns, rows = run_readonly(engine, "SELECT name, status, arch, resolution FROM run_summary ORDER BY id")
    assert [tuple(r) for r in rows] == [("one", "created", "isnet", "64"), ("two", "queued", "unet", "64")]

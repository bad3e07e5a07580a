"""The leaderboard and run_summary views: best-over-steps ranking on both backends, and
run_scores, which add_evaluations keeps equal to an aggregation over every evaluation."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest
from sqlalchemy import Engine, delete, select

from registry.datasets import NewDataset, add_dataset, remove_dataset
from registry.db import session_scope
from registry.evaluations import BEST_COLUMNS, HIGHER_IS_BETTER, add_evaluations, list_evaluations, rebuild_run_scores
from registry.experiments import get_or_create_experiment
from registry.leaderboard import LeaderboardQuery, leaderboard
from registry.records import LeaderboardRow
from registry.runs import NewRun, create_run
from registry.schema import SqlRun, SqlRunScore
from registry.sql import run_readonly
from registry_factories import make_run, variant_id

# (run_id, dataset_id, split) -> (best psnr, ssim, ms_ssim, lineart, lpips, evaluation count)
Scores = dict[tuple[int, int | None, str], tuple[float | None, ...]]


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


def test_unmeasurable_values_neither_erase_nor_hide_a_best(engine: Engine) -> None:
    # NaN and infinities are stored as NULL: a later NULL keeps the best, a later value replaces
    # an earlier NULL (scalar MAX/GREATEST of NULL and x would be NULL).
    run = make_run(engine, "completed", name="r")
    _evaluate(engine, run.id, [{"psnr": 30.0, "lpips": math.nan}, {"psnr": math.nan, "lpips": 0.2}, {"psnr": math.inf}])
    with session_scope(engine) as s:
        row = leaderboard(s, LeaderboardQuery(metric="lpips"))[0]
    assert (row.psnr, row.lpips, row.ssim, row.evals) == (30.0, 0.2, None, 5)


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


def _stored_scores(engine: Engine) -> Scores:
    columns = [getattr(SqlRunScore, name) for name in (*BEST_COLUMNS.values(), "eval_count")]
    with session_scope(engine) as s:
        rows = s.execute(select(SqlRunScore.run_id, SqlRunScore.dataset_id, SqlRunScore.split, *columns))
        return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def _aggregated_scores(engine: Engine) -> Scores:
    """What run_scores must hold, computed here in Python from every stored evaluation."""
    values: dict[tuple[int, int | None, str], list[tuple[str, float | None]]] = defaultdict(list)
    with session_scope(engine) as s:
        for run_id in s.scalars(select(SqlRun.id)):
            for e in list_evaluations(s, run_id):
                values[(e.run_id, e.dataset_id, e.split)].append((e.metric, e.value))
    scores: Scores = {}
    for key, pairs in values.items():
        bests = []
        for metric, higher in HIGHER_IS_BETTER.items():
            seen = [value for name, value in pairs if name == metric and value is not None]
            bests.append((max if higher else min)(seen) if seen else None)
        scores[key] = (*bests, len(pairs))
    return scores


@pytest.mark.parametrize("seed", [0, 1])
def test_run_scores_equal_a_fresh_aggregation_after_random_inserts(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    runs = [make_run(engine, "completed", name=f"r{i}").id for i in range(3)]
    with session_scope(engine) as s:
        datasets = [add_dataset(s, NewDataset(name=n, format="png", root=f"/d/{n}"), [], []).id for n in ("a", "b")]
    unmeasurable = (math.nan, math.inf, -math.inf)
    metrics = [*HIGHER_IS_BETTER, "flow_epe"]  # a metric that is counted but not ranked
    for _ in range(12):  # transactions, each of one to three evaluations
        with session_scope(engine) as s:
            for _ in range(rng.randint(1, 3)):
                chosen = rng.sample(metrics, rng.randint(0, len(metrics)))
                values = {m: rng.choice(unmeasurable) if rng.random() < 0.15 else rng.uniform(0, 40) for m in chosen}
                add_evaluations(s, rng.choice(runs), values, split=rng.choice(["val", "test"]),
                                dataset_id=rng.choice([None, *datasets]), step=rng.randint(0, 5) * 100)
    expected = _aggregated_scores(engine)
    assert any(dataset_id is None for _, dataset_id, _ in expected)
    assert _stored_scores(engine) == expected
    with session_scope(engine) as s:
        assert rebuild_run_scores(s) == len(expected)
    assert _stored_scores(engine) == expected
    # Scores go with their run or dataset, as the evaluations do.
    with session_scope(engine) as s:
        remove_dataset(s, "a", force=True)
        s.execute(delete(SqlRun).where(SqlRun.id == runs[0]))
    expected = _aggregated_scores(engine)
    assert all(run_id != runs[0] and dataset_id != datasets[0] for run_id, dataset_id, _ in expected)
    assert _stored_scores(engine) == expected


def _best_of_each_variant(rows: list[LeaderboardRow]) -> list[LeaderboardRow]:
    """The first row of each (variant, resolution, dataset, split), in the order given."""
    seen: set[tuple[str, str, str | None, str]] = set()
    firsts = []
    for row in rows:
        group = (row.variant, row.resolution, row.dataset, row.split)
        if group not in seen:
            seen.add(group)
            firsts.append(row)
    return firsts


def test_best_per_variant_is_the_first_of_each_group_of_all_rows(engine: Engine) -> None:
    # The best run per variant is picked on the tables, the rows read from the view: both must
    # agree for every filter, metric, tie (values from a short list) and missing value.
    rng = random.Random(7)
    variants = [variant_id(engine, arch, name=f"{arch}-{i}", kind=kind)
                for arch, kind in (("isnet", "interp"), ("unet", "interp"), ("blend", "baseline")) for i in range(2)]
    with session_scope(engine) as s:
        datasets = [add_dataset(s, NewDataset(name=n, format="png", root=f"/d/{n}"), [], []).id for n in ("a", "b")]
        experiments = [get_or_create_experiment(s, n).id for n in ("x", "y")]
        for i in range(24):
            vid = rng.choice(variants)
            size = rng.choice([64, 128])
            run = create_run(s, NewRun(variant_id=vid, width=size, height=size, name=f"r{i}",
                                       kind="baseline" if vid == variants[-1] else "interp",
                                       experiment_id=rng.choice([None, *experiments])))
            for _ in range(rng.randint(1, 3)):
                values = {m: rng.choice([math.nan, 0.1, 0.2, 0.3]) for m in rng.sample(list(HIGHER_IS_BETTER), 2)}
                add_evaluations(s, run.id, values, split=rng.choice(["val", "test"]), dataset_id=rng.choice([None, *datasets]))
    filters: list[dict[str, object]] = [
        {}, {"dataset": "a"}, {"split": "val"}, {"arch": "unet"}, {"resolution": "128"}, {"kind": "baseline"},
        {"experiment": "x"}, {"include_baselines": False}, {"dataset": "b", "split": "test", "limit": 2},
    ]
    for metric in HIGHER_IS_BETTER:
        for wanted in filters:
            with session_scope(engine) as s:
                every = leaderboard(s, LeaderboardQuery(metric=metric, best_per_variant=False, **{**wanted, "limit": None}))  # type: ignore[arg-type]
                best = leaderboard(s, LeaderboardQuery(metric=metric, **wanted))  # type: ignore[arg-type]
            assert best == _best_of_each_variant(every)[: wanted.get("limit")], (metric, wanted)  # type: ignore[misc]

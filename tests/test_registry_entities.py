"""Datasets (bulk frames and triplets, removal cascade), variants, experiments, checkpoints."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from registry.checkpoints import (
    add_checkpoint,
    best_checkpoint,
    delete_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    set_best,
)
from registry.datasets import (
    NewDataset,
    NewFrame,
    NewTriplet,
    add_dataset,
    get_dataset,
    list_datasets,
    list_frames,
    list_triplets,
    remove_dataset,
)
from registry.db import session_scope
from registry.errors import DuplicateName, NotFound, RegistryError
from registry.evaluations import add_evaluations
from registry.experiments import get_experiment, get_or_create_experiment, list_experiments
from registry.runs import get_run
from registry.schema import SqlEvaluation, SqlFrame, SqlRunScore, SqlTriplet
from registry.variants import NewVariant, get_or_create_variant, get_variant, list_variants
from registry_factories import make_run


def _add_toy_dataset(engine: Engine, name: str = "toy", shots: int = 3, per_shot: int = 5) -> int:
    frames = [
        NewFrame(shot=shot, idx=i, path=f"s{shot}/{i:05d}.png", pts=i / 24, split="val" if shot == 0 else "train")
        for shot in range(shots)
        for i in range(per_shot)
    ]
    triplets = [
        NewTriplet(key=f"s{shot}-{i}", split=frames[shot * per_shot].split, shot=shot,
                   frames=(shot * per_shot + i, shot * per_shot + i + 1, shot * per_shot + i + 2), t=0.5)
        for shot in range(shots)
        for i in range(per_shot - 2)
    ]
    meta = NewDataset(name=name, format="png", root=f"/data/{name}", width=64, height=36,
                      shot_count=shots, frame_count=len(frames), triplet_count=len(triplets),
                      split_counts={"train": 6, "val": 3}, params={"min_motion": 0.01})
    with session_scope(engine) as s:
        return add_dataset(s, meta, frames, triplets).id


def test_dataset_frames_and_triplets_round_trip(engine: Engine) -> None:
    dataset_id = _add_toy_dataset(engine)
    with session_scope(engine) as s:
        record = get_dataset(s, "toy")
        val = list_triplets(s, dataset_id, split="val")
        assert len(list_triplets(s, dataset_id)) == 9 and len(list_triplets(s, dataset_id, limit=2)) == 2
        assert len(list_frames(s, dataset_id)) == 15 and len(list_frames(s, dataset_id, "val")) == 5
        assert [d.name for d in list_datasets(s)] == ["toy"]
        with pytest.raises(DuplicateName):
            add_dataset(s, NewDataset(name="toy", format="png", root="/x"), [], [])
        with pytest.raises(NotFound, match="see `afi dataset list`"):
            get_dataset(s, "nope")
    assert record.split_counts == {"train": 6, "val": 3} and record.to_dict()["params"] == {"min_motion": 0.01}
    assert (val[0].frame0, val[0].frame1, val[0].frame2, val[0].t) == ("s0/00000.png", "s0/00001.png", "s0/00002.png", 0.5)


def test_triplet_pointing_outside_frames_is_refused(engine: Engine) -> None:
    with session_scope(engine) as s:
        with pytest.raises(RegistryError, match="only 1 frames were given"):
            add_dataset(s, NewDataset(name="bad", format="png", root="/x"),
                        [NewFrame(0, 0, "a.png", 0.0, "train")], [NewTriplet("k", "train", 0, (0, 1, 2), 0.5)])
    with session_scope(engine) as s:  # and nothing half-written remains
        assert list_datasets(s) == []


def test_remove_dataset_cascades_and_refuses_while_used(engine: Engine) -> None:
    dataset_id = _add_toy_dataset(engine)
    run = make_run(engine, "completed", dataset_id=dataset_id)
    with session_scope(engine) as s:
        add_evaluations(s, run.id, {"psnr": 30.0}, split="val", dataset_id=dataset_id)
        with pytest.raises(RegistryError, match="used by 1 run"):
            remove_dataset(s, "toy")
    with session_scope(engine) as s:
        assert remove_dataset(s, "toy", force=True).name == "toy"
    with session_scope(engine) as s:
        for table in (SqlFrame, SqlTriplet, SqlEvaluation, SqlRunScore):
            assert s.scalar(select(func.count()).select_from(table)) == 0
        assert get_run(s, run.id).dataset is None


def test_variants_are_reused_by_name_and_config(engine: Engine) -> None:
    new = NewVariant(name="isnet-ifnet-patchgan", kind="interp", arch="isnet", flow="ifnet", disc="patchgan",
                     config={"arch": "isnet", "width": 32}, loss_config={"l1": 1.0})
    with session_scope(engine) as s:
        first = get_or_create_variant(s, new)
        again = get_or_create_variant(s, new)
        assert first.id == again.id and get_variant(s, first.name).disc == "patchgan"
        assert get_variant(s, first.id).loss_config == {"l1": 1.0} and len(list_variants(s)) == 1
        changed = NewVariant(name=new.name, kind="interp", arch="isnet", config={"arch": "isnet", "width": 64})
        with pytest.raises(DuplicateName, match="different config"):
            get_or_create_variant(s, changed)


def test_experiments_count_their_runs(engine: Engine) -> None:
    with session_scope(engine) as s:
        experiment = get_or_create_experiment(s, "curriculum-1", "curriculum", {"stages": [128, 256]})
        assert get_or_create_experiment(s, "curriculum-1").id == experiment.id
        with pytest.raises(DuplicateName):
            get_or_create_experiment(s, "curriculum-1", "curriculum", {"stages": [64]})
    make_run(engine, "queued", experiment_id=experiment.id)
    make_run(engine, "completed", experiment_id=experiment.id)
    make_run(engine, "completed", experiment_id=experiment.id)
    with session_scope(engine) as s:
        assert get_experiment(s, "curriculum-1").run_counts == {"queued": 1, "completed": 2}
        assert [e.run_counts for e in list_experiments(s)] == [{"queued": 1, "completed": 2}]


def test_checkpoints_best_latest_and_delete(engine: Engine) -> None:
    run = make_run(engine, "running")
    with session_scope(engine) as s:
        first = add_checkpoint(s, run.id, 100, "/ck/100.pt", 1234, "a" * 64, metric_value=28.0)
        second = add_checkpoint(s, run.id, 200, "/ck/200.pt", 1234, "b" * 64, metric_value=30.0)
        assert best_checkpoint(s, run.id) is None
        set_best(s, run.id, first.id)
        set_best(s, run.id, second.id)
        assert best_checkpoint(s, run.id).id == second.id  # type: ignore[union-attr]
        assert [c.is_best for c in list_checkpoints(s, run.id)] == [False, True]
        resaved = add_checkpoint(s, run.id, 200, "/ck/200b.pt", 99, "c" * 64)  # a resumed run
        assert resaved.id == second.id and latest_checkpoint(s, run.id).path == "/ck/200b.pt"  # type: ignore[union-attr]
        assert delete_checkpoint(s, first.id).path == "/ck/100.pt"
        assert [c.step for c in list_checkpoints(s, run.id)] == [200]
        with pytest.raises(NotFound):
            delete_checkpoint(s, first.id)

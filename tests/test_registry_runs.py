"""Runs: creation, lookup, the state machine, heartbeats and stale detection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from registry.clock import utcnow
from registry.db import session_scope
from registry.errors import DuplicateName, InvalidTransition, RegistryError, RunNotFound
from registry.runs import (
    ALLOWED_TRANSITIONS,
    NewRun,
    create_run,
    find_stale,
    get_run,
    heartbeat,
    list_runs,
    mark_stale,
    set_tags,
    transition,
    update_run,
)
from registry.schema import RUN_STATUSES, SqlRun
from registry.experiments import get_or_create_experiment
from registry_factories import PATH_TO, make_run, variant_id


def test_create_run_generates_a_unique_name_and_keeps_tags(engine: Engine) -> None:
    vid = variant_id(engine, "isnet", name="isnet-ifnet")
    with session_scope(engine) as s:
        first = create_run(s, NewRun(variant_id=vid, width=512, height=256, tags={"a": "1"}), {"b": "2"})
        second = create_run(s, NewRun(variant_id=vid, width=256, height=256))
    assert first.name == f"isnet-ifnet-512x256-{first.id:04d}"
    assert second.name == f"isnet-ifnet-256-{second.id:04d}"
    assert first.tags == {"a": "1", "b": "2"}
    assert (first.status, first.arch, first.resolution, first.attempt) == ("created", "isnet", "512x256", 0)
    assert first.to_dict()["created_at"].endswith("+00:00")


def test_explicit_duplicate_name_is_refused(engine: Engine) -> None:
    make_run(engine, name="mine")
    with pytest.raises(DuplicateName, match="'mine' is taken"):
        make_run(engine, name="mine")


def test_unknown_run_names_the_listing_command(engine: Engine) -> None:
    with session_scope(engine) as s:
        with pytest.raises(RunNotFound) as info:
            get_run(s, "nope")
        with pytest.raises(RunNotFound):
            get_run(s, 424242)
    assert str(info.value) == "run 'nope' not found: see `afi run list`"


def test_get_run_by_id_or_name_and_list_filters(engine: Engine) -> None:
    run = make_run(engine, "queued")
    make_run(engine, "created")
    with session_scope(engine) as s:
        experiment = get_or_create_experiment(s, "abl", "ablation", {"x": 1})
        create_run(s, NewRun(variant_id=run.variant_id, width=8, height=8, experiment_id=experiment.id))
    with session_scope(engine) as s:
        assert get_run(s, run.id).name == get_run(s, run.name).name == run.name
        assert get_run(s, str(run.id)).id == run.id
        assert [r.id for r in list_runs(s, status="queued")] == [run.id]
        assert [r.experiment for r in list_runs(s, experiment="abl")] == ["abl"]
        assert len(list_runs(s, limit=2)) == 2
        with pytest.raises(RegistryError, match="unknown status"):
            list_runs(s, status="sleeping")


def test_state_machine_allows_exactly_the_listed_transitions(engine: Engine) -> None:
    for start in RUN_STATUSES:
        for target in RUN_STATUSES:
            run = make_run(engine, start)
            with session_scope(engine) as s:
                if target in ALLOWED_TRANSITIONS[start]:
                    assert transition(s, run.id, target).status == target
                else:
                    with pytest.raises(InvalidTransition, match=f"cannot go from {start} to {target}"):
                        transition(s, run.id, target)
    assert "queued" not in ALLOWED_TRANSITIONS["running"]


def test_transitions_stamp_times_and_count_attempts(engine: Engine) -> None:
    run = make_run(engine, "queued")
    assert run.queued_at is not None and run.started_at is None
    with session_scope(engine) as s:
        running = transition(s, run.id, "running", worker_id="w1", host="h")
        failed = transition(s, run.id, "failed", message="CUDA out of memory")
        requeued = transition(s, run.id, "queued")
        again = transition(s, run.id, "running")
    assert (running.attempt, running.worker_id, running.host) == (1, "w1", "h")
    assert running.started_at is not None and running.heartbeat_at is not None
    assert failed.finished_at is not None and failed.message == "CUDA out of memory"
    assert requeued.status == "queued" and again.attempt == 2 and again.finished_at is None


def test_expected_guards_against_concurrent_changes(engine: Engine) -> None:
    run = make_run(engine, "running")
    with session_scope(engine) as s:
        with pytest.raises(InvalidTransition, match="is running, not queued"):
            transition(s, run.id, "cancelled", expected={"queued"})
        with pytest.raises(RegistryError, match="cannot update run field"):
            transition(s, run.id, "completed", status="queued")


def test_update_run_and_tags(engine: Engine) -> None:
    run = make_run(engine, "running")
    with session_scope(engine) as s:
        updated = update_run(s, run.id, step=50, total_steps=100, cost_usd=1.25, gpu_hours=0.5)
        set_tags(s, run.id, {"k": "v"})
        set_tags(s, run.id, {"k": "w", "z": 3})
        with pytest.raises(RegistryError, match="cannot update run field"):
            update_run(s, run.id, name="other")
    assert (updated.step, updated.total_steps, updated.cost_usd) == (50, 100, 1.25)
    with session_scope(engine) as s:
        assert get_run(s, run.id).tags == {"k": "w", "z": "3"}


def test_heartbeat_reports_cancellation_and_stale_runs_are_preempted(engine: Engine) -> None:
    alive, dead, cancelled = (make_run(engine, "running") for _ in range(3))
    with session_scope(engine) as s:
        assert heartbeat(s, alive.id, step=7) == "running"
        transition(s, cancelled.id, "cancelled")
        assert heartbeat(s, cancelled.id) == "cancelled"
        with pytest.raises(RunNotFound):
            heartbeat(s, 999999)
        long_ago = utcnow() - timedelta(hours=2)
        s.execute(update(SqlRun).where(SqlRun.id == dead.id).values(heartbeat_at=long_ago))
    with session_scope(engine) as s:
        assert [r.id for r in find_stale(s, older_than_seconds=3600)] == [dead.id]
        assert mark_stale(s, older_than_seconds=3600) == [dead.id]
        assert find_stale(s, older_than_seconds=3600) == []
        preempted = get_run(s, dead.id)
        assert get_run(s, alive.id).step == 7
    assert preempted.status == "preempted" and "no heartbeat" in (preempted.message or "")
    with session_scope(engine) as s:
        assert transition(s, dead.id, "queued").status == "queued"


def test_bad_new_runs_are_refused(engine: Engine) -> None:
    vid = variant_id(engine)
    with session_scope(engine) as s:
        with pytest.raises(RegistryError, match="bad resolution"):
            create_run(s, NewRun(variant_id=vid, width=-1, height=64))
        with pytest.raises(RegistryError, match="unknown run kind"):
            create_run(s, NewRun(variant_id=vid, width=64, height=64, kind="gan"))
        with pytest.raises(InvalidTransition):
            create_run(s, NewRun(variant_id=vid, width=64, height=64, status="running"))


def test_paths_cover_every_state() -> None:
    assert set(PATH_TO) == set(RUN_STATUSES)

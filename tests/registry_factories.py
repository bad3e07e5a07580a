"""Small builders for registry tests: a variant and runs in a given state."""

from __future__ import annotations

from sqlalchemy import Engine

from registry.datasets import NewDataset, add_dataset
from registry.db import session_scope
from registry.records import RunRecord
from registry.runs import NewRun, create_run, transition
from registry.variants import NewVariant, get_or_create_variant

# The transitions that take a new run to each state.
PATH_TO = {
    "created": [],
    "queued": ["queued"],
    "running": ["running"],
    "completed": ["running", "completed"],
    "failed": ["running", "failed"],
    "preempted": ["running", "preempted"],
    "cancelled": ["cancelled"],
}


def variant_id(engine: Engine, arch: str = "isnet", name: str | None = None, kind: str = "interp") -> int:
    with session_scope(engine) as s:
        variant = get_or_create_variant(
            s,
            NewVariant(name=name or f"{arch}-v", kind=kind, arch=arch, config={"arch": arch}),
        )
    return variant.id


def make_dataset_row(engine: Engine, name: str = "rows") -> int:
    """A registered dataset of no frames: enough for runs to name it."""
    meta = NewDataset(name=name, format="png", root=f"/data/{name}", width=64, height=64,
                      shot_count=0, frame_count=0, triplet_count=0, split_counts={})
    with session_scope(engine) as s:
        return add_dataset(s, meta, [], []).id


def make_run(engine: Engine, status: str = "created", arch: str = "isnet", **fields: object) -> RunRecord:
    """A run of an `arch` variant, moved along PATH_TO[status]."""
    vid = variant_id(engine, arch, kind="baseline" if fields.get("kind") == "baseline" else "interp")
    with session_scope(engine) as s:
        run = create_run(s, NewRun(variant_id=vid, width=64, height=64, **fields))  # type: ignore[arg-type]
        for step in PATH_TO[status]:
            run = transition(s, run.id, step)
    return run

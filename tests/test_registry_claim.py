"""Worker claiming: 8 processes race for 100 queued runs; each run is claimed exactly once."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

from sqlalchemy import Engine, func, select

from registry.db import make_engine, session_scope
from registry.runs import NewRun, claim_next_run, create_run
from registry.schema import SqlRun
from registry_factories import variant_id

WORKERS = 8
RUNS = 100


def claim_until_empty(url: str, worker_id: str, start: mp.synchronize.Barrier, out: mp.Queue) -> None:
    engine = make_engine(url)
    claimed = []
    start.wait()  # every worker is connected and imported before anyone claims
    while (run := claim_next_run(engine, worker_id, host="test")) is not None:
        assert run.status == "running" and run.worker_id == worker_id
        claimed.append(run.id)
    engine.dispose()
    out.put((worker_id, claimed))


def test_workers_claim_every_queued_run_exactly_once(engine: Engine, db_url: str) -> None:
    vid = variant_id(engine)
    with session_scope(engine) as s:
        queued = [create_run(s, NewRun(variant_id=vid, width=32, height=32, status="queued")).id for _ in range(RUNS)]
        create_run(s, NewRun(variant_id=vid, width=32, height=32, status="queued", backend="sky"))
    context = mp.get_context("spawn")
    start, out = context.Barrier(WORKERS), context.Queue()
    workers = [
        context.Process(target=claim_until_empty, args=(db_url, f"w{i}", start, out))
        for i in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    claims = Counter(run_id for ids in results.values() for run_id in ids)
    assert sorted(claims) == sorted(queued)
    assert set(claims.values()) == {1}
    with session_scope(engine) as s:
        by_status = dict(s.execute(select(SqlRun.status, func.count()).group_by(SqlRun.status)).all())
        owners = dict(s.execute(select(SqlRun.id, SqlRun.worker_id).where(SqlRun.status == "running")).all())
    assert by_status == {"running": RUNS, "queued": 1}  # the sky run is not for local workers
    assert all(owners[run_id] == worker for worker, ids in results.items() for run_id in ids)

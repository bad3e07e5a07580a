"""Registry throughput and latency, against raw baselines measured in the same database.

    .venv/bin/python bench/registry.py [--backend sqlite|mariadb|both] [--points N]

Prints, per backend:
- metric points/s through MetricLogger (buffered upserts) and log_points, and through raw DBAPI
  `executemany` plain INSERTs into a table of identical shape, same batch size; the ratio
  (target >= 0.8);
- runs created per second through create_run, one transaction each (what `afi run create` does);
- leaderboard latency over 10,000 runs with a few evaluations each (target < 100 ms), against
  the same query aggregating every evaluation (the leaderboard view before run_scores);
- add_evaluations per call (evaluation rows + the run_scores upsert), against inserting the
  evaluation rows alone.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
from sqlalchemy import Engine, MetaData, Table, insert, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry.clock import utcnow  # noqa: E402
from registry.db import make_engine, session_scope, upgrade  # noqa: E402
from registry.evaluations import add_evaluations, rebuild_run_scores  # noqa: E402
from registry.leaderboard import LeaderboardQuery, leaderboard  # noqa: E402
from registry.metrics import MetricLogger, log_points  # noqa: E402
from registry.runs import NewRun, create_run  # noqa: E402
from registry.schema import SqlEvaluation, SqlMetric, SqlRun  # noqa: E402
from registry.variants import NewVariant, get_or_create_variant  # noqa: E402

MARIADB_SERVER = "mysql+pymysql://root@127.0.0.1:3306"
BATCH = 500
LEADERBOARD_RUNS = 10_000
ARCHS = ("unet", "isnet", "vae", "blend")
EVALUATED = {"psnr": 30.0, "ssim": 0.9, "lineart": 1.0, "lpips": 0.1}
# The leaderboard view before run_scores existed: every query aggregated all evaluations.
AGGREGATING_LEADERBOARD = """
SELECT r.id AS run_id, r.name AS run, r.kind AS kind,
       CASE WHEN r.kind = 'baseline' THEN 1 ELSE 0 END AS is_baseline,
       x.name AS experiment, v.name AS variant, v.arch AS arch, v.flow AS flow, v.disc AS disc,
       r.resolution AS resolution, r.stage AS stage, r.status AS status,
       d.name AS dataset, e.split AS split,
       e.psnr AS psnr, e.ssim AS ssim, e.ms_ssim AS ms_ssim, e.lineart AS lineart,
       e.lpips AS lpips, e.evals AS evals,
       v.param_count AS params, r.train_seconds AS train_seconds, r.cost_usd AS cost_usd
FROM (
    SELECT run_id, dataset_id, split,
           MAX(CASE WHEN metric = 'psnr' THEN value END) AS psnr,
           MAX(CASE WHEN metric = 'ssim' THEN value END) AS ssim,
           MAX(CASE WHEN metric = 'ms_ssim' THEN value END) AS ms_ssim,
           MIN(CASE WHEN metric = 'lineart' THEN value END) AS lineart,
           MIN(CASE WHEN metric = 'lpips' THEN value END) AS lpips,
           COUNT(*) AS evals
    FROM evaluations
    GROUP BY run_id, dataset_id, split
) e
JOIN runs r ON r.id = e.run_id
JOIN model_variants v ON v.id = r.variant_id
LEFT JOIN datasets d ON d.id = e.dataset_id
LEFT JOIN experiments x ON x.id = r.experiment_id
"""
ISNET_BY_PSNR = "SELECT * FROM {source} WHERE arch = 'isnet' ORDER BY psnr DESC"


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, upgraded database URL for one backend, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade(url)
            yield url
        return
    name = f"afi_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        url = f"{MARIADB_SERVER}/{name}"
        upgrade(url)
        yield url
    finally:
        admin.cursor().execute(f"DROP DATABASE {name}")
        admin.close()


def new_run_id(engine: Engine, variant_id: int) -> int:
    with session_scope(engine) as s:
        return create_run(s, NewRun(variant_id=variant_id, width=256, height=256)).id


def points_for(count: int) -> list[tuple[str, int, float]]:
    keys = ("train/loss", "train/lr", "loss/G/adv", "loss/D/r1", "val/psnr")
    return [(keys[i % len(keys)], i // len(keys), random.random()) for i in range(count)]


def raw_table(engine: Engine) -> Table:
    """A copy of `metrics` (same columns, unique key and foreign key) under another name."""
    metadata = MetaData()
    Table("runs", metadata, autoload_with=engine)  # the foreign key's target
    table = SqlMetric.__table__.to_metadata(metadata, name="bench_raw_metrics")
    for constraint in table.constraints:
        constraint.name = f"bench_{constraint.name}" if constraint.name else None
    table.create(engine)
    return table


def raw_executemany(engine: Engine, table: Table, run_id: int, points: list[tuple[str, int, float]]) -> float:
    """Points/s through the bare driver: one executemany of plain INSERTs per batch."""
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    key = engine.dialect.identifier_preparer.quote("key")
    sql = (
        f"INSERT INTO {table.name} (run_id, {key}, step, value, logged_at) "
        f"VALUES ({', '.join([marker] * 5)})"
    )
    connection = engine.raw_connection()
    try:
        start = time.perf_counter()
        for first in range(0, len(points), BATCH):
            now = utcnow()
            if engine.dialect.name == "sqlite":
                now = now.isoformat(" ")  # what the registry's DateTime type stores
            rows = [(run_id, k, step, v, now) for k, step, v in points[first : first + BATCH]]
            cursor = connection.cursor()
            if engine.dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows)
            connection.commit()
            cursor.close()
        return len(points) / (time.perf_counter() - start)
    finally:
        connection.close()


def through_logger(engine: Engine, run_id: int, points: list[tuple[str, int, float]]) -> float:
    start = time.perf_counter()
    with MetricLogger(engine, run_id, flush_every=BATCH, flush_seconds=3600) as logger:
        for key, step, value in points:
            logger.log(key, step, value)
    return len(points) / (time.perf_counter() - start)


def through_log_points(engine: Engine, run_id: int, points: list[tuple[str, int, float]]) -> float:
    start = time.perf_counter()
    for first in range(0, len(points), BATCH):
        with session_scope(engine) as s:
            log_points(s, run_id, points[first : first + BATCH])
    return len(points) / (time.perf_counter() - start)


def best_of(repeats: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(repeats))


def bench_metrics(engine: Engine, variant_id: int, count: int) -> None:
    points = points_for(count)
    table = raw_table(engine)
    # Interleave, best of 3 each, so a busy neighbour on the machine hurts both sides alike.
    raw, logger, direct = [], [], []
    for _ in range(3):
        raw.append(raw_executemany(engine, table, new_run_id(engine, variant_id), points))
        logger.append(through_logger(engine, new_run_id(engine, variant_id), points))
        direct.append(through_log_points(engine, new_run_id(engine, variant_id), points))
    print(f"  metrics, {count} points in batches of {BATCH} (best of 3):")
    print(f"    raw executemany INSERT     {max(raw):>10,.0f} points/s")
    print(f"    MetricLogger (upsert)      {max(logger):>10,.0f} points/s   ratio {max(logger) / max(raw):.2f}")
    print(f"    log_points (upsert)        {max(direct):>10,.0f} points/s   ratio {max(direct) / max(raw):.2f}")


def bench_run_creation(engine: Engine, variant_id: int, count: int = 300) -> None:
    start = time.perf_counter()
    for i in range(count):
        with session_scope(engine) as s:
            create_run(s, NewRun(variant_id=variant_id, width=256, height=256, seed=i), {"bench": "1"})
    print(f"  run creation: {count / (time.perf_counter() - start):,.0f} runs/s (one transaction each, with a tag)")


def fill_leaderboard(engine: Engine) -> None:
    """10,000 runs over a few variants, each with 2 evaluation steps of 4 metrics, bulk-inserted
    and then scored by rebuild_run_scores (20,000 add_evaluations calls take 30 s to minutes)."""
    now = utcnow()
    with session_scope(engine) as s:
        variants = [
            get_or_create_variant(
                s, NewVariant(name=f"{arch}-{i}", kind="baseline" if arch == "blend" else "interp", arch=arch, config={"i": i})
            ).id
            for arch in ARCHS
            for i in range(5)
        ]
        base = (s.scalar(text("SELECT MAX(id) FROM runs")) or 0) + 1
        runs = [
            {"id": base + i, "name": f"lb-{i}", "kind": "interp", "variant_id": variants[i % len(variants)],
             "width": 256, "height": 256, "resolution": "256", "status": "completed", "created_at": now}
            for i in range(LEADERBOARD_RUNS)
        ]
        s.execute(insert(SqlRun), runs)
        evaluations = [
            {"run_id": run["id"], "split": "val", "metric": metric, "step": step,
             "value": random.uniform(20, 35) if metric == "psnr" else random.random(), "created_at": now}
            for run in runs
            for step in (1000, 2000)
            for metric in ("psnr", "ssim", "lineart", "lpips")
        ]
        s.execute(insert(SqlEvaluation), evaluations)
        rebuild_run_scores(s)  # what add_evaluations would have kept, in one statement


def medians_ms(calls: dict[str, Callable[[], object]], repeats: int = 7) -> dict[str, float]:
    """Median wall time of each call, taking turns so a busy neighbour slows them all alike."""
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in timings.items()}


def bench_leaderboard(engine: Engine) -> None:
    def query(q: LeaderboardQuery) -> Callable[[], object]:
        def run() -> object:
            with session_scope(engine) as s:
                return leaderboard(s, q)

        return run

    def raw_sql(sql: str) -> Callable[[], object]:
        def run() -> object:
            with engine.connect() as connection:
                return connection.exec_driver_sql(sql).all()

        return run

    ms = medians_ms({
        "best per variant, by psnr": query(LeaderboardQuery()),
        "all runs, lineart, limit 20": query(LeaderboardQuery(metric="lineart", best_per_variant=False, limit=20)),
        "all isnet runs (full rows)": query(LeaderboardQuery(arch="isnet", best_per_variant=False)),
        "raw SQL on the view, isnet": raw_sql(ISNET_BY_PSNR.format(source="leaderboard")),
        "aggregating evaluations": raw_sql(ISNET_BY_PSNR.format(source=f"({AGGREGATING_LEADERBOARD}) old")),
    })
    baseline = ms.pop("aggregating evaluations")
    print(f"  leaderboard over {LEADERBOARD_RUNS:,} runs x 8 evaluations (median of 7, target < 100 ms):")
    for name, value in ms.items():
        print(f"    {name:30s} {value:7.1f} ms")
    ratio = baseline / ms["raw SQL on the view, isnet"]
    print(f"    same SQL aggregating evaluations (view before run_scores) {baseline:7.1f} ms   {ratio:.1f}x slower")


def bench_evaluation_writes(engine: Engine, count: int = 200) -> None:
    """add_evaluations, one transaction per call as a trainer's checkpoint does, against inserting
    the same evaluation rows alone (what it cost before run_scores); taking turns per call."""
    with session_scope(engine) as s:
        run_ids = list(s.scalars(select(SqlRun.id).order_by(SqlRun.id).limit(count)))
    with_scores, rows_only = [], []
    for step, run_id in enumerate(run_ids):
        start = time.perf_counter()
        with session_scope(engine) as s:
            add_evaluations(s, run_id, EVALUATED, split="val", step=step)
        with_scores.append(time.perf_counter() - start)
        start = time.perf_counter()
        with session_scope(engine) as s:
            now = utcnow()
            s.add_all(
                SqlEvaluation(run_id=run_id, split="val", metric=metric, value=value, step=step, created_at=now)
                for metric, value in EVALUATED.items()
            )
        rows_only.append(time.perf_counter() - start)
    upsert_ms, insert_ms = (statistics.median(t) * 1000 for t in (with_scores, rows_only))
    print(f"  evaluations, {len(EVALUATED)} metrics per call, one transaction each (median of {count}):")
    print(f"    evaluation rows only         {insert_ms:7.2f} ms")
    print(f"    add_evaluations (+ upsert)   {upsert_ms:7.2f} ms   ratio {upsert_ms / insert_ms:.2f}")


def bench(backend: str, points: int) -> None:
    with database(backend) as url:
        engine = make_engine(url)
        print(f"{backend} ({make_url(url).render_as_string(hide_password=True)}):")
        with session_scope(engine) as s:
            variant_id = get_or_create_variant(
                s, NewVariant(name="bench", kind="interp", arch="unet", config={})
            ).id
        bench_metrics(engine, variant_id, points)
        bench_run_creation(engine, variant_id)
        fill_leaderboard(engine)
        bench_leaderboard(engine)
        bench_evaluation_writes(engine)
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "mariadb", "both"), default="both")
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    random.seed(0)
    for backend in ("sqlite", "mariadb") if args.backend == "both" else (args.backend,):
        bench(backend, args.points)


if __name__ == "__main__":
    main()

"""Engine, URL and migration handling, on SQLite and MariaDB."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from registry.db import (
    VERSION_TABLE,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    in_transaction,
    make_engine,
    mask_url,
    resolve_url,
    session_scope,
    upgrade,
)
from registry.errors import DatabaseUnavailable, RegistryError, SchemaOutOfDate
from registry.schema import Base

# The golden schema: what `afi sql` users and their saved queries rely on.
GOLDEN_TABLES = {
    "datasets": "id name source format root width height shot_count frame_count triplet_count "
    "split_counts filter_stats params content_hash disk_bytes created_at",
    "dataset_frames": "id dataset_id shot idx path pts split",
    "dataset_triplets": "id dataset_id key split shot frame0_id frame1_id frame2_id t",
    "model_variants": "id name kind arch flow disc generator_config discriminator_config "
    "loss_config config param_count created_at",
    "experiments": "id name kind spec created_at",
    "runs": "id name kind variant_id dataset_id experiment_id stage stage_count parent_run_id "
    "width height resolution status backend host worker_id accelerator spot hourly_price "
    "gpu_hours cost_usd seed config config_hash git_commit step total_steps attempt "
    "trial_number sky_job_id message train_seconds created_at queued_at started_at finished_at "
    "heartbeat_at",
    "metrics": "id run_id key step value logged_at",
    "checkpoints": "id run_id step path size_bytes sha256 is_best metric_value created_at",
    "evaluations": "id run_id checkpoint_id dataset_id split metric value step created_at",
    "run_scores": "id run_id dataset_id dataset_key split best_psnr best_ssim best_ms_ssim best_lineart "
    "best_lpips eval_count updated_at",
    "tags": "id run_id key value",
}
GOLDEN_VIEWS = {
    "run_summary": "id name kind status arch flow disc variant resolution stage parent_run_id "
    "dataset experiment step total_steps train_seconds cost_usd created_at finished_at param_count",
    "leaderboard": "run_id run kind is_baseline experiment variant arch flow disc resolution stage "
    "status dataset split psnr ssim ms_ssim lineart lpips evals params train_seconds cost_usd",
}


def test_upgrade_from_empty_and_downgrade_to_base(db_url: str) -> None:
    assert current_revision(db_url) == (None, head_revision())
    upgrade(db_url)
    upgrade(db_url)  # idempotent
    assert current_revision(db_url) == (head_revision(), head_revision())
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        tables = {t: " ".join(c["name"] for c in inspector.get_columns(t)) for t in GOLDEN_TABLES}
        assert tables == GOLDEN_TABLES
        views = {v: " ".join(c["name"] for c in inspector.get_columns(v)) for v in GOLDEN_VIEWS}
        assert views == GOLDEN_VIEWS
        check_schema(engine)
        downgrade(db_url)
        assert current_revision(db_url) == (None, head_revision())
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) <= {"afi_alembic_version"}
        assert inspector.get_view_names() == []
        upgrade(db_url)
        check_schema(engine)
    finally:
        engine.dispose()


def test_models_match_the_migration(engine: Engine, backend: str) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, Base.metadata)
    if backend == "mariadb":
        # MariaDB reports JSON columns as LONGTEXT; everything else must match.
        diff = [d for d in diff if not (d[0][0] == "modify_type" and "JSON" in repr(d[0][-1]))]
    assert diff == []


def test_check_schema_on_empty_database_names_the_fix(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaOutOfDate, match=r"is empty .* run `afi db upgrade`$"):
            check_schema(engine)
    finally:
        engine.dispose()


def test_resolve_url_prefers_argument_then_env_then_afi_home(
    afi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_url(None) == f"sqlite:///{afi_home / 'registry.db'}"
    assert not afi_home.exists()  # resolving creates nothing; the first upgrade does
    monkeypatch.setenv("AFI_DB_URL", "sqlite:///env.db")
    assert resolve_url(None) == "sqlite:///env.db"
    assert resolve_url("sqlite:///arg.db") == "sqlite:///arg.db"


def test_mask_url_hides_the_password() -> None:
    masked = mask_url("mysql+pymysql://afi:s3cret@db.example:3306/afi")
    assert "s3cret" not in masked and "***" in masked
    assert "s3cret" not in mask_url("not a url://afi:s3cret@host")


@pytest.mark.parametrize(
    "url",
    [
        "not-a-url",
        "postgresql+nodriver://afi:s3cret@localhost/afi",
        "oracle://afi:s3cret@localhost/afi",
    ],
)
def test_bad_url_is_one_line_database_unavailable(url: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        make_engine(url)
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://afi:s3cret@127.0.0.1:1/afi",  # nothing listens on port 1
        "sqlite:////nonexistent-afi-dir/sub/registry.db",
    ],
)
def test_unreachable_database_is_one_line_database_unavailable(url: str) -> None:
    engine = make_engine(url)
    with pytest.raises(DatabaseUnavailable) as info:
        with session_scope(engine) as s:
            s.execute(text("SELECT 1"))
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message and "cannot use database" in message
    if url.startswith("sqlite"):  # a file that is not there is an empty registry, left uncreated
        assert current_revision(url) == (None, head_revision())
        assert not Path("/nonexistent-afi-dir").exists()
        return
    with pytest.raises(DatabaseUnavailable):
        current_revision(url)


def test_driver_errors_become_registry_errors_and_roll_back(engine: Engine) -> None:
    with pytest.raises(RegistryError, match="database error on"):
        with session_scope(engine) as s:
            s.execute(text("INSERT INTO experiments (name, kind, created_at) VALUES ('x', 'k', '2024-01-01')"))
            s.execute(text("SELECT nope FROM experiments"))
    with session_scope(engine) as s:
        assert s.scalar(text("SELECT COUNT(*) FROM experiments")) == 0


def _experiments(engine: Engine, count: int) -> list[int]:
    with session_scope(engine) as s:
        for index in range(count):
            s.execute(
                text("INSERT INTO experiments (name, kind, created_at) VALUES (:name, 'k', '2024-01-01')"),
                {"name": f"e{index}"},
            )
        return list(s.scalars(text("SELECT id FROM experiments ORDER BY id")))


def test_a_transaction_the_server_aborts_for_a_deadlock_runs_again(engine: Engine, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite transactions take the write lock as they begin: there is no deadlock to provoke")
    first, second, *others = _experiments(engine, 6)
    ours_holds_first, theirs_started = threading.Event(), threading.Event()

    def theirs() -> None:
        # Locks `second` then `first`; it changes more rows, so InnoDB picks ours as the victim.
        with engine.begin() as connection:
            for row in (second, *others):
                connection.execute(text("UPDATE experiments SET kind = 'theirs' WHERE id = :id"), {"id": row})
            theirs_started.set()
            ours_holds_first.wait(10)
            connection.execute(text("UPDATE experiments SET kind = 'theirs' WHERE id = :id"), {"id": first})

    attempts = []

    def ours(s: Session) -> str:
        attempts.append(1)
        s.execute(text("UPDATE experiments SET kind = 'ours' WHERE id = :id"), {"id": first})
        if len(attempts) == 1:
            ours_holds_first.set()
            time.sleep(0.5)  # their update of `first` is now waiting for us
        s.execute(text("UPDATE experiments SET kind = 'ours' WHERE id = :id"), {"id": second})
        return "done"

    other = threading.Thread(target=theirs)
    other.start()
    assert theirs_started.wait(10)
    assert in_transaction(engine, ours) == "done"
    other.join(10)
    assert len(attempts) == 2  # aborted once by the deadlock, then committed after theirs
    with session_scope(engine) as s:
        kinds = dict(s.execute(text("SELECT id, kind FROM experiments")).all())
    assert kinds[first] == kinds[second] == "ours" and {kinds[row] for row in others} == {"theirs"}


def test_other_errors_are_not_run_again(engine: Engine) -> None:
    attempts = []

    def broken(s: Session) -> None:
        attempts.append(1)
        s.execute(text("SELECT nope FROM experiments"))

    with pytest.raises(RegistryError, match="database error on"):
        in_transaction(engine, broken)
    assert len(attempts) == 1

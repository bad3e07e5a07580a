"""Registry tables (SQLAlchemy 2 typed ORM). Tables only: queries live in the per-entity modules.

Portability rules, so SQLite and MySQL/MariaDB behave the same:
- every constraint and index is named (Alembic can then alter or drop it on both backends);
- MySQL tables are InnoDB, utf8mb4 with a binary collation, so names compare case-sensitively as
  they do in SQLite;
- timestamps are naive UTC; MySQL keeps their microseconds (DATETIME(6));
- floats are DOUBLE (MySQL's FLOAT is single precision); non-finite values are stored as NULL
  because MySQL rejects NaN and infinities;
- JSON columns use the generic JSON type (TEXT on SQLite, LONGTEXT + json_valid() on MariaDB);
- a generated column stands in for a nullable column in a unique key (`run_scores.dataset_key`):
  both backends let NULLs repeat in a UNIQUE key, and MariaDB has no expression indexes.
Only Alembic creates these tables (registry/migrations); tests upgrade a fresh database too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

RUN_STATUSES = ("created", "queued", "running", "completed", "failed", "preempted", "cancelled")
RUN_KINDS = ("interp", "autoencoder", "baseline")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MYSQL_TABLE_ARGS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Json = JSON(none_as_null=True)
Name = String(255)
Short = String(64)
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SqlDataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    source: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Short)
    root: Mapped[str] = mapped_column(Text)  # storage folder; frame paths are relative to it
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    shot_count: Mapped[int] = mapped_column(Integer, default=0)
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    triplet_count: Mapped[int] = mapped_column(Integer, default=0)
    split_counts: Mapped[dict[str, Any] | None] = mapped_column(Json)
    filter_stats: Mapped[dict[str, Any] | None] = mapped_column(Json)
    params: Mapped[dict[str, Any] | None] = mapped_column(Json)
    content_hash: Mapped[str | None] = mapped_column(Short)
    disk_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlFrame(Base):
    __tablename__ = "dataset_frames"
    __table_args__ = (
        UniqueConstraint("dataset_id", "shot", "idx", name="uq_dataset_frames_position"),
        Index("ix_dataset_frames_split", "dataset_id", "split"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    shot: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)  # frame index within its shot
    path: Mapped[str] = mapped_column(Text)  # relative to the dataset root
    pts: Mapped[float | None] = mapped_column(Double)  # presentation time, seconds
    split: Mapped[str] = mapped_column(Short)


class SqlTriplet(Base):
    __tablename__ = "dataset_triplets"
    __table_args__ = (
        UniqueConstraint("dataset_id", "key", name="uq_dataset_triplets_key"),
        Index("ix_dataset_triplets_split", "dataset_id", "split"),
        # SQLite needs these for ON DELETE CASCADE from dataset_frames not to scan per frame.
        Index("ix_dataset_triplets_frame0_id", "frame0_id"),
        Index("ix_dataset_triplets_frame1_id", "frame1_id"),
        Index("ix_dataset_triplets_frame2_id", "frame2_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Name)
    split: Mapped[str] = mapped_column(Short)
    shot: Mapped[int] = mapped_column(Integer)
    frame0_id: Mapped[int] = mapped_column(ForeignKey("dataset_frames.id", ondelete="CASCADE"))
    frame1_id: Mapped[int] = mapped_column(ForeignKey("dataset_frames.id", ondelete="CASCADE"))
    frame2_id: Mapped[int] = mapped_column(ForeignKey("dataset_frames.id", ondelete="CASCADE"))
    t: Mapped[float] = mapped_column(Double)  # time of frame1 between frame0 (0) and frame2 (1)


class SqlVariant(Base):
    __tablename__ = "model_variants"
    __table_args__ = (Index("ix_model_variants_arch", "arch"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    kind: Mapped[str] = mapped_column(Short)
    arch: Mapped[str] = mapped_column(Short)
    flow: Mapped[str] = mapped_column(Short, default="none")
    disc: Mapped[str] = mapped_column(Short, default="none")
    generator_config: Mapped[dict[str, Any] | None] = mapped_column(Json)
    discriminator_config: Mapped[dict[str, Any] | None] = mapped_column(Json)
    loss_config: Mapped[dict[str, Any] | None] = mapped_column(Json)
    config: Mapped[dict[str, Any]] = mapped_column(Json)  # the whole variant, as created
    param_count: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlExperiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    kind: Mapped[str] = mapped_column(Short)  # curriculum, ablation, study, single, quickstart...
    spec: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlRun(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in RUN_STATUSES) + ")", name="status"
        ),
        Index("ix_runs_status_id", "status", "id"),  # workers claim the oldest queued run
        Index("ix_runs_experiment_id", "experiment_id"),
        Index("ix_runs_variant_id", "variant_id"),
        Index("ix_runs_dataset_id", "dataset_id"),
        Index("ix_runs_parent_run_id", "parent_run_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    kind: Mapped[str] = mapped_column(Short)
    variant_id: Mapped[int] = mapped_column(ForeignKey("model_variants.id"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL")
    )
    stage: Mapped[int] = mapped_column(Integer, default=0)
    stage_count: Mapped[int] = mapped_column(Integer, default=1)
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[str] = mapped_column(Short)  # '256' or '512x256'
    status: Mapped[str] = mapped_column(String(16), default="created")
    backend: Mapped[str] = mapped_column(String(16), default="local")
    host: Mapped[str | None] = mapped_column(Name)
    worker_id: Mapped[str | None] = mapped_column(Name)
    accelerator: Mapped[str | None] = mapped_column(Short)
    spot: Mapped[bool] = mapped_column(Boolean, default=False)
    hourly_price: Mapped[float | None] = mapped_column(Double)
    gpu_hours: Mapped[float] = mapped_column(Double, default=0.0)
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    config: Mapped[dict[str, Any] | None] = mapped_column(Json)  # full resolved RunConfig
    config_hash: Mapped[str | None] = mapped_column(Short)
    git_commit: Mapped[str | None] = mapped_column(Short)
    step: Mapped[int] = mapped_column(Integer, default=0)  # last completed step
    total_steps: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # times it entered `running`
    trial_number: Mapped[int | None] = mapped_column(Integer)
    sky_job_id: Mapped[str | None] = mapped_column(Short)
    message: Mapped[str | None] = mapped_column(Text)  # why it failed / was preempted
    train_seconds: Mapped[float] = mapped_column(Double, default=0.0)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    queued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)

    variant: Mapped[SqlVariant] = relationship()
    dataset: Mapped[SqlDataset | None] = relationship()
    experiment: Mapped[SqlExperiment | None] = relationship()
    tags: Mapped[list[SqlTag]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SqlMetric(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        # The upsert key: a resumed run that repeats steps overwrites instead of duplicating.
        UniqueConstraint("run_id", "key", "step", name="uq_metrics_run_key_step"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Name)  # slash-namespaced: train/loss, val/psnr, loss/D/r1
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Double)  # NULL for NaN / infinity
    logged_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlCheckpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (
        UniqueConstraint("run_id", "step", name="uq_checkpoints_run_step"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Short)
    is_best: Mapped[bool] = mapped_column(Boolean, default=False)
    metric_value: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlEvaluation(Base):
    __tablename__ = "evaluations"
    __table_args__ = (
        # Covers rebuild_run_scores' GROUP BY (run, dataset, split) with the metric and value, so
        # it reads this index in order and never the table; also serves run_id lookups.
        Index("ix_evaluations_leaderboard", "run_id", "dataset_id", "split", "metric", "value"),
        Index("ix_evaluations_dataset_split_metric", "dataset_id", "split", "metric"),
        Index("ix_evaluations_checkpoint_id", "checkpoint_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    checkpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkpoints.id", ondelete="SET NULL")
    )
    # Scores on a dataset mean nothing once it is gone, so they go with it.
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(Short)
    metric: Mapped[str] = mapped_column(Short)  # psnr, ssim, ms_ssim, lineart, lpips
    value: Mapped[float | None] = mapped_column(Double)
    step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlRunScore(Base):
    """A run's best value of each ranked metric over every evaluation on one (dataset, split).

    `add_evaluations` keeps it in step, in the evaluations' own transaction, so the leaderboard
    reads one row per run instead of aggregating every evaluation at each query.
    """

    __tablename__ = "run_scores"
    __table_args__ = (
        UniqueConstraint("run_id", "dataset_key", "split", name="uq_run_scores_run_dataset_split"),
        # SQLite needs it for ON DELETE CASCADE from datasets not to scan per dataset.
        Index("ix_run_scores_dataset_id", "dataset_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    # dataset_id with NULL as 0 (ids start at 1), so evaluations without a dataset share one row.
    # Declared nullable only because MariaDB refuses NOT NULL on a generated column.
    dataset_key: Mapped[int] = mapped_column(
        Integer, Computed("COALESCE(dataset_id, 0)", persisted=True), nullable=True
    )
    split: Mapped[str] = mapped_column(Short)
    best_psnr: Mapped[float | None] = mapped_column(Double)  # MAX over evaluations
    best_ssim: Mapped[float | None] = mapped_column(Double)  # MAX
    best_ms_ssim: Mapped[float | None] = mapped_column(Double)  # MAX
    best_lineart: Mapped[float | None] = mapped_column(Double)  # MIN: a distance
    best_lpips: Mapped[float | None] = mapped_column(Double)  # MIN: a distance
    eval_count: Mapped[int] = mapped_column(Integer)  # evaluation rows, every metric counted
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class SqlTag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_tags_run_key"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Name)
    value: Mapped[str] = mapped_column(Text)

"""Initial registry schema: datasets, variants, experiments, runs, metrics, checkpoints,
evaluations, run_scores, tags, and the `run_summary` / `leaderboard` views.

Revision ID: 0001
Revises:
Create Date: 2025-11-25

A migration is a frozen copy of the schema at its revision: it spells its types out here rather
than importing registry.schema, which keeps changing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
JSON = sa.JSON(none_as_null=True)
MYSQL_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

# Plain SQL that SQLite and MariaDB both accept.
RUN_SUMMARY_VIEW = """
CREATE VIEW run_summary AS
SELECT r.id AS id, r.name AS name, r.kind AS kind, r.status AS status,
       v.arch AS arch, v.flow AS flow, v.disc AS disc, v.name AS variant,
       r.resolution AS resolution, r.stage AS stage, r.parent_run_id AS parent_run_id,
       d.name AS dataset, x.name AS experiment, r.step AS step, r.total_steps AS total_steps,
       r.train_seconds AS train_seconds, r.cost_usd AS cost_usd,
       r.created_at AS created_at, r.finished_at AS finished_at, v.param_count AS param_count
FROM runs r
JOIN model_variants v ON v.id = r.variant_id
LEFT JOIN datasets d ON d.id = r.dataset_id
LEFT JOIN experiments x ON x.id = r.experiment_id
"""

# One row per (run, evaluated dataset, split), read from run_scores: each metric is its BEST
# value over every evaluation of the run (all steps and checkpoints), not the last one; higher is
# better except for lineart (chamfer line distance) and lpips. add_evaluations keeps run_scores
# up to date, so the view joins one row per run and aggregates nothing. Every score has its run
# and variant (NOT NULL foreign keys), so LEFT JOIN returns what JOIN would; it keeps MariaDB
# reading run_scores first when nothing filters on runs or variants, instead of joining every
# run of every variant to its scores (2x faster over 10,000 runs). A filter on them makes the
# join an inner one again.
LEADERBOARD_VIEW = """
CREATE VIEW leaderboard AS
SELECT r.id AS run_id, r.name AS run, r.kind AS kind,
       CASE WHEN r.kind = 'baseline' THEN 1 ELSE 0 END AS is_baseline,
       x.name AS experiment, v.name AS variant, v.arch AS arch, v.flow AS flow, v.disc AS disc,
       r.resolution AS resolution, r.stage AS stage, r.status AS status,
       d.name AS dataset, s.split AS split,
       s.best_psnr AS psnr, s.best_ssim AS ssim, s.best_ms_ssim AS ms_ssim,
       s.best_lineart AS lineart, s.best_lpips AS lpips, s.eval_count AS evals,
       v.param_count AS params, r.train_seconds AS train_seconds, r.cost_usd AS cost_usd
FROM run_scores s
LEFT JOIN runs r ON r.id = s.run_id
LEFT JOIN model_variants v ON v.id = r.variant_id
LEFT JOIN datasets d ON d.id = s.dataset_id
LEFT JOIN experiments x ON x.id = r.experiment_id
"""


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('format', sa.String(length=64), nullable=False),
    sa.Column('root', sa.Text(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('shot_count', sa.Integer(), nullable=False),
    sa.Column('frame_count', sa.Integer(), nullable=False),
    sa.Column('triplet_count', sa.Integer(), nullable=False),
    sa.Column('split_counts', JSON, nullable=True),
    sa.Column('filter_stats', JSON, nullable=True),
    sa.Column('params', JSON, nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('disk_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('name', name=op.f('uq_datasets_name')),
    **MYSQL_TABLE_ARGS,
    )
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('spec', JSON, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    sa.UniqueConstraint('name', name=op.f('uq_experiments_name')),
    **MYSQL_TABLE_ARGS,
    )
    op.create_table('model_variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('arch', sa.String(length=64), nullable=False),
    sa.Column('flow', sa.String(length=64), nullable=False),
    sa.Column('disc', sa.String(length=64), nullable=False),
    sa.Column('generator_config', JSON, nullable=True),
    sa.Column('discriminator_config', JSON, nullable=True),
    sa.Column('loss_config', JSON, nullable=True),
    sa.Column('config', JSON, nullable=False),
    sa.Column('param_count', sa.BigInteger(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_variants')),
    sa.UniqueConstraint('name', name=op.f('uq_model_variants_name')),
    **MYSQL_TABLE_ARGS,
    )
    op.create_index('ix_model_variants_arch', 'model_variants', ['arch'])

    op.create_table('dataset_frames',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('shot', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('pts', sa.Double(), nullable=True),
    sa.Column('split', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_dataset_frames_dataset_id_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_frames')),
    sa.UniqueConstraint('dataset_id', 'shot', 'idx', name='uq_dataset_frames_position'),
    **MYSQL_TABLE_ARGS,
    )
    op.create_index('ix_dataset_frames_split', 'dataset_frames', ['dataset_id', 'split'])

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('experiment_id', sa.Integer(), nullable=True),
    sa.Column('stage', sa.Integer(), nullable=False),
    sa.Column('stage_count', sa.Integer(), nullable=False),
    sa.Column('parent_run_id', sa.Integer(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('resolution', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('worker_id', sa.String(length=255), nullable=True),
    sa.Column('accelerator', sa.String(length=64), nullable=True),
    sa.Column('spot', sa.Boolean(), nullable=False),
    sa.Column('hourly_price', sa.Double(), nullable=True),
    sa.Column('gpu_hours', sa.Double(), nullable=False),
    sa.Column('cost_usd', sa.Double(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('config', JSON, nullable=True),
    sa.Column('config_hash', sa.String(length=64), nullable=True),
    sa.Column('git_commit', sa.String(length=64), nullable=True),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('total_steps', sa.Integer(), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('trial_number', sa.Integer(), nullable=True),
    sa.Column('sky_job_id', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('train_seconds', sa.Double(), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('queued_at', TIMESTAMP, nullable=True),
    sa.Column('started_at', TIMESTAMP, nullable=True),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.Column('heartbeat_at', TIMESTAMP, nullable=True),
    sa.CheckConstraint("status IN ('created', 'queued', 'running', 'completed', 'failed', 'preempted', 'cancelled')", name=op.f('ck_runs_status')),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_runs_dataset_id_datasets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_runs_experiment_id_experiments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_run_id'], ['runs.id'], name=op.f('fk_runs_parent_run_id_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['variant_id'], ['model_variants.id'], name=op.f('fk_runs_variant_id_model_variants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('name', name=op.f('uq_runs_name')),
    **MYSQL_TABLE_ARGS,
    )
    op.create_index('ix_runs_dataset_id', 'runs', ['dataset_id'])
    op.create_index('ix_runs_experiment_id', 'runs', ['experiment_id'])
    op.create_index('ix_runs_parent_run_id', 'runs', ['parent_run_id'])
    op.create_index('ix_runs_status_id', 'runs', ['status', 'id'])
    op.create_index('ix_runs_variant_id', 'runs', ['variant_id'])

    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('is_best', sa.Boolean(), nullable=False),
    sa.Column('metric_value', sa.Double(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_checkpoints_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints')),
    sa.UniqueConstraint('run_id', 'step', name='uq_checkpoints_run_step'),
    **MYSQL_TABLE_ARGS,
    )
    op.create_table('dataset_triplets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('split', sa.String(length=64), nullable=False),
    sa.Column('shot', sa.Integer(), nullable=False),
    sa.Column('frame0_id', sa.Integer(), nullable=False),
    sa.Column('frame1_id', sa.Integer(), nullable=False),
    sa.Column('frame2_id', sa.Integer(), nullable=False),
    sa.Column('t', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_dataset_triplets_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['frame0_id'], ['dataset_frames.id'], name=op.f('fk_dataset_triplets_frame0_id_dataset_frames'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['frame1_id'], ['dataset_frames.id'], name=op.f('fk_dataset_triplets_frame1_id_dataset_frames'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['frame2_id'], ['dataset_frames.id'], name=op.f('fk_dataset_triplets_frame2_id_dataset_frames'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_triplets')),
    sa.UniqueConstraint('dataset_id', 'key', name='uq_dataset_triplets_key'),
    **MYSQL_TABLE_ARGS,
    )
    op.create_index('ix_dataset_triplets_frame0_id', 'dataset_triplets', ['frame0_id'])
    op.create_index('ix_dataset_triplets_frame1_id', 'dataset_triplets', ['frame1_id'])
    op.create_index('ix_dataset_triplets_frame2_id', 'dataset_triplets', ['frame2_id'])
    op.create_index('ix_dataset_triplets_split', 'dataset_triplets', ['dataset_id', 'split'])

    op.create_table('metrics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('logged_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics')),
    sa.UniqueConstraint('run_id', 'key', 'step', name='uq_metrics_run_key_step'),
    **MYSQL_TABLE_ARGS,
    )
    op.create_table('tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_tags_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
    sa.UniqueConstraint('run_id', 'key', name='uq_tags_run_key'),
    **MYSQL_TABLE_ARGS,
    )
    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('split', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoints.id'], name=op.f('fk_evaluations_checkpoint_id_checkpoints'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_evaluations_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_evaluations_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
    **MYSQL_TABLE_ARGS,
    )
    op.create_index('ix_evaluations_checkpoint_id', 'evaluations', ['checkpoint_id'])
    op.create_index('ix_evaluations_dataset_split_metric', 'evaluations', ['dataset_id', 'split', 'metric'])
    op.create_index(
        'ix_evaluations_leaderboard', 'evaluations', ['run_id', 'dataset_id', 'split', 'metric', 'value']
    )
    op.create_table('run_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=True),
    sa.Column('dataset_key', sa.Integer(), sa.Computed('COALESCE(dataset_id, 0)', persisted=True), nullable=True),
    sa.Column('split', sa.String(length=64), nullable=False),
    sa.Column('best_psnr', sa.Double(), nullable=True),
    sa.Column('best_ssim', sa.Double(), nullable=True),
    sa.Column('best_ms_ssim', sa.Double(), nullable=True),
    sa.Column('best_lineart', sa.Double(), nullable=True),
    sa.Column('best_lpips', sa.Double(), nullable=True),
    sa.Column('eval_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_run_scores_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_scores_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_scores')),
    sa.UniqueConstraint('run_id', 'dataset_key', 'split', name='uq_run_scores_run_dataset_split'),
    **MYSQL_TABLE_ARGS,
    )
    op.create_index('ix_run_scores_dataset_id', 'run_scores', ['dataset_id'])

    op.execute(RUN_SUMMARY_VIEW)
    op.execute(LEADERBOARD_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS leaderboard")
    op.execute("DROP VIEW IF EXISTS run_summary")
    for table in (
        "run_scores",
        "evaluations",
        "tags",
        "metrics",
        "dataset_triplets",
        "checkpoints",
        "runs",
        "dataset_frames",
        "model_variants",
        "experiments",
        "datasets",
    ):
        op.drop_table(table)

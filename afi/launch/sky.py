"""SkyPilot tasks for AFI runs: one managed job per run, on a (spot) GPU, resumable.

The task ships this AFI checkout (`workdir`, filtered by .gitignore), installs it, and runs
`afi run start RUN --resume`. Checkpoints go to `~/.afi/runs` on a bucket mount, so a replacement
instance after a spot preemption finds them; SkyPilot's managed-job controller does the
relaunching. The registry URL travels as a SkyPilot *secret*: the task dict and any YAML AFI prints
hold no value for it (the printed form shows the URL with its password masked), and SkyPilot
redacts secrets in its own logs and dashboards.

SkyPilot is the optional `cloud` extra: everything here imports it lazily.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afi.errors import AfiError, UsageError
from afi.launch.pricing import parse_accelerator
from registry.db import mask_url

SECRET_ENV = "AFI_DB_URL"
REMOTE_AFI_HOME = "~/.afi"
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
# A spot preemption is recovered without limit by the controller; these are restarts after the
# run itself failed (a bug will fail again, a flaky disk or driver may not).
RESTARTS_ON_ERRORS = 1


@dataclass(frozen=True)
class SkyOptions:
    """Where and how runs train in the cloud (`afi experiment launch --backend sky ...`)."""

    accelerator: str = "A10G:1"
    spot: bool = True
    bucket: str = "afi-runs"  # checkpoints: mounted at ~/.afi/runs
    data_bucket: str | None = None  # datasets, mounted at ~/.afi/datasets when given
    store: str | None = None  # s3, gcs, azure, r2...; None lets SkyPilot choose with the cloud
    infra: str | None = None  # e.g. "aws", "gcp/us-central1"; None: wherever is cheapest
    workdir: Path = CHECKOUT_ROOT

    def validate(self) -> SkyOptions:
        parse_accelerator(self.accelerator)
        for what, bucket in (("--bucket", self.bucket), ("--data-bucket", self.data_bucket)):
            if bucket is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise UsageError(
                    f"bad {what} {bucket!r}: use 3-63 lowercase letters, digits, '.' or '-'"
                )
        if not (self.workdir / "pyproject.toml").is_file():
            raise UsageError(
                f"the sky backend ships the AFI source checkout, but {self.workdir} is not one: "
                "run AFI from a git checkout (pip install -e .)"
            )
        return self


def require_skypilot() -> None:
    if importlib.util.find_spec("sky") is None:
        raise UsageError(
            "the sky backend needs SkyPilot: pip install 'afi[cloud]' (then `sky check`)"
        )


def job_name(run_name: str) -> str:
    """SkyPilot names: lowercase letters, digits and '-'."""
    return "afi-" + re.sub(r"[^a-z0-9-]+", "-", run_name.lower()).strip("-")[:58]


def task_config(run_name: str, options: SkyOptions) -> dict[str, Any]:
    """The SkyPilot task for one run, as the dict its YAML form holds. The registry URL is a
    secret without a value here; `build_task` supplies it."""
    resources: dict[str, Any] = {
        "accelerators": options.accelerator,
        "use_spot": options.spot,
        "job_recovery": {"strategy": "FAILOVER", "max_restarts_on_errors": RESTARTS_ON_ERRORS},
    }
    if options.infra is not None:
        resources["infra"] = options.infra
    mounts = {f"{REMOTE_AFI_HOME}/runs": _bucket(options.bucket, options.store)}
    if options.data_bucket is not None:
        mounts[f"{REMOTE_AFI_HOME}/datasets"] = _bucket(options.data_bucket, options.store)
    return {
        "name": job_name(run_name),
        "workdir": str(options.workdir),
        "resources": resources,
        "envs": {"AFI_HOME": REMOTE_AFI_HOME},
        "secrets": {SECRET_ENV: None},
        "file_mounts": mounts,
        "setup": "pip install --quiet --upgrade pip && pip install --quiet .",
        # --resume: after a preemption the controller reruns this on a new instance; the trainer
        # picks up the last checkpoint from the mounted bucket.
        "run": f"afi run start {shlex.quote(run_name)} --resume",
    }


def _bucket(name: str, store: str | None) -> dict[str, Any]:
    # MOUNT_CACHED writes locally and uploads behind, and supports the rename that atomic
    # checkpoint writes rely on (plain MOUNT does not).
    bucket: dict[str, Any] = {"name": name, "mode": "MOUNT_CACHED", "persistent": True}
    if store is not None:
        bucket["store"] = store
    return bucket


def build_task(config: dict[str, Any], db_url: str) -> Any:
    """A `sky.Task` from `config`, validated by SkyPilot itself (offline), the registry URL set
    as a secret override: it never enters the dict, so SkyPilot's copy of the user YAML lacks it."""
    require_skypilot()
    import sky

    try:
        return sky.Task.from_yaml_config(
            copy.deepcopy(config), secrets_overrides=[(SECRET_ENV, db_url)]
        )
    except ValueError as exc:  # schema and storage-spec errors are ValueErrors
        detail = " ".join(str(exc).split())
        raise UsageError(f"SkyPilot refused the task for {config['name']}: {detail}") from None


def task_yaml(config: dict[str, Any], db_url: str) -> str:
    """The task as YAML, for --dry-run: the secret shows as the URL with its password masked."""
    import yaml  # SkyPilot's own dependency, and PyYAML is what reads task files

    shown = copy.deepcopy(config)
    shown["secrets"] = {SECRET_ENV: mask_url(db_url)}
    out = io.StringIO()
    yaml.safe_dump(shown, out, sort_keys=False, default_flow_style=False)
    return out.getvalue()


def check_shared_registry(db_url: str) -> None:
    """A cloud job must reach the registry: a local SQLite file cannot be."""
    if db_url.startswith("sqlite"):
        raise UsageError(
            f"the sky backend needs a registry the cloud can reach, not {mask_url(db_url)}: "
            "set AFI_DB_URL (or --db) to a MySQL/MariaDB URL"
        )


def submit(task: Any) -> str:
    """Submit `task` as a managed job (SkyPilot recovers it after preemption); its job id."""
    import sky

    try:
        job_ids, _handle = sky.get(sky.jobs.launch(task, name=task.name))
    except Exception as exc:  # SkyPilot raises many types (credentials, quota, API server)
        raise AfiError(f"SkyPilot could not submit {task.name}: {exc}: see `sky check`") from None
    if not job_ids:
        raise AfiError(f"SkyPilot accepted {task.name} but returned no job id: see `sky jobs queue`")
    return str(job_ids[0])


def managed_job_state(job_id: str) -> dict[str, Any]:
    """The managed job's state for `afi run show` (asks SkyPilot's API server, which it starts
    locally when none is configured; a few seconds)."""
    require_skypilot()
    import sky

    try:
        records = sky.get(sky.jobs.queue(refresh=False, job_ids=[int(job_id)]))
    except Exception as exc:  # not reachable, controller down, no credentials
        raise AfiError(f"cannot read managed job {job_id} from SkyPilot: {exc}") from None
    for record in records:
        found = record if isinstance(record, dict) else record.model_dump()
        if str(found.get("job_id")) == str(job_id):
            status = found.get("status")
            return {
                "job_id": job_id,
                "status": getattr(status, "value", str(status)),
                "recovery_count": found.get("recovery_count"),
                "resources": found.get("cluster_resources") or found.get("resources"),
                "region": found.get("region"),
            }
    raise AfiError(f"SkyPilot has no managed job {job_id}: see `sky jobs queue --all-users`")

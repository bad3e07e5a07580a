"""SkyPilot tasks: parsed and validated by SkyPilot itself (offline), spot + accelerator + bucket
mount + env, and the registry URL a secret that no file, output or log ever holds."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from afi.errors import UsageError
from afi.launch.experiments import Placement, plan_launch
from afi.launch.pricing import load_price_table
from afi.launch.sky import SkyOptions, build_task, check_shared_registry, task_config
from afi.launch.spec import load_spec, parse_set

sky = pytest.importorskip("sky", reason="SkyPilot (the `cloud` extra) is not installed")

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Sup3r-s3cret-Pw"
AFI = str(Path(sys.executable).with_name("afi"))  # the console script of this environment
DB_URL = f"mysql+pymysql://afi:{PASSWORD}@db.example.org:3306/afi"


def test_task_is_valid_for_skypilot_with_spot_gpu_bucket_and_secret(afi_home: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    spec = load_spec(REPO / "experiments" / "ablation-arch.toml", parse_set(["stage.steps=10"]))
    plan = plan_launch(
        spec, Placement("sky", "A10G:1", spot=True), load_price_table(),
        SkyOptions(bucket="afi-ckpt", data_bucket="afi-data", store="s3"),
    )
    assert len(plan.sky_tasks) == 6
    config = plan.sky_tasks[0]
    assert PASSWORD not in json.dumps(config)  # the dict (what a YAML file would hold)
    task = build_task(config, DB_URL)

    (resources,) = task.resources
    assert resources.use_spot is True
    assert resources.accelerators == {"A10G": 1}
    assert task.run == "afi run start ablation-arch-unet-none --resume"
    assert "pip install" in task.setup
    assert task.envs["AFI_HOME"] == "~/.afi"
    checkpoints = task.storage_mounts["~/.afi/runs"]
    assert checkpoints.name == "afi-ckpt" and checkpoints.mode.value == "MOUNT_CACHED"
    assert task.storage_mounts["~/.afi/datasets"].name == "afi-data"
    assert task.secrets["AFI_DB_URL"].get_secret_value() == DB_URL  # delivered, as a secret
    # SkyPilot's copy of the task as written, and its redacted dump, hold no password.
    assert PASSWORD not in yaml.safe_dump(task.to_yaml_config(use_user_specified_yaml=True))
    assert PASSWORD not in caplog.text


def test_dry_run_prints_valid_yaml_and_leaks_no_secret(tmp_path: Path) -> None:
    """The CLI end to end, in a fresh process whose HOME and AFI_HOME we can search afterwards."""
    home, afi_home = tmp_path / "home", tmp_path / "afi_home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "AFI_HOME": str(afi_home), "AFI_DB_URL": DB_URL}
    result = subprocess.run(
        [AFI, "--debug", "experiment", "launch",
         str(REPO / "experiments" / "ablation-disc.toml"), "--backend", "sky", "--gpu", "A10G:1",
         "--spot", "--dry-run", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] and len(plan["sky_tasks"]) == 8
    shown = yaml.safe_load(plan["sky_tasks"][0])
    assert shown["secrets"] == {"AFI_DB_URL": "mysql+pymysql://afi:***@db.example.org:3306/afi"}
    assert shown["resources"]["use_spot"] is True
    sky.Task.from_yaml_config(shown)  # what --dry-run prints is itself a valid task
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(home in p.parents for p in written)  # SkyPilot did write its state under HOME...
    for path in written:  # ... and nothing anywhere holds the password
        assert PASSWORD.encode() not in path.read_bytes(), path
    assert not afi_home.exists() or not any(afi_home.rglob("*.db"))  # a dry run writes no registry


def test_sky_backend_needs_a_shared_registry_and_a_gpu(afi_home: Path) -> None:
    with pytest.raises(UsageError, match="needs a registry the cloud can reach"):
        check_shared_registry(f"sqlite:///{afi_home}/registry.db")
    spec = load_spec(REPO / "experiments" / "curriculum.toml")
    with pytest.raises(UsageError, match="needs an accelerator"):
        plan_launch(spec, Placement("sky"), load_price_table())
    with pytest.raises(UsageError, match="bad --bucket"):
        SkyOptions(bucket="Not_A_Bucket").validate()
    broken = task_config("r", SkyOptions())
    broken["resources"]["use_spot"] = "sometimes"
    with pytest.raises(UsageError, match="SkyPilot refused the task"):
        build_task(broken, DB_URL)

"""Prices, cost estimates and the budget: a launch past the cap is refused unless --force."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from afi.cli.main import app
from afi.config import RunConfig, StageConfig, VariantConfig
from afi.errors import UsageError
from afi.launch.budget import UsageMeter, estimate_hours
from afi.launch.pricing import _cached_catalogue_prices, load_price_table, parse_accelerator
from registry import runs as registry_runs
from registry.db import session_scope

runner = CliRunner()

# No dataset and no grid beyond two runs: the budget is what is under test, not training.
SPEC = """
[[stages]]
res = 256
steps = 500000
batch = 16

[grid]
arch = ["unet", "isnet"]
"""


def afi(db_url: str, *args: str):
    return runner.invoke(app, ["--db", db_url, *args])


def test_estimate_scales_with_pixels_steps_and_width() -> None:
    config = RunConfig(stages=(StageConfig(width=100, height=100, steps=360, batch=10),)).validate()
    # 360 * 10 * 1e4 px = 36 Mpx at 0.01 Mpx/s = 3600 s = 1 h, at the reference width 32.
    assert estimate_hours(config, 0.01) == pytest.approx(1.0)
    wider = RunConfig(variant=VariantConfig(width=64), stages=config.stages).validate()
    assert estimate_hours(wider, 0.01) == pytest.approx(4.0)


def test_a_time_budget_caps_the_estimate() -> None:
    stage = StageConfig(width=100, height=100, steps=360, batch=10)
    budgeted = RunConfig(stages=(replace(stage, minutes=30), replace(stage, minutes=120))).validate()
    assert estimate_hours(budgeted, 0.01) == pytest.approx(0.5 + 1.0)  # 30 min, then the steps' 1 h


def test_quotes_come_from_shipped_then_user_table(afi_home: Path) -> None:
    table = load_price_table()
    assert table.cap_usd == 200.0
    assert table.quote(None).hourly_usd == 0.0 and table.quote(None).label == "local:1"
    a10g = table.quote("A10G:2", spot=True)
    assert (a10g.accelerator, a10g.count) == ("A10G", 2)
    assert a10g.source in ("afi defaults", "skypilot catalogue")  # the latter when one is cached
    assert a10g.hourly_usd == pytest.approx(2 * table.lookup("A10G").spot)

    afi_home.mkdir(parents=True)
    (afi_home / "prices.toml").write_text(
        "[budget]\ncap_usd = 50\n[accelerators.A10G]\nspot = 0.2\n[accelerators.MI300X]\non_demand = 3.0\n"
    )
    table = load_price_table()
    assert table.cap_usd == 50.0
    edited = table.quote("a10g", spot=True)  # names match case-insensitively
    assert (edited.hourly_usd, edited.source) == (0.2, "user table")
    assert table.quote("A10G").hourly_usd == table.lookup("A10G").on_demand > 0.2  # kept
    assert table.quote("MI300X", spot=True).hourly_usd == 3.0  # no spot price: on-demand
    with pytest.raises(UsageError, match=r"no price for accelerator 'Z9'.*prices\.toml"):
        table.quote("Z9:1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[accelerators.T4]\nspot = -1\n", r"\[accelerators\.T4\]: spot must be a non-negative number"),
        ("[accelerators.T4]\ncost = 1\n", r"\[accelerators\.T4\]: use only the keys"),
        ("[budget\n", "not valid TOML"),
    ],
)
def test_bad_user_price_table_names_file_and_key(afi_home: Path, text: str, message: str) -> None:
    afi_home.mkdir(parents=True)
    (afi_home / "prices.toml").write_text(text)
    with pytest.raises(UsageError, match=message):
        load_price_table()


@pytest.mark.parametrize("text", ["A10G:0", "A10G:x", ":1", "A 10G"])
def test_bad_accelerator(text: str) -> None:
    with pytest.raises(UsageError, match="write NAME:COUNT"):
        parse_accelerator(text)


def test_skypilot_catalogue_cheapest_price_per_accelerator(tmp_path: Path) -> None:
    """The layout SkyPilot caches under ~/.sky/catalogs/<version>/<cloud>/vms.csv."""
    header = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,SpotPrice\n"
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "vms.csv").write_text(
        header
        + "g5.xlarge,A10G,1,4,16,1.006,us-east-1,0.45\n"
        + "g5.12xlarge,A10G,4,48,192,5.672,us-east-1,1.2\n"  # 0.3 per GPU on spot
        + "m5.large,,,2,8,0.096,us-east-1,0.04\n"  # no accelerator: ignored
    )
    (tmp_path / "gcp").mkdir()
    (tmp_path / "gcp" / "vms.csv").write_text(header + "g2-standard-4,L4,1,4,16,0.7,us-central1,\n")
    prices = _cached_catalogue_prices(tmp_path)
    assert prices["A10G"] == (pytest.approx(1.006), pytest.approx(0.3))
    assert prices["L4"] == (0.7, 0.7)  # no spot price listed: on-demand


def test_launch_past_cap_is_refused_unless_forced(db_url: str, afi_home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "big.toml"
    spec.write_text(SPEC)
    refused = afi(db_url, "experiment", "launch", str(spec), "--gpu", "A100:8", "--cap", "100")
    assert refused.exit_code == 1, refused.output
    assert "over budget" in refused.stderr and "--force" in refused.stderr
    listing = afi(db_url, "experiment", "list", "--json")
    assert json.loads(listing.stdout) == []  # nothing written
    assert json.loads(afi(db_url, "run", "list", "--json").stdout) == []

    forced = afi(db_url, "experiment", "launch", str(spec), "--gpu", "A100:8", "--cap", "100",
                 "--force", "--json")
    assert forced.exit_code == 0, forced.output
    launched = json.loads(forced.stdout)
    estimate = launched["estimated_cost_usd"]
    assert estimate > 100
    assert [r["status"] for r in launched["runs"]] == ["queued", "queued"]
    assert {(r["accelerator"], r["spot"]) for r in launched["runs"]} == {("A100:8", False)}

    report = json.loads(afi(db_url, "budget", "--cap", "100", "--json").stdout)
    assert report["committed_usd"] == pytest.approx(estimate)
    assert report["remaining_usd"] == pytest.approx(100 - estimate)
    # Now even a small launch is over the cap, until the cap is raised.
    small = afi(db_url, "experiment", "launch", str(spec), "--name", "small", "--gpu", "T4:1",
                "--set", "stage.steps=10", "--cap", "100")
    assert small.exit_code == 1 and "over budget" in small.stderr
    assert afi(db_url, "experiment", "launch", str(spec), "--name", "small", "--gpu", "T4:1",
               "--set", "stage.steps=10", "--cap", str(estimate + 10)).exit_code == 0


def test_usage_meter_accrues_cost_over_attempts(engine, afi_home: Path, tmp_path: Path) -> None:
    db_url = engine.url.render_as_string(hide_password=False)
    spec = tmp_path / "one.toml"
    spec.write_text("[[stages]]\nres = 64\nsteps = 10\n")
    launched = afi(db_url, "experiment", "launch", str(spec), "--gpu", "A10G:2", "--spot", "--json")
    assert launched.exit_code == 0, launched.output
    run_id = json.loads(launched.stdout)["runs"][0]["id"]
    for attempt in range(2):
        with session_scope(engine) as s:
            run = registry_runs.get_run(s, run_id)
        meter = UsageMeter(engine, run)
        meter.started -= 1800  # as if this attempt had trained for half an hour
        meter.record()
    with session_scope(engine) as s:
        run = registry_runs.get_run(s, run_id)
    assert run.gpu_hours == pytest.approx(2.0, rel=1e-3)  # 2 attempts x 0.5 h x 2 GPUs
    assert run.cost_usd == pytest.approx(run.hourly_price, rel=1e-3)
    report = json.loads(afi(db_url, "budget", "--json").stdout)
    assert report["spent_usd"] == pytest.approx(run.cost_usd)
    assert report["by_accelerator"] == {"A10G:2": pytest.approx(run.cost_usd)}
    # A run trained without a worker (a SkyPilot job) records only its training time.
    with session_scope(engine) as s:
        registry_runs.update_run(s, run_id, cost_usd=0.0, gpu_hours=0.0, train_seconds=3 * 3600)
    report = json.loads(afi(db_url, "budget", "--json").stdout)
    assert report["spent_usd"] == pytest.approx(3 * run.hourly_price)
    assert report["gpu_hours"] == pytest.approx(6.0)

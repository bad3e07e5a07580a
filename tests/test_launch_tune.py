"""Optuna studies in the registry's database: two `afi tune` processes share a study of 6 tiny
trials, the median pruner stops the hopeless ones, and trials map one to one to AFI runs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import optuna
import pytest
from sqlalchemy import Engine, inspect
from typer.testing import CliRunner

from afi.cli.main import app
from afi.errors import UsageError
from afi.launch.spec import load_spec, parse_set
from afi.launch.tune import RUN_ID_ATTR, open_study, study_storage
from launch_factories import TINY, afi_process, set_args, tiny_dataset
from registry import metrics as registry_metrics
from registry import runs as registry_runs
from registry.db import check_schema, session_scope

runner = CliRunner()
pytestmark = pytest.mark.slow

STUDY = "tune-tiny"
SPEC = f"""
[experiment]
name = "{STUDY}"

[[stages]]
steps = 10

[search]
lr = {{ low = 1e-4, high = 1.0, log = true }}

[tune]
trials = 6
startup_trials = 2
"""
GOOD_LR, HOPELESS_LR = 3e-4, 0.5  # 0.5 wrecks the network in a few steps: PSNR collapses
OVERRIDES = [*TINY, "val_every=5", "ckpt_every=5"]


def test_two_processes_share_a_pruned_study_whose_trials_are_runs(
    engine: Engine, afi_home: Path, tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    tiny_dataset(engine)
    spec_path = tmp_path / "tune-tiny.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path, parse_set(OVERRIDES))
    # Fixed parameters, so that pruning is certain: hopeless trials behind good ones.
    study = open_study(url, spec, STUDY)
    for lr in (GOOD_LR, GOOD_LR, HOPELESS_LR, GOOD_LR, HOPELESS_LR, HOPELESS_LR):
        study.enqueue_trial({"lr": lr})

    tuners = [
        afi_process(url, afi_home, "tune", str(spec_path), "--trials", "3", *set_args(OVERRIDES), "--json")
        for _ in range(2)
    ]
    here = []
    for tuner in tuners:
        out, err = tuner.communicate(timeout=300)
        assert tuner.returncode == 0, err
        here.append([outcome["number"] for outcome in json.loads(out)])
    assert sorted(here[0] + here[1]) == list(range(6)) and all(here)  # shared, none run twice

    trials = optuna.load_study(study_name=STUDY, storage=study_storage(url, 10)).get_trials()
    states = {t.number: t.state for t in trials}
    assert len(trials) == 6
    assert {t.state for t in trials if t.params["lr"] == GOOD_LR} == {optuna.trial.TrialState.COMPLETE}
    assert optuna.trial.TrialState.PRUNED in set(states.values())

    with session_scope(engine) as s:
        runs = {r.trial_number: r for r in registry_runs.list_runs(s, experiment=STUDY)}
        best_psnr = {
            r.id: max(p.value for p in registry_metrics.get_metrics(s, r.id, key="val/psnr"))
            for r in runs.values() if r.status == "completed"
        }
    assert sorted(runs) == list(range(6))  # one run per trial
    for trial in trials:
        run = runs[trial.number]
        assert trial.user_attrs[RUN_ID_ATTR] == run.id
        assert run.tags["lr"] == str(trial.params["lr"])
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert (run.status, run.message) == ("cancelled", "pruned")
        else:
            assert run.status == "completed"
            assert trial.value == pytest.approx(best_psnr[run.id])  # best over steps, not last
    assert len(trial.intermediate_values) >= 1

    shown = runner.invoke(app, ["--db", url, "tune", "show", STUDY, "--json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.stdout)
    assert summary["by_state"]["complete"] >= 3 and summary["direction"] == "maximize"
    assert summary["best"][0]["params"] == {"lr": GOOD_LR}
    assert not math.isnan(summary["best"][0]["value"])

    # One database, two schemas, no clash: the registry still sees itself at its own revision.
    check_schema(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"studies", "trials", "runs", "experiments", "alembic_version"} <= tables


def test_tune_needs_a_search_space_and_a_known_study(db_url: str, afi_home: Path) -> None:
    result = runner.invoke(app, ["--db", db_url, "tune", str(Path(__file__).parents[1] / "experiments" / "curriculum.toml")])
    assert result.exit_code == 2 and "curriculum.toml has no" in result.stderr
    assert "`afi tune` needs one" in result.stderr
    missing = runner.invoke(app, ["--db", db_url, "tune", "show", "nope"])
    assert missing.exit_code == 2 and "no study 'nope'" in missing.stderr


def test_stale_trial_is_retried_with_its_parameters(db_url: str, afi_home: Path, tmp_path: Path) -> None:
    """A process that dies mid-trial stops its heartbeat; the next trial start fails it and
    queues a retry with the same parameters (storage settings as `afi tune` uses them)."""
    spec_path = tmp_path / "tune-tiny.toml"
    spec_path.write_text(SPEC)
    runner.invoke(app, ["--db", db_url, "db", "upgrade"])
    open_study(db_url, load_spec(spec_path), STUDY)
    storage = study_storage(db_url, heartbeat_s=1)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    dead = study.ask()
    dead.suggest_float("lr", 1e-4, 1.0, log=True)
    storage.record_heartbeat(dead._trial_id)  # one beat, as Optuna's thread does; then it "dies"
    time.sleep(3.5)  # past the grace period (2 x heartbeat; SQLite keeps whole seconds)
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    retry = trials[1]
    assert retry.state == optuna.trial.TrialState.WAITING
    assert retry.params == trials[0].params and retry.system_attrs["failed_trial"] == 0


def test_spec_without_tune_table_is_refused_by_open_study(afi_home: Path) -> None:
    spec = load_spec(Path(__file__).parents[1] / "experiments" / "ablation-arch.toml")
    with pytest.raises(UsageError, match="no \\[search\\] table"):
        open_study("sqlite://", spec, "x")

"""Training through a database outage, on a private MariaDB server this test starts, stops and
restarts (never the shared one): the run completes with every metric row once, none lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from afi.train.service import start_run
from bench import private_mariadb
from registry import checkpoints as registry_checkpoints
from registry import runs as registry_runs
from registry.db import in_transaction, make_engine, outage_tolerant, session_scope, upgrade
from registry.errors import DatabaseUnavailable
from train_factories import make_dataset, metric_rows, new_run, tiny_config

pytestmark = [pytest.mark.mariadb, pytest.mark.slow]
AFI = str(Path(sys.executable).with_name("afi"))
STEPS = 40
OUTAGE_S = 20


@pytest.fixture
def server(tmp_path: Path):
    problem = private_mariadb.available()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no private MariaDB server: {problem}")
        pytest.skip(f"no private MariaDB server: {problem}")
    with private_mariadb.PrivateMariaDB(tmp_path) as running:
        yield running


@pytest.fixture
def engine(server):
    url = server.create_database("afi")
    upgrade(url)
    registry = make_engine(url)
    yield registry
    registry.dispose()


def latest_step(engine, run_id: int) -> int:
    with session_scope(engine) as session:
        latest = registry_checkpoints.latest_checkpoint(session, run_id)
    return 0 if latest is None else latest.step


def test_a_transaction_waits_out_a_restart_and_gives_up_after_its_patience(server, engine) -> None:
    def beat(session):
        return registry_runs.list_runs(session)

    server.stop()
    with pytest.raises(DatabaseUnavailable):
        in_transaction(engine, beat)  # not outage-tolerant: fails at once, as the CLI should
    with pytest.raises(DatabaseUnavailable):
        in_transaction(outage_tolerant(engine, 1.0), beat)
    restart = threading.Timer(3.0, server.start)
    restart.start()
    try:
        assert in_transaction(outage_tolerant(engine, 120.0), beat) == []
    finally:
        restart.join()


def test_training_rides_out_a_database_restart(server, engine, afi_home) -> None:
    torch.set_num_threads(1)  # the same kernels as the `afi` subprocess, for equal values
    make_dataset(engine)
    config = tiny_config(steps=STEPS, ckpt_every=10, val_every=20)
    straight = start_run(engine, new_run(engine, config).id)
    assert straight.status == "completed"

    run = new_run(engine, config)
    url = engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [AFI, "--db", url, "run", "start", str(run.id)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "AFI_DB_OUTAGE_S": "600"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 300
    while latest_step(engine, run.id) < 10:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no first checkpoint in 300 s"
        time.sleep(0.2)
    assert latest_step(engine, run.id) < STEPS, "the run ended before the outage could hit it"
    server.stop()
    time.sleep(OUTAGE_S)
    assert process.poll() is None, process.communicate()  # alive through the outage
    server.start()
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    engine.dispose()  # its pooled connections died with the server
    with session_scope(engine) as session:
        finished = registry_runs.get_run(session, run.id)
    assert finished.status == "completed" and finished.step == STEPS, finished
    # The same (key, step) rows with the same values as the run that saw no outage: none lost,
    # none twice (metric_rows also checks there is one row per key and step).
    assert metric_rows(engine, run.id) == metric_rows(engine, straight.id)

"""A take-over whose commit landed but whose answer was lost (a server restart) is run again on
an outage-tolerant engine: the second attempt must find the run already this process's."""

from __future__ import annotations

import socket

from afi.train.service import start_run, worker_id
from registry import runs as registry_runs
from registry.db import session_scope
from train_factories import make_dataset, new_run, tiny_config


def test_a_run_this_process_already_took_over_is_trained(engine, afi_home) -> None:
    make_dataset(engine)
    run = new_run(engine, tiny_config(steps=2, ckpt_every=2, val_every=2))
    with session_scope(engine) as session:  # what the first, lost attempt committed
        registry_runs.transition(
            session, run.id, "running", expected={"created"}, worker_id=worker_id(),
            host=socket.gethostname(),
        )
    finished = start_run(engine, run.id)
    assert finished.status == "completed" and finished.step == 2

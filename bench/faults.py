"""Faults during training: a registry outage of 10, 30 and 60 s, and a killed worker.

    .venv/bin/python -m bench.faults [--outages 10 30 60] [--steps 60] [--no-kill]

Starts a private MariaDB server (its own datadir, port and socket under a temporary directory;
never the shared one), a tiny synthetic dataset and one tiny run per scenario, each trained by
an `afi worker --until-empty` process:
- baseline: nothing goes wrong; its wall time and metric rows are the reference;
- outage N s: after the run's first checkpoint the server is shut down, kept down N s, restarted;
- worker killed: after the first checkpoint the worker is SIGKILLed (its training child dies with
  it); a second worker finds the run's heartbeat stale, requeues it and resumes it.
Prints per scenario: runs completed, metric rows expected (the baseline's) / found / duplicated /
missing, whether every value equals the baseline's, and time lost (wall time minus the baseline's,
the outage itself included).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.private_mariadb import PrivateMariaDB  # noqa: E402

AFI = str(Path(sys.executable).with_name("afi"))
FIRST_CHECKPOINT_TIMEOUT_S = 600.0
KILL_STALE_AFTER_S = 15.0


@dataclass
class Outcome:
    scenario: str
    completed: bool
    expected: int
    found: int
    duplicated: int
    missing: int
    same_values: bool
    seconds: float


def tiny_config(steps: int) -> Any:
    from afi.config import DataConfig, RunConfig, StageConfig, default_variant

    variant = replace(default_variant("unet"), width=8, depth=2)
    return RunConfig(
        variant=variant,
        data=DataConfig(dataset="faults", val_limit=4),
        stages=(StageConfig(width=32, height=32, steps=steps, batch=2, lr=1e-3),),
        val_every=20, ckpt_every=10, log_every=1, image_every=1000, keep_last=2,
    ).validate()


def worker(url: str, *flags: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [AFI, "--db", url, "worker", "--until-empty", "--poll", "2", "--threads", "1", *flags],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for_checkpoint(engine: Any, run_id: int, process: subprocess.Popen[str]) -> None:
    from registry import checkpoints as registry_checkpoints
    from registry.db import session_scope

    deadline = time.monotonic() + FIRST_CHECKPOINT_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early: {process.communicate()[1][-2000:]}")
        with session_scope(engine) as session:
            if registry_checkpoints.latest_checkpoint(session, run_id) is not None:
                return
        time.sleep(0.2)
    raise RuntimeError("no first checkpoint in time")


def rows_of(engine: Any, run_id: int) -> tuple[dict[tuple[str, int], float | None], int]:
    """(key, step) -> value (perf/* are wall-clock figures: only their keys count), and the
    number of rows beyond one per (key, step)."""
    with engine.connect() as connection:
        points = connection.execute(
            text("SELECT `key`, step, value FROM metrics WHERE run_id = :r"), {"r": run_id}
        ).all()
    rows = {(key, step): (None if key.startswith("perf/") else value) for key, step, value in points}
    return rows, len(points) - len(rows)


def scenario(
    name: str, url: str, engine: Any, config: Any, fault: Any, reference: dict[Any, Any] | None
) -> tuple[Outcome, dict[Any, Any]]:
    from afi.launch.runs import RunRequest, create_run
    from registry import runs as registry_runs
    from registry.db import session_scope

    run = create_run(engine, RunRequest(config=config, queue=True))
    started = time.monotonic()
    process = worker(url)
    if fault is not None:
        wait_for_checkpoint(engine, run.id, process)
        process = fault(process)
    _, stderr = process.communicate()
    seconds = time.monotonic() - started
    engine.dispose()  # pooled connections from before a restart are dead
    with session_scope(engine) as session:
        final = registry_runs.get_run(session, run.id)
    rows, duplicated = rows_of(engine, run.id)
    expected = reference if reference is not None else rows
    if os.environ.get("AFI_FAULTS_VERBOSE"):
        print(stderr[-3000:])
    if final.status != "completed":
        print(f"  {name}: run ended {final.status} ({final.message}); worker: {stderr[-500:]}")
    outcome = Outcome(
        scenario=name,
        completed=final.status == "completed",
        expected=len(expected),
        found=len(rows),
        duplicated=duplicated,
        missing=len(set(expected) - set(rows)),
        same_values=rows == expected,
        seconds=seconds,
    )
    return outcome, rows


def outage(server: PrivateMariaDB, seconds: float) -> Any:
    def fault(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
        server.stop()
        time.sleep(seconds)
        server.start()
        return process

    return fault


def kill_worker(url: str) -> Any:
    def fault(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
        process.send_signal(signal.SIGKILL)
        process.wait()
        stale = f"{KILL_STALE_AFTER_S:g}"
        return worker(url, "--stale-after", stale, "--poll", f"{KILL_STALE_AFTER_S / 3:g}")

    return fault


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outages", type=float, nargs="*", default=[10.0, 30.0, 60.0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--no-kill", action="store_true", help="Skip the killed-worker scenario.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="afi-faults-") as tmp:
        os.environ["AFI_HOME"] = str(Path(tmp) / "afi_home")
        os.environ.pop("AFI_DB_URL", None)
        from afi.data.importers import ImportOptions
        from afi.data.service import synth_dataset
        from afi.data.split import SplitConfig
        from afi.data.synth import SynthConfig
        from registry.db import make_engine, upgrade

        with PrivateMariaDB(Path(tmp)) as server:
            url = server.create_database("afi")
            upgrade(url)
            engine = make_engine(url)
            synth_dataset(
                engine, "faults", SynthConfig(clips=3, frames_per_clip=12, width=64, height=64),
                options=ImportOptions(split=SplitConfig(val=0.34, test=0.0)),
            )
            config = tiny_config(args.steps)
            print(f"private MariaDB on port {server.port}; {args.steps} steps per run, "
                  "checkpoint every 10, one worker per scenario")
            baseline, reference = scenario("baseline", url, engine, config, None, None)
            outcomes = [baseline]
            for seconds in args.outages:
                outcomes.append(scenario(
                    f"outage {seconds:g} s", url, engine, config, outage(server, seconds), reference
                )[0])
            if not args.no_kill:
                outcomes.append(scenario(
                    "worker killed", url, engine, config, kill_worker(url), reference
                )[0])
            engine.dispose()
    print(f"{'scenario':<16}{'completed':>10}{'expected':>10}{'found':>8}{'dup':>6}{'missing':>9}"
          f"{'same values':>13}{'time lost s':>13}")
    for o in outcomes:
        lost = o.seconds - baseline.seconds
        print(f"{o.scenario:<16}{int(o.completed):>10}{o.expected:>10}{o.found:>8}{o.duplicated:>6}"
              f"{o.missing:>9}{'yes' if o.same_values else 'no':>13}{lost:>13.1f}")
    print(f"runs completed: {sum(o.completed for o in outcomes)} of {len(outcomes)}; "
          f"baseline wall time {baseline.seconds:.1f} s")


if __name__ == "__main__":
    main()

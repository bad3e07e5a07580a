"""How long a worker takes to hand a claimed run to a training process, against a plain spawn.

    .venv/bin/python bench/launch.py [--runs 4]

`afi worker` trains each run in a child process so a crash cannot take the worker down. A spawned
child imports the trainer (torch, torchvision) itself, every run; the worker's children come from
a fork server that imported it once, when the worker started. Prints, per start method, the
seconds from `Process.start()` to a child ready to train (trainer imported), median of --runs,
the fork server's one-off warm-up, and the ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from afi.launch.worker import TRAINER_MODULE, child_context  # noqa: E402


def ready(connection: Any) -> None:
    """A child's work before its first step: import the trainer (a no-op when preloaded)."""
    __import__(TRAINER_MODULE)
    connection.send(time.perf_counter())  # CLOCK_MONOTONIC: comparable across processes


def start_latency(context: Any) -> float:
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=ready, args=(sender,))
    started = time.perf_counter()
    process.start()
    ready_at = receiver.recv()
    process.join()
    return ready_at - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()

    spawned = [start_latency(multiprocessing.get_context("spawn")) for _ in range(args.runs)]
    served = child_context()
    warm_up = start_latency(served)  # what the worker pays once, before its first claim
    forked = [start_latency(served) for _ in range(args.runs)]

    spawn_s, fork_s = statistics.median(spawned), statistics.median(forked)
    print(f"child ready to train, median of {args.runs} (seconds):")
    print(f"  spawn (baseline, imports the trainer each run)   {spawn_s:8.3f}")
    print(f"  fork server, preloaded (afi worker)              {fork_s:8.3f}")
    print(f"  fork server warm-up, once per worker             {warm_up:8.3f}")
    print(f"  speed-up per run: {spawn_s / fork_s:,.0f}x")


if __name__ == "__main__":
    main()

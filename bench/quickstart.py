"""Does `afi quickstart` keep its time budget, and do its models beat the blend baseline?

    .venv/bin/python -m bench.quickstart [--minutes 10] [--saturate] [--keep DIR]

Runs the whole quickstart in a fresh AFI_HOME (embedded SQLite) and prints, per phase, the time
the plan gave it against the time it took; the whole job against the budget; each run's budget and
the steps it reached; and every model's test PSNR against the blend and DIS flow baselines.
`--saturate` runs two busy-loop processes for the whole job, as a machine busy with other work
would (on a 2-core machine: both cores taken).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUSY_LOOPS = 2


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` processes spinning on a core each, stopped (by their own pids) when done."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="The quickstart's budget (its default: 10).")
    parser.add_argument("--saturate", action="store_true",
                        help=f"Run {BUSY_LOOPS} busy-loop processes beside the quickstart.")
    parser.add_argument("--keep", type=Path, help="Use and keep this AFI_HOME (default: a temporary one).")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="afi-bench-qs-")) if args.keep is None else args.keep
    os.environ["AFI_HOME"] = str(home)
    os.environ.pop("AFI_DB_URL", None)
    with busy_loops(BUSY_LOOPS if args.saturate else 0):
        started = time.perf_counter()
        from afi.db import open_registry
        from afi.quickstart import QuickstartOptions, run_quickstart
        from registry.db import resolve_url

        engine = open_registry(None)
        result = run_quickstart(engine, resolve_url(), QuickstartOptions(minutes=args.minutes), report=print,
                                started=started)
        total = time.perf_counter() - started  # imports and registry set-up included

    plan = result.plan
    load = f"{BUSY_LOOPS} busy loops beside it" if args.saturate else "no added load"
    print(f"\nquickstart --minutes {args.minutes:g} ({os.cpu_count()} cores, {load}): "
          f"{plan.run_seconds:.0f} s of training per run")
    planned = {"training": plan.seconds, "evaluation": plan.evaluation_seconds, "video": plan.video_seconds}
    print(f"{'phase':<12}{'planned s':>10}{'actual s':>10}{'actual/planned':>16}")
    for phase, seconds in result.phases.items():
        if phase in planned:
            print(f"{phase:<12}{planned[phase]:>10.1f}{seconds:>10.1f}{seconds / planned[phase]:>16.2f}")
        else:
            print(f"{phase:<12}{'-':>10}{seconds:>10.1f}{'':>16}")
    budget = args.minutes * 60
    print(f"{'whole job':<12}{budget:>10.1f}{total:>10.1f}{total / budget:>16.2f}")

    rows = result.leaderboard
    baselines = {row.arch: row.psnr for row in rows if row.is_baseline}
    print(f"\n{'run':<44}{'steps':>7}{'PSNR dB':>9}{'vs blend':>10}{'vs flow':>9}")
    for row in rows:
        name = f"{row.arch} (baseline)" if row.is_baseline else row.run
        steps = "" if row.is_baseline else str(result.steps[row.run])
        print(f"{name:<44}{steps:>7}{row.psnr:>9.2f}{row.psnr - baselines['blend']:>+10.2f}"
              f"{row.psnr - baselines['flow']:>+9.2f}")
    print(result.summary())
    engine.dispose()
    if args.keep is None:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

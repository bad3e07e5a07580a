"""Does `afi quickstart` keep its time budget, and do its models beat the blend baseline?

    .venv/bin/python -m bench.quickstart [--minutes 10] [--keep DIR]

Runs the whole quickstart in a fresh AFI_HOME (embedded SQLite) and prints, per phase, the wall
time it took; training's planned time (from the per-variant calibration) against its actual time;
the whole job against the budget; and every model's test PSNR against the blend and DIS flow
baselines. Run it on a quiet machine: the calibration measures the machine as it is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="The quickstart's budget (its default: 10).")
    parser.add_argument("--keep", type=Path, help="Use and keep this AFI_HOME (default: a temporary one).")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="afi-bench-qs-")) if args.keep is None else args.keep
    os.environ["AFI_HOME"] = str(home)
    os.environ.pop("AFI_DB_URL", None)
    started = time.perf_counter()
    from afi.db import open_registry
    from afi.quickstart import QuickstartOptions, run_quickstart
    from registry.db import resolve_url

    engine = open_registry(None)
    result = run_quickstart(engine, resolve_url(), QuickstartOptions(minutes=args.minutes), report=print)
    total = time.perf_counter() - started  # imports and registry set-up included

    print(f"\nquickstart --minutes {args.minutes:g}: {result.plan.steps} steps per run")
    print(f"{'phase':<12}{'seconds':>9}")
    for phase, seconds in result.phases.items():
        print(f"{phase:<12}{seconds:>9.1f}")
    training = result.phases["training"]
    print(f"training: planned {result.plan.seconds:.0f} s, took {training:.0f} s "
          f"(actual / planned {training / result.plan.seconds:.2f})")
    print(f"whole job: {total:.0f} s of a {args.minutes * 60:.0f} s budget ({total / (args.minutes * 60):.2f})")

    rows = result.leaderboard
    baselines = {row.arch: row.psnr for row in rows if row.is_baseline}
    print(f"\n{'run':<44}{'PSNR dB':>9}{'vs blend':>10}{'vs flow':>9}")
    for row in rows:
        name = f"{row.arch} (baseline)" if row.is_baseline else row.run
        print(f"{name:<44}{row.psnr:>9.2f}{row.psnr - baselines['blend']:>+10.2f}{row.psnr - baselines['flow']:>+9.2f}")
    print(result.summary())
    engine.dispose()
    if args.keep is None:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

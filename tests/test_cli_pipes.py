"""Every output mode stops quietly when its reader goes away (`afi leaderboard --csv | head -3`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from registry import evaluations as registry_evaluations
from registry.db import session_scope
from registry_factories import make_run

AFI = str(Path(sys.executable).with_name("afi"))


@pytest.mark.parametrize("args", [["leaderboard"], ["leaderboard", "--csv"], ["leaderboard", "--json"],
                                  ["run", "list", "--json"], ["--help"]], ids=" ".join)
def test_closed_pipe_is_quiet(engine: Engine, afi_home: Path, args: list[str]) -> None:
    run = make_run(engine, status="completed")
    with session_scope(engine) as s:
        registry_evaluations.add_evaluations(s, run.id, {"psnr": 30.0}, split="test")
    # Unbuffered, every write meets the closed pipe at once, as a long listing does.
    env = {**os.environ, "AFI_HOME": str(afi_home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([AFI, "--db", engine.url.render_as_string(hide_password=False), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # the reader is gone before the first line is written
    err = process.stderr.read().decode()
    assert process.wait() == 1 and err == "", err  # click's code for a closed pipe

"""A private MariaDB server for outage tests and bench.faults: its own datadir, port and socket,
started and stopped (for real: the process exits) by its owner, never the shared server.

    with PrivateMariaDB(tmp_path) as server:
        url = server.create_database("afi")
        server.stop(); ...; server.start()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

import pymysql

READY_TIMEOUT_S = 180.0  # a loaded two-core machine can take a while to recover InnoDB


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def available() -> str | None:
    """Why a private server cannot be run here (None when it can)."""
    missing = [tool for tool in ("mariadbd", "mariadb-install-db") if not _tool(tool)]
    return f"{', '.join(missing)} not found" if missing else None


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )


class PrivateMariaDB:
    """mariadbd on 127.0.0.1:<free port> with a small InnoDB, root without a password."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / f"mariadb-{uuid.uuid4().hex[:8]}"
        self.datadir = self.directory / "data"
        # Socket paths are limited to ~100 bytes: keep it short, under /tmp.
        self.socket = Path("/tmp") / f"afi-{uuid.uuid4().hex[:10]}.sock"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def __enter__(self) -> PrivateMariaDB:
        self.install()
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def install(self) -> None:
        self.datadir.mkdir(parents=True)
        subprocess.run(
            [_tool("mariadb-install-db") or "mariadb-install-db", "--no-defaults",
             f"--datadir={self.datadir}", "--auth-root-authentication-method=normal",
             "--skip-test-db", "--user=root"],
            check=True, capture_output=True, timeout=READY_TIMEOUT_S,
        )

    def start(self) -> None:
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 - the server keeps it
        self.process = subprocess.Popen(
            [_tool("mariadbd") or "mariadbd", "--no-defaults", f"--datadir={self.datadir}",
             f"--port={self.port}", f"--socket={self.socket}", "--bind-address=127.0.0.1",
             f"--pid-file={self.directory / 'server.pid'}", "--user=root",
             "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
             "--skip-name-resolve", "--max-connections=200"],
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"private mariadbd exited: see {self.directory / 'server.log'}")
            try:
                self._admin().close()
                return
            except pymysql.MySQLError:
                time.sleep(0.2)
        raise RuntimeError(f"private mariadbd not ready in {READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a restart for maintenance does; waits for the exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=READY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _admin(self) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                               connect_timeout=3, autocommit=True)

    def create_database(self, name: str) -> str:
        """A utf8mb4 database on this server; returns its URL."""
        admin = self._admin()
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        finally:
            admin.close()
        return f"{self.url}/{name}"

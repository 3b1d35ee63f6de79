"""The fault suite's own infrastructure: a throwaway PostgreSQL cluster and a throwaway MLflow server.

The cluster is initdb'd under a temp dir on a free port, so the tests can stop it, hang it (SIGSTOP) and restart
it without touching the shared server on 5432. As root (CI), PostgreSQL's programs run as the `postgres` user,
which owns the temp dir. Everything waits by condition, with generous deadlines: the machine may be loaded.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import free_port, kill_group, python_module, wait_until

PG_BIN = Path(os.environ.get("LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_PASSWORD = "pg-Secret-7731"          # trust auth ignores it; the lab must never show it
MLFLOW_PASSWORD = "mlflow-Secret-5521"   # the MLflow server ignores it; the lab must never show it


class Cluster:
    """A PostgreSQL 15 cluster of the test's own: start, stop, pause (SIGSTOP), resume, fresh databases."""

    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL server programs not found in {PG_BIN} (set LAB_PG_BIN)")
        self.dir = Path(tempfile.mkdtemp(prefix="lab-faults-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.port = free_port()
        self._user = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            self._user = pwd.getpwnam("postgres")
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.paused = False

    def _pg(self, program: str, *args: str, timeout: float = 120) -> None:
        cmd = [str(PG_BIN / program), *args]
        if self._user is not None:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n"
                               + (self.log.read_text()[-2000:] if self.log.exists() else ""))

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "120", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: every connection is cut, as in a crash or a restart)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def pause(self) -> None:
        """Hang the postmaster (SIGSTOP): new connections are accepted by the kernel and never answered."""
        os.kill(self.postmaster_pid(), signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self.postmaster_pid(), signal.SIGCONT)
        self.paused = False

    def hang(self) -> list[int]:
        """Hang the whole server (SIGSTOP to the postmaster and every backend): open connections stay up and their
        statements are never answered, as with a frozen host. Returns the pids for unhang."""
        pids = [self.postmaster_pid(), *(int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.postmaster_pid())], capture_output=True, text=True).stdout.split())]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.paused = True
        return pids

    def unhang(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.paused = False

    def url(self, database: str, password: str = PG_PASSWORD) -> str:
        return f"postgresql+psycopg2://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A URL (with a password in it) of a new, empty database on this cluster."""
        name = f"lab_fault_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT",
                                 connect_args={"connect_timeout": 10})
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.paused:
            self.resume()
        try:
            self.stop("immediate")
        except Exception:  # already stopped
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster():
    """The fault suite's own PostgreSQL cluster, running; tests that stop or pause it start/resume it again."""
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.destroy()


class MlflowServer:
    """`mlflow server` on a SQLite backend in a temp dir; stop and start it again on the same port."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.proc, self.starts, self.log = None, 0, None

    @property
    def uri(self) -> str:
        return f"http://lab:{MLFLOW_PASSWORD}@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.log = self.root / f"mlflow-server-{self.starts}.log"  # one per start: a restart keeps the first's
        self.proc = python_module(
            "mlflow", ["server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                       "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                       "--artifacts-destination", str(self.root / "artifacts")],
            {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, self.log, cwd=self.root)
        wait_until(self._answers, timeout=180, interval=0.5, what="the MLflow server to answer")

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, signal.SIGTERM)
        # wait until the port is free again, so the restart binds the same address
        wait_until(lambda: not _listening(self.port), timeout=60, what=f"port {self.port} to close")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def mlflow_server(tmp_path):
    """A running MLflow server with credentials in its URI; stopped after the test."""
    root = tmp_path / "mlflow-server"
    root.mkdir()
    server = MlflowServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""Helpers for the engine tests: settings over any store URL, a module-lived PostgreSQL database, polling."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def make_settings(data_dir: Path, db_url: str, mlflow_template: Path, **overrides):
    """Settings like the `settings` fixture's, for a data dir and store URL of the caller's choosing."""
    from engine.config import Settings
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, data_dir / "mlflow.db")
    values = dict(data_dir=data_dir, database_url=db_url, tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}",
                  artifact_root=(data_dir / "mlartifacts").as_uri(), tick_seconds=0.2, heartbeat_seconds=0.3,
                  stale_seconds=2.0)
    return Settings.from_env({}, **{**values, **overrides})


@contextmanager
def fresh_pg_database(admin_url: str):
    """A URL of a new, empty PostgreSQL database, dropped on exit (like `pg_url`, for wider scopes)."""
    name = f"lab_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def module_store_url(request, tmp_path_factory):
    """A fresh store URL for the backend named by request.param ('sqlite' or 'postgres'), module-lived."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'lab.db'}"
    else:
        with fresh_pg_database(request.getfixturevalue("pg_server")) as url:
            yield url


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def engine_cli(env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python -m engine ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """Start `python -m engine worker` in its own process group (so its step subprocesses die with it)."""
    out = open(log_path, "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "engine", "worker"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()  # the child holds its own copy


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 15) -> None:
    """Send `sig` to the worker's process group and reap the worker (SIGKILL the group if it lingers)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    # children of the group (a step's pytest) may outlive a worker that exited on SIGTERM: kill the rest
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            pids.append(int(stat.parent.name))
    return pids


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid`, read from /proc (a step's subprocess has its own
    process group, so it is found by parent, not by group)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")

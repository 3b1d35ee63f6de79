"""The embedded worker: the dashboard's server starts one ordinary `python -m engine worker` process and keeps it
alive, so steps, the stream and their threads never share the interpreter that draws pages for every visitor.

One worker per data directory, however many app processes share it: the supervisor that holds an exclusive
lock on `<data dir>/worker.lock` starts the worker; the others wait for the lock and take over if its holder
dies. The worker gets SIGTERM when its supervising thread dies (PR_SET_PDEATHSIG), so a killed app never leaves
an orphan that keeps claiming steps; SIGTERM lets its running steps finish or go back to the queue.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.config import Settings

log = logging.getLogger(__name__)

LOCK_NAME = "worker.lock"
LOG_NAME = "worker.log"
POLL_SECONDS = 1.0          # how often the supervisor looks at its worker (and, without the lock, at the lock)
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before restart n after quick deaths; resets once steady
STEADY_SECONDS = 60.0       # a worker that lived this long counts as healthy again


# Loaded here, not in the child: between fork and exec the child may not take the dynamic loader's lock.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child before exec
    _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervisor:
    """Starts `python -m engine worker` for this data directory and restarts it when it dies; stop() ends it."""

    def __init__(self, settings: Settings, env: dict | None = None):
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        self.lock_path = settings.data_dir / LOCK_NAME
        self.log_path = settings.data_dir / LOG_NAME
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holds_lock(self) -> bool:
        """Whether this supervisor is the one that runs the data directory's worker."""
        return self._lock_fd is not None

    def start(self) -> "Supervisor":
        """Begin supervising in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lab-supervisor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL after its grace period) and give up the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.shutdown_grace_seconds + 30)
        self._end_worker()
        self._release()

    def _loop(self) -> None:
        quick_deaths = 0
        while not self._stop.is_set():
            if not self.holds_lock and not self._acquire():
                self._stop.wait(POLL_SECONDS)
                continue
            began = time.monotonic()
            try:
                self._spawn()
            except OSError as exc:  # no process could be started (limits, disk): say so and try again later
                log.error("the lab's worker could not be started (%s); trying again in %g s", exc,
                          RESTART_BACKOFF[-1])
                self._stop.wait(RESTART_BACKOFF[-1])
                continue
            while not self._stop.is_set() and self.proc.poll() is None:
                self._stop.wait(POLL_SECONDS)
            if self._stop.is_set():
                break
            quick_deaths = 0 if time.monotonic() - began > STEADY_SECONDS else quick_deaths + 1
            delay = RESTART_BACKOFF[min(quick_deaths, len(RESTART_BACKOFF)) - 1] if quick_deaths else 0.0
            log.warning("the lab's worker (pid %s) exited with code %s; restarting it%s (its log: %s)",
                        self.proc.pid, self.proc.returncode, f" in {delay:g} s" if delay else "", self.log_path)
            self._stop.wait(delay)
        self._end_worker()

    def _acquire(self) -> bool:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        return True

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _spawn(self) -> None:
        with Path(self.log_path).open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "engine", "worker"], env=self.env,
                                         cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.starts += 1

    def _end_worker(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.settings.shutdown_grace_seconds + 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

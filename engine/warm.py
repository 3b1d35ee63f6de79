"""A warm interpreter for the pytest runs of the ci_tests step.

Starting Python and importing pytest, pandas and scikit-learn costs about 2.5 s of CPU, five times what the
suite itself needs. So a process that runs steps keeps one helper process, started at its first suite run, that
has imported them once and forks a fresh child for every run. The child is a separate process like any other:
its own process group, its own output file and exit code. The kernel SIGKILLs it if the helper dies, and the
helper ends, taking its children along, when the process that started it goes away (its stdin closes, even on
kill -9). The helper ignores SIGINT and SIGTERM, so a worker's graceful shutdown decides what its steps do.

Protocol, one JSON object per line: the parent writes {"id", "args", "env", "cwd", "output"}; the helper answers
{"id", "pid"} once it forked and {"id", "exit"} once the child ended (a negative exit is the signal that killed it).

The helper runs the code it imported when it started; the lab's code does not change while a process runs.
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 300  # seconds for the helper to fork a run (its first one waits for the imports); then it is killed
PRELOAD = ("pytest", "pandas", "engine.pipeline", "engine.ml.claims", "engine.ml.model", "engine.ml.validation")


class Run:
    """A pytest run in a child of the helper; like subprocess.Popen: pid, poll(), wait(timeout), returncode."""

    def __init__(self, args: list[str]):
        self.args = args
        self.pid: int | None = None
        self.returncode: int | None = None
        self._started, self._ended = threading.Event(), threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the run's process group."""
        if self.returncode is None and self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def _ended_with(self, code: int) -> None:
        self.returncode = code
        self._started.set()
        self._ended.set()


class _Helper:
    """The parent's side: the helper process, and a thread that hands its answers to the runs waiting on them."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.warm"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.runs: dict[int, Run] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        threading.Thread(target=self._read, name="lab-warm-pytest", daemon=True).start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, args: list[str], env: dict, cwd: Path, output: Path) -> Run:
        run = Run(args)
        with self.lock:
            run_id = next(self.ids)
            self.runs[run_id] = run
            self.proc.stdin.write(json.dumps({"id": run_id, "args": args, "env": env, "cwd": str(cwd),
                                              "output": str(output)}) + "\n")
            self.proc.stdin.flush()
        if not run._started.wait(START_TIMEOUT):
            self.proc.kill()  # a helper that cannot fork is of no use; its end ends the run (see _read)
            run._started.wait()
        return run

    def _read(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            with self.lock:
                run = self.runs.get(message["id"])
            if run is None:
                continue
            if "pid" in message:
                run.pid = message["pid"]
                run._started.set()
            else:
                with self.lock:
                    self.runs.pop(message["id"], None)
                run._ended_with(message["exit"])
        with self.lock:  # the helper is gone, and with it every child (the kernel killed them)
            left, self.runs = list(self.runs.values()), {}
        for run in left:
            run._ended_with(-signal.SIGKILL)


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def started() -> bool:
    """Whether this process has a live helper, so the next run forks at once (the first one waits for imports)."""
    return _helper is not None and _helper.alive()


def pytest(args: list[str], env: dict, cwd: Path, output: Path) -> Run:
    """Start `pytest ARGS` in a fresh child of this process's warm helper (started on first use), with environment
    `env`, in `cwd`, its stdout and stderr going to `output`."""
    global _helper
    with _helper_lock:
        if _helper is None or not _helper.alive():
            _helper = _Helper()
        helper = _helper
    try:
        return helper.start(args, env, cwd, output)
    except OSError:  # a broken pipe: it died between the check and the request: start a new one once
        with _helper_lock:
            if _helper is helper:
                _helper = _Helper()
            helper = _helper
        return helper.start(args, env, cwd, output)


# ---- the helper's side -------------------------------------------------------------------------------------------
_PROTOCOL = 1  # serve() moves the answers to a descriptor of their own, so a stray print cannot garble them


def _send(message: dict) -> None:
    os.write(_PROTOCOL, (json.dumps(message) + "\n").encode())


def _child(request: dict, helper: int) -> None:  # pragma: no cover - runs in the forked child, which never returns
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the helper
        if os.getppid() != helper:
            os._exit(code)  # the helper died before the line above
        out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(null)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.argv = ["pytest", *request["args"]]
        import pytest as pytest_module
        code = int(pytest_module.main(request["args"]))
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """The helper: import PRELOAD, then fork a child per request until stdin closes."""
    import importlib
    global _PROTOCOL
    _PROTOCOL = os.dup(1)
    os.dup2(2, 1)
    for name in PRELOAD:
        importlib.import_module(name)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me = os.getpid()
    children: dict[int, int] = {}  # pid -> request id
    pending = b""
    while True:
        ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            _send({"id": children.pop(pid), "exit": os.waitstatus_to_exitcode(status)})
        if 0 not in ready:
            continue
        data = os.read(0, 65536)
        if not data:  # the process that started us is gone: so are our runs
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                for fd in (wake_r, wake_w, _PROTOCOL):
                    os.close(fd)
                _child(request, me)
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)  # also here, so the group exists before anyone hears of the pid
            children[pid] = request["id"]
            _send({"id": request["id"], "pid": pid})


if __name__ == "__main__":
    serve()

"""A warm interpreter: `python -m MODULE ARGS` in a fresh fork of a process that imported the heavy modules once.

Its user is the ci_tests step. Starting Python and importing pytest, pandas and scikit-learn costs about 2.5 s of
CPU, five times what the suite itself needs. So a process that runs steps keeps one helper process, started at its
first suite run, that has imported them once and forks a fresh child for every run (`pytest`). The tests run the
CLI, workers and dashboard servers the same way, through `Warm` helpers of their own.

The child is a separate process like any other: its own process group, environment, argv, output files and exit
code. The kernel SIGKILLs it if the helper dies, and the helper ends, taking its children along, when the process
that started it goes away (its stdin closes, even on kill -9). The helper ignores SIGINT and SIGTERM, so a worker's
graceful shutdown decides what its steps do; a child starts with the default handlers.

Protocol, one JSON object per line: the parent writes {"id", "module", "args", "env", "cwd", "output", "errors"}
(stdout goes to the file `output`, stderr to `errors`, or to `output` as well when it is null); the helper answers
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
    """A run in a child of the helper; like subprocess.Popen: pid, poll(), wait(timeout), returncode."""

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

    def __init__(self, preload: tuple[str, ...]):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.warm", *preload], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.runs: dict[int, Run] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        threading.Thread(target=self._read, name="lab-warm-pytest", daemon=True).start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, request: dict) -> Run:
        run = Run(["python", "-m", request["module"], *request["args"]])
        with self.lock:
            run_id = next(self.ids)
            self.runs[run_id] = run
            self.proc.stdin.write(json.dumps({"id": run_id, **request}) + "\n")
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


class Warm:
    """A helper process that imported `preload` once, started on first use (and again if it died)."""

    def __init__(self, preload: tuple[str, ...]):
        self.preload = preload
        self._helper: _Helper | None = None
        self._lock = threading.Lock()

    def started(self) -> bool:
        """Whether the helper is alive, so the next run forks at once (the first one waits for the imports)."""
        return self._helper is not None and self._helper.alive()

    def run(self, module: str, args: list[str], env: dict, cwd: Path, output: Path, errors: Path | None = None) -> Run:
        """Start `python -m MODULE ARGS` in a fresh child of the helper, with environment `env`, in `cwd`, its
        stdout going to `output` and its stderr to `errors` (default: `output` too)."""
        request = {"module": module, "args": args, "env": env, "cwd": str(cwd), "output": str(output),
                   "errors": str(errors) if errors else None}
        with self._lock:
            if not self.started():
                self._helper = _Helper(self.preload)
            helper = self._helper
        try:
            return helper.start(request)
        except OSError:  # a broken pipe: it died between the check and the request: start a new one once
            with self._lock:
                if self._helper is helper:
                    self._helper = _Helper(self.preload)
                helper = self._helper
            return helper.start(request)

    def close(self) -> None:
        """End the helper, and with it any run still going; the next run starts a new one."""
        with self._lock:
            helper, self._helper = self._helper, None
        if helper is not None:
            helper.proc.stdin.close()  # the helper's cue to end (see serve)
            helper.proc.wait(timeout=60)


_PYTEST = Warm(PRELOAD)


def started() -> bool:
    """Whether this process's pytest helper is alive (the next suite run forks at once)."""
    return _PYTEST.started()


def pytest(args: list[str], env: dict, cwd: Path, output: Path) -> Run:
    """Start `pytest ARGS` in a fresh child of this process's warm helper (started on first use), with environment
    `env`, in `cwd`, its stdout and stderr going to `output`."""
    return _PYTEST.run("pytest", args, env, cwd, output)


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
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the helper
        libc.prctl(15, request["module"].encode()[:15])  # PR_SET_NAME: `ps -o comm`/`top` show what it runs
        if os.getppid() != helper:
            os._exit(code)  # the helper died before the line above
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        out = os.open(request["output"], flags, 0o644)
        err = os.open(request["errors"], flags, 0o644) if request.get("errors") else os.dup(out)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        code = _main(request["module"], request["args"])
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _main(module: str, args: list[str]) -> int:  # pragma: no cover - runs in the forked child
    """Run `python -m MODULE ARGS` here, as the interpreter would; its exit code."""
    import runpy
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:  # what the interpreter does with it
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except Exception:
        import traceback
        traceback.print_exc()
        return 1
    return 0


def serve(preload: list[str]) -> None:
    """The helper: import `preload`, then fork a child per request until stdin closes."""
    import importlib
    global _PROTOCOL
    _PROTOCOL = os.dup(1)
    os.dup2(2, 1)
    for name in preload:
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
    serve(sys.argv[1:])

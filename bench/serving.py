"""A dashboard server and a headless Chromium, for the benches that drive the dashboard as a browser does
(bench.dashboard, bench.demo_memory, bench.visitors), each optionally pinned to cores. The tests start theirs in
tests/e2e/conftest.py, as forks of a warm interpreter; a bench starts a new interpreter, as a deployment does."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; the browser tests use it with these flags too
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def free_port() -> int:
    """A port nothing listens on at the moment, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(env: dict[str, str], log: Path, deadline_s: float = 180,
                    cpus: str | None = None, script: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free loopback port, headless, with the whole environment `env` and its output in
    `log`; returns (process, base URL) once it answers its health check. If it exits or stays silent for
    `deadline_s`, it is stopped and RuntimeError carries the end of its log. `cpus` (a taskset list, "0" or "0,2")
    pins the server and every process it starts to those cores; taskset execs, so the pid is the server's.
    `script` serves another file instead (from its own directory, with that directory's .streamlit config)."""
    port = free_port()
    pin = ["taskset", "-c", cpus] if cpus else []
    with log.open("w") as out:
        proc = subprocess.Popen([*pin, sys.executable, "-m", "streamlit", "run", script.name if script else "app.py",
                                 "--server.port", str(port), "--server.address", "127.0.0.1",
                                 "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                                cwd=script.parent if script else ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + deadline_s
    try:
        while not healthy(url + "_stcore/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_dashboard(proc)
                raise RuntimeError(f"the dashboard did not answer within {deadline_s:g} s (exit code "
                                   f"{proc.returncode}); the end of its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
    except KeyboardInterrupt:  # Ctrl-C while it starts: the caller never gets the process, so stop it here
        stop_dashboard(proc)
        raise
    return proc, url


def healthy(url: str) -> bool:
    """Whether the server answers `url` (its health check) with 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every living descendant of `pid` (children, grandchildren, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name sits in parentheses and may hold spaces: the parent pid follows the last ')'.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kb(pid: int, field: str, name: str = "status") -> int:
    """One `field:` value in kB from /proc/<pid>/<name> (VmRSS, Pss, ...); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def command_line(pid: int) -> str:
    """A process's command line (its first 120 characters), or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return ""


def stop_dashboard(proc: subprocess.Popen) -> None:
    """Terminate the server, then any of its descendants it left behind (each by its pid)."""
    left = descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid in left:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def launch_chromium(playwright, cpus: str | None = None):
    """Debian's headless Chromium, driven by Playwright (sync or async: the async API returns an awaitable).
    `cpus` (a taskset list) pins the browser and all its processes to those cores."""
    return playwright.chromium.launch(executable_path=pinned(CHROMIUM, cpus) if cpus else CHROMIUM,
                                      args=CHROMIUM_ARGS)


def pinned(executable: Path, cpus: str) -> Path:
    """A script that runs `executable` under `taskset -c cpus` (exec: the same pid), for launchers such as
    Playwright that take a path and no command prefix. Written once per (executable, cpus) in the temp dir."""
    script = Path(tempfile.gettempdir()) / f"bench-{executable.name}-cpus-{cpus.replace(',', '_')}.sh"
    text = f'#!/bin/sh\nexec taskset -c {cpus} {executable} "$@"\n'
    if not script.exists() or script.read_text() != text:
        fd, tmp = tempfile.mkstemp(dir=script.parent, prefix=script.name)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, script)  # atomic: a concurrent bench never runs a half-written script
    return script

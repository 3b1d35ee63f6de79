"""Visitors bench: what N browser sessions at once cost the dashboard's server, pinned to its own core.

N sessions arrive together, rest, watch a CI run and the live stream; the server is judged by the CPU its whole
process tree spends, beside the wall-clock figures.

    python -m bench.visitors [--sessions 1,10,30] [--repeats 3] [--idle-seconds 30] [--stream-seconds 30] [--no-pin]
    # one table per N on stdout (medians over the repeats), bench/results/visitors.json
    python -m bench.visitors --sessions 1,2 --repeats 1 --idle-seconds 10 --stream-seconds 10 --out /tmp/v.json
    # a small run to check the bench works (its numbers are not results)

Embedded mode over a fresh temporary LAB_DATA_DIR (every LAB_* and service variable of the caller's environment
dropped): one promoted model is built first with the CLI (commit --seed 41, continue, approve, each with --wait),
and that data directory is restored before every server, so each starts from the same lab. The server is a real
`streamlit run app.py` (bench/serving.py); "the server" below is its process tree, the streamlit process and all
its descendants (the embedded worker, the warm ci_tests interpreter and its forks), read from /proc: CPU is
utime+stime of every process in the tree plus the cutime+cstime of those it reaped, RSS the sum over the tree.

Pinned (the default): the server and everything it starts run under `taskset -c 0`, Chromium under `taskset -c 1`
and this bench (Playwright's driver, the CLI calls) on core 1 beside the browsers, so nothing of the bench's own
competes with the server for its core; other processes of the machine still may, and the output says how much of
the server's core they took while it rested. --no-pin leaves the scheduler to place everything.

For each repeat, for each N (repeats outermost, so a slow patch of the machine spreads over all N), one fresh server:
1. warm-up, not reported: one page visit, a wait for a live worker (`python -m engine workers`), and one CI run
   nobody watches, so imports and first-use costs are paid;
2. a CI run nobody watches (`python -m engine commit --seed S` without --wait; the store is polled until the run
   rests), then the server at rest with no session open for --idle-seconds (its own background: the worker's tick);
3. arrivals: N fresh browser contexts of one headless Chromium navigate at once; per session, seconds from its
   page.goto to the DAG visible (the first paint or the component's drawing, bench.dashboard.DAG_PICTURE) and to the
   end of its first page run; a session that shows nothing within --deadline is counted, not fatal. Server and
   browser CPU over the arrivals, per arriving session, and the server's also net of its no-session background
   (step 2's rate over the arrivals' window, which lasts as long as the slowest browser), and net also of the rest
   of the sessions already drawn (step 4's idle cost per session, times each session's time from the end of its
   first page run to the end of the window): what arriving itself costs;
4. after --settle-seconds, the server at rest with N sessions open for --idle-seconds: % of a core, and per idle
   session net of the 0-session background;
5. the same CI run (same seed) watched by the N sessions; its duration is the run's own step timings (first step
   started_at to last finished_at, from `python -m engine status RUN`), and the server's CPU over exactly that span
   (sampled every 0.1 s while a run is measured, interpolated) against the unwatched run's: per watching session,
   % of a core. A page notices a new run by polling, so part of what watching costs may come after a short run's
   last step: the server's CPU from the commit to --settle-seconds after the run rested is reported too, per
   watcher, net of the unwatched run's;
6. the stream at --rate claims/s asked (`python -m engine stream start --rate R`), pages scrolled to the Claims
   panel: achieved rate from `stream status` counts over --stream-seconds (each count timed at the middle of its
   CLI call; the producer's own clock, stream_state.produced_at, as a cross-check); then `stream stop`;
7. peak RSS of the server tree (and of the streamlit process alone), sampled every 0.5 s through all of the above;
   PSS every 10th sample (RSS sums count the pages a forked child shares with its parent once per process);
8. the reference: after that server stops, the same N fresh contexts arrive at once at a one-line Streamlit page
   (a server pinned the same way, the lab's .streamlit config): its browser CPU per arriving session is what any
   Streamlit page costs a browser, so the lab's own share of the browsers' time is the difference.

"End of the first page run" is measured twice. From the browser: the time until the page's script state (stApp's
data-test-script-state) is notRunning after its first run, with no [data-stale="true"] element and the DAG
visible; it includes the delivery to a browser that shares its core with N-1 others ("first_run_measured_from").
From the server: ui/busy.py logs each session's first page run, from the page script's start (the wait for a
page-run slot included) to the page's end, and this bench reads those lines from the server's log.

Everything started here (server, worker, Chromium) is stopped at the end, also on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from bench.dashboard import DAG_PICTURE
from bench.demo_memory import SERVICE_VARS, log_errors
from bench.serving import (
    CHROMIUM,
    command_line,
    descendants,
    launch_chromium,
    start_dashboard,
    status_kb,
    stop_dashboard,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "visitors.json"
SERVE_DEADLINE = 180          # seconds until a fresh server answers its health check
BUILD_DEADLINE = 1800         # seconds for one CLI step of building the promoted model, on a busy machine
RUN_DEADLINE = 900            # seconds for a CI run to rest, watched by 30 sessions on today's code
CLI_DEADLINE = 300            # seconds for a CLI call that does not wait for a run
SAMPLE_EVERY = 0.5            # seconds between samples of the server tree's CPU and RSS
SAMPLE_EVERY_IN_RUN = 0.1     # the same while a CI run is measured (runs can take about a second)
VIEWPORT = {"width": 1600, "height": 1000}
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"server_cpu_per_arrival_s": 0.15, "idle_per_session_pct": 1.0, "watching_per_session_pct": 2.0,
           "ci_watched_over_unwatched_at_10": 1.3, "first_runs_span_s_at_30": 10.0, "stream_rate_at_10": 20.0,
           "peak_rss_mb_at_30": 1024.0}
# The end of a page run as the browser sees it: the script has run (state notRunning once a run id exists; before
# the first run it reads "initial") and nothing from an earlier run waits to be redrawn.
FIRST_RUN_ENDED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""
LIVE_FEED = re.compile(r"^Latest \d+ claims")  # the live feed's heading on the Claims panel (ui/stream.py)
CONNECTION_STATE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app ? app.getAttribute('data-test-connection-state') : null;
}"""


# ---- processes: CPU, memory, cores ---------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, is index 0); None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int, reaped: bool = True) -> float:
    """utime+stime of `pid` (all its threads), plus cutime+cstime of the children it has reaped."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / CLK_TCK


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def tree(pid: int) -> list[int]:
    """`pid` and every living descendant."""
    return [pid, *descendants(pid)]


def tree_cpu(pid: int) -> float:
    """CPU seconds spent by the process tree under `pid` (processes that exited count through their parent)."""
    return sum(cpu_seconds(p) for p in tree(pid))


def browser_cpu(server_pid: int) -> float:
    """CPU seconds of this bench's descendants outside the server's tree: Playwright's driver, Chromium and its
    renderers (and a CLI call, if one runs at the time)."""
    server = set(tree(server_pid))
    return sum(cpu_seconds(p) for p in descendants(os.getpid()) if p not in server)


def core_ticks() -> dict[str, tuple[int, int]]:
    """(busy, total) clock ticks per core from /proc/stat ("cpu" is all cores together)."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu"):
            name, *values = line.split()
            ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
            out[name] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return out


class Window:
    """CPU of the server tree, of the browser, of this bench's own process and of each core, from its creation
    to end()."""

    def __init__(self, server_pid: int):
        self.pid = server_pid
        self.t, self.server, self.browser = time.monotonic(), tree_cpu(server_pid), browser_cpu(server_pid)
        self.bench, self.cores = cpu_seconds(os.getpid(), reaped=False), core_ticks()

    def end(self) -> dict:
        seconds = time.monotonic() - self.t
        server, browser = tree_cpu(self.pid) - self.server, browser_cpu(self.pid) - self.browser
        bench, cores = cpu_seconds(os.getpid(), reaped=False) - self.bench, core_ticks()
        busy = {name: round(100 * (cores[name][0] - b) / max(cores[name][1] - t, 1), 1)
                for name, (b, t) in self.cores.items() if name in cores}

        def pct(cpu: float) -> float | None:
            return round(100 * cpu / seconds, 1) if seconds else None
        return {"seconds": round(seconds, 2), "server_cpu_s": round(server, 2), "browser_cpu_s": round(browser, 2),
                "bench_cpu_s": round(bench, 2), "server_core_pct": pct(server), "browser_core_pct": pct(browser),
                "cores_busy_pct": busy}


class Sampler:
    """Every SAMPLE_EVERY seconds, in a thread: the server tree's CPU seconds and RSS (PSS every 10th sample),
    tagged with the phase; remembers every command seen in the tree."""

    def __init__(self, pid: int):
        self.pid, self.phase, self.samples, self.commands = pid, "serving", [], {}
        self.every, self.peak_by_process = SAMPLE_EVERY, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="visitors-sampler", daemon=True)

    def sample(self) -> dict:
        pids = tree(self.pid)
        for pid in pids[1:]:
            self.commands.setdefault(pid, command_line(pid))
        rss = {p: status_kb(p, "VmRSS") / 1024 for p in pids}
        row = {"t": time.time(), "phase": self.phase, "cpu_s": sum(cpu_seconds(p) for p in pids),
               "rss_mb": round(sum(rss.values()), 1), "processes": len(pids), "app_rss_mb": round(rss[self.pid], 1)}
        if row["rss_mb"] > max((s["rss_mb"] for s in self.samples), default=0):  # who holds the peak
            self.peak_by_process = [{"rss_mb": round(mb, 1), "command": "streamlit (the app)" if p == self.pid
                                     else self.commands.get(p, "")[:80]} for p, mb in rss.items()]
        if len(self.samples) % 10 == 0:
            row["pss_mb"] = round(sum(status_kb(p, "Pss", "smaps_rollup") for p in pids) / 1024, 1)
        self.samples.append(row)
        return row

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def cpu_at(self, when: float) -> float | None:
        """The tree's CPU seconds at epoch time `when`, interpolated between the samples around it."""
        rows = self.samples
        for a, b in zip(rows, rows[1:]):
            if a["t"] <= when <= b["t"]:
                share = (when - a["t"]) / (b["t"] - a["t"]) if b["t"] > a["t"] else 0
                return a["cpu_s"] + share * (b["cpu_s"] - a["cpu_s"])
        return None

    def peak(self) -> dict:
        """The highest RSS of the tree (and in which phase), the highest PSS, and the highest RSS of each phase."""
        top = max(self.samples, key=lambda s: s["rss_mb"])
        by_phase: dict[str, float] = {}
        for row in self.samples:
            by_phase[row["phase"]] = max(by_phase.get(row["phase"], 0.0), row["rss_mb"])
        return {"rss_mb": top["rss_mb"], "phase": top["phase"], "processes": top["processes"],
                "pss_mb": max((s["pss_mb"] for s in self.samples if "pss_mb" in s), default=None),
                "app_rss_mb": max(s["app_rss_mb"] for s in self.samples), "rss_mb_by_phase": by_phase,
                "by_process": self.peak_by_process}


# ---- the lab: environment, CLI, store -------------------------------------------------------------------------
def lab_env(data: Path, demo: bool) -> dict[str, str]:
    """Embedded mode over `data`: the caller's LAB_* and service variables dropped, so every setting is default."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS and not k.startswith("LAB_")}
    env.update(LAB_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    if demo:
        env["LAB_DEMO"] = "1"
    return env


def cli(env: dict, *args: str, timeout: float = CLI_DEADLINE) -> tuple[dict, float, float]:
    """`python -m engine ARGS`: (its JSON output, seconds it took, epoch time of its middle). Raises with stderr if
    it fails."""
    began, t0 = time.time(), time.monotonic()
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    took = time.monotonic() - t0
    if done.returncode:
        raise RuntimeError(f"python -m engine {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout), took, began + took / 2


async def acli(env: dict, *args: str, timeout: float = CLI_DEADLINE) -> tuple[dict, float, float]:
    """cli() off the event loop, so the pages' events keep flowing."""
    return await asyncio.to_thread(cli, env, *args, timeout=timeout)


def read_store(data: Path, query: str, *params):
    """One row from the lab's SQLite store (read-only), or None if it cannot be read right now."""
    try:
        with sqlite3.connect(f"file:{data / 'lab.db'}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(query, params).fetchone()
    except sqlite3.Error:
        return None


def epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def build_promoted_model(env: dict) -> float:
    """Run 1 through CI, CD and approval to promotion, in the CLI's own process (no server yet); seconds taken."""
    started = time.monotonic()
    for args in (("commit", "--seed", "41", "--message", "bench: the promoted model", "--wait"),
                 ("continue", "1", "--wait"), ("approve", "1", "--by", "bench", "--wait")):
        cli(env, *args, timeout=BUILD_DEADLINE)
    status = cli(env, "status", "1")[0]["status"]
    if status != "promoted":
        raise RuntimeError(f"the model build ended {status!r}, not promoted")
    return time.monotonic() - started


# ---- one server -----------------------------------------------------------------------------------------------
class ServerDied(RuntimeError):
    """The server exited while the bench needed it."""


class Server:
    """A dashboard server over the lab, its tree sampled; stop() ends it and everything it started."""

    def __init__(self, env: dict, log: Path, cpus: str | None):
        self.env, self.log = env, log
        started = time.monotonic()
        self.proc, self.url = start_dashboard(env, log, SERVE_DEADLINE, cpus=cpus)
        self.serving_s = time.monotonic() - started
        self.sampler = Sampler(self.proc.pid).start()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise ServerDied(f"streamlit exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")

    def active_sessions(self) -> float | None:
        """What the server itself counts as active sessions (its /_stcore/metrics), or None if it does not say."""
        try:
            with urllib.request.urlopen(self.url + "_stcore/metrics?families=active_sessions", timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        values = [float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith("active_sessions") and not line.startswith("#")]
        return sum(values) if values else None

    def stop(self) -> None:
        self.sampler.stop()
        stop_dashboard(self.proc)


async def ci_run(server: Server, data: Path, seed: int, label: str, settle: float) -> dict:
    """Commit (no --wait) and poll until the run rests. Its duration from its own step timings; the server tree's
    CPU over exactly that span (server_cpu_s), and from just before the commit to `settle` seconds after the run
    rested (server_cpu_to_settled_s: the page reruns a run causes may come after its last step)."""
    from engine.states import RESTING
    resting = {s.value for s in RESTING}
    server.sampler.phase, server.sampler.every = label, SAMPLE_EVERY_IN_RUN
    try:
        window, began = Window(server.proc.pid), time.monotonic()
        run_id = (await acli(server.env, "commit", "--seed", str(seed), "--message", f"bench: {label}"))[0]["id"]
        status, deadline = None, time.monotonic() + RUN_DEADLINE
        while status not in resting:
            server.check()
            if time.monotonic() > deadline:
                return {"run": run_id, "status": status, "error": f"not resting after {RUN_DEADLINE} s"}
            await asyncio.sleep(0.2)
            row = read_store(data, "SELECT status FROM runs WHERE id = ?", run_id)
            if row is None:  # the store's layout changed under the bench: ask the CLI instead (slower)
                row = ((await acli(server.env, "status", str(run_id)))[0]["status"],)
            status = row[0]
        wall = time.monotonic() - began
        await asyncio.sleep(settle)
        settled = window.end()
    finally:
        server.sampler.every = SAMPLE_EVERY
    run = (await acli(server.env, "status", str(run_id)))[0]
    steps = [(s["name"], s["status"], epoch(s.get("started_at")), epoch(s.get("finished_at"))) for s in run["steps"]]
    starts, ends = [a for _, _, a, _ in steps if a], [b for _, _, _, b in steps if b]
    out = {"run": run_id, "status": status, "wall_s": round(wall, 2), "duration_s": None, "server_cpu_s": None,
           "server_cpu_to_settled_s": settled["server_cpu_s"], "to_settled_s": settled["seconds"],
           "steps_s": {name: round(b - a, 2) for name, _, a, b in steps if a and b}}
    if starts and ends:
        first, last = min(starts), max(ends)
        out["duration_s"] = round(last - first, 2)
        cpu = [server.sampler.cpu_at(t) for t in (first, last)]
        if None not in cpu:
            out["server_cpu_s"] = round(cpu[1] - cpu[0], 2)
    return out


async def wait_for_worker(server: Server) -> float:
    """Seconds until `python -m engine workers` lists a live worker (the embedded worker, or the server's runner)."""
    began = time.monotonic()
    while not any(w.get("alive") for w in (await acli(server.env, "workers"))[0]):
        server.check()
        if time.monotonic() - began > SERVE_DEADLINE:
            raise RuntimeError(f"no worker alive {SERVE_DEADLINE} s after the server started")
        await asyncio.sleep(1)
    return round(time.monotonic() - began, 1)


async def idle(server: Server, seconds: float, label: str) -> dict:
    """The server at rest for `seconds`, whatever sessions are open."""
    server.sampler.phase = label
    window = Window(server.proc.pid)
    await asyncio.sleep(seconds)
    server.check()
    return window.end()


async def arrive(page, url: str, deadline: float, shown: str = DAG_PICTURE) -> dict:
    """One session's arrival: seconds from page.goto to `shown` visible (the DAG; "dag_s") and to the end of its
    first page run."""
    from playwright.async_api import Error as PlaywrightError
    t0, out = time.monotonic(), {"start": time.time(), "dag_s": None, "first_run_s": None}

    def left_ms() -> float:
        return max(1.0, (deadline - (time.monotonic() - t0)) * 1000)
    try:
        await page.goto(url, wait_until="commit", timeout=left_ms())
        await page.locator(shown).first.wait_for(state="visible", timeout=left_ms())
        out["dag_s"] = round(time.monotonic() - t0, 3)
        await page.wait_for_function(FIRST_RUN_ENDED, polling=100, timeout=left_ms())
        out["first_run_s"] = round(time.monotonic() - t0, 3)
    except PlaywrightError as exc:
        out["error"] = str(exc).splitlines()[0][:200]
    return out


async def page_states(pages) -> dict:
    """How many pages show the DAG, show a Streamlit exception, and in which connection state they are."""
    async def one(page):
        try:
            return (await page.locator(DAG_PICTURE).count() > 0,
                    await page.locator('[data-testid="stException"]').count() > 0,
                    await page.evaluate(CONNECTION_STATE))
        except Exception as exc:  # a crashed page is a finding
            return False, False, f"page error: {str(exc)[:80]}"
    states = await asyncio.gather(*(one(p) for p in pages))
    connections: dict[str, int] = {}
    for _, _, conn in states:
        connections[str(conn)] = connections.get(str(conn), 0) + 1
    return {"showing_dag": sum(s[0] for s in states), "with_exception": sum(s[1] for s in states),
            "connection": connections}


async def stream_phase(server: Server, data: Path, pages, rate: float, seconds: float, settle: float) -> dict:
    """The stream at `rate` asked with the pages on the Claims panel: achieved rate over `seconds`."""
    server.sampler.phase = "stream"
    await acli(server.env, "stream", "start", "--rate", f"{rate:g}")
    try:
        deadline = time.monotonic() + 120
        while (await acli(server.env, "stream", "status"))[0]["produced"] == 0:  # the producer takes its lease
            server.check()
            if time.monotonic() > deadline:
                return {"error": "the stream produced nothing in 120 s"}
            await asyncio.sleep(1)
        await asyncio.sleep(settle)  # the pages' watch fragment sees the stream on and starts the live panel

        async def to_claims(page):
            try:
                await page.get_by_role("heading", name="Claims stream").first.scroll_into_view_if_needed(
                    timeout=10_000)
            except Exception:  # a page that cannot scroll there still counts as a session on the dashboard
                pass
        await asyncio.gather(*(to_claims(p) for p in pages))
        query = "SELECT next_seq, produced_at FROM stream_state WHERE id = 1"
        window, before_row = Window(server.proc.pid), read_store(data, query)
        before, took0, t0 = await acli(server.env, "stream", "status")
        await asyncio.sleep(seconds)
        after, took1, t1 = await acli(server.env, "stream", "status")
        after_row, cpu = read_store(data, query), window.end()
        live = await asyncio.gather(*(p.get_by_text(LIVE_FEED).count() for p in pages))
        produced = after["produced"] - before["produced"]
        out = {"asked": rate, "produced": produced, "seconds": round(t1 - t0, 2),
               "achieved_rate": round(produced / (t1 - t0), 2), "status_call_s": [round(took0, 2), round(took1, 2)],
               "producer_alive": after["producer"]["alive"], "pages_showing_feed": sum(n > 0 for n in live),
               "server_cpu_s": cpu["server_cpu_s"], "server_core_pct": cpu["server_core_pct"]}
        if before_row and after_row and None not in (*before_row, *after_row) and after_row[1] > before_row[1]:
            out["producer_clock_rate"] = round((after_row[0] - before_row[0]) / (after_row[1] - before_row[1]), 2)
        return out
    finally:
        await acli(server.env, "stream", "stop")


async def one_server(browser, n: int, args, env: dict, data: Path, pristine: Path, logs: Path, label: str) -> dict:
    """A fresh server over the restored lab, measured with `n` sessions (steps 1-7 of the module docstring)."""
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(pristine, data)
    log = logs / f"streamlit-{label}.log"
    server = Server(env, log, None if args.no_pin else args.server_cpus)
    contexts, result = [], {"sessions": n, "serving_s": round(server.serving_s, 2)}
    deadline = args.deadline

    async def new_page():
        context = await browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(deadline * 1000)
        return page
    try:
        server.sampler.phase = "warm-up"
        # The visit first: a server whose runner starts with the first page run (today's app) runs no step before.
        result["warm_up_visit"] = await arrive(await new_page(), server.url, deadline)
        await contexts.pop().close()
        result["worker_alive_s"] = await wait_for_worker(server)
        result["warm_up_run"] = await ci_run(server, data, args.seed, "warm-up", args.settle_seconds)

        result["unwatched_run"] = await ci_run(server, data, args.seed, "unwatched run", args.settle_seconds)
        result["idle_0"] = await idle(server, args.idle_seconds, "rest, no session")

        pages = [await new_page() for _ in range(n)]
        server.sampler.phase = "arrivals"
        window = Window(server.proc.pid)
        result["arrivals"] = await asyncio.gather(*(arrive(p, server.url, deadline) for p in pages))
        result["arrival_window"] = window.end()
        result["server_first_runs"] = server_first_runs(log)[1:]  # the warm-up visit's is the first
        server.check()

        await asyncio.sleep(args.settle_seconds)
        result["idle_n"] = await idle(server, args.idle_seconds, f"rest, {n} sessions")
        if not args.no_pin and args.server_cpus.isdigit():  # the machine is shared: who else used the server's core
            for key in ("idle_0", "idle_n", "arrival_window"):
                w = result[key]
                w["others_on_server_core_pct"] = round(w["cores_busy_pct"][f"cpu{args.server_cpus}"]
                                                       - w["server_core_pct"], 1)
        result["active_sessions_reported"] = server.active_sessions()
        result["pages_at_rest"] = await page_states(pages)

        result["watched_run"] = await ci_run(server, data, args.seed, "watched run", args.settle_seconds)
        result["pages_after_run"] = await page_states(pages)
        result["stream"] = await stream_phase(server, data, pages, args.rate, args.stream_seconds,
                                              args.settle_seconds)
        result["pages_at_end"] = await page_states(pages)
    except Exception as exc:  # recorded, not fatal: the next server goes on (Ctrl-C is not an Exception)
        result["error"] = f"{type(exc).__name__}: {str(exc)[-2000:]}"
        print(f"  {label}: {result['error'][:600]}", file=sys.stderr)
    finally:
        await asyncio.gather(*(c.close() for c in contexts), return_exceptions=True)
        server.stop()
        result["peak"] = server.sampler.peak() if server.sampler.samples else None
        result["tree_commands"] = sorted(set(server.sampler.commands.values()))
        text = log.read_text(errors="replace")
        worker_log = data / "worker.log"  # the embedded worker's own log (engine/supervisor.py), if there is one
        if worker_log.exists():
            shutil.copy(worker_log, logs / f"worker-{label}.log")
            text += worker_log.read_text(errors="replace")
        result["log_errors"] = {line: e["count"] for line, e in log_errors(text).items()}
    try:
        result["plain"] = await plain_arrivals(browser, n, args, logs, label)
    except Exception as exc:  # recorded, not fatal
        result["plain"] = {"error": f"{type(exc).__name__}: {str(exc)[-500:]}"}
    result["summary"] = summarise(result)
    return result


PLAIN_PAGE = """import streamlit as st

st.title("A plain page")
st.write("One title and one line: what any Streamlit page costs a fresh browser and its server.")
"""
PLAIN_SHOWN = "h1:has-text('A plain page')"


async def plain_arrivals(browser, n: int, args, logs: Path, label: str) -> dict:
    """The reference: the same N fresh browser contexts arriving at once at a one-line Streamlit page, on a server
    pinned like the lab's, with the lab's .streamlit config. What a browser spends here is Streamlit's own cost."""
    folder = logs / f"plain-{label}"
    (folder / ".streamlit").mkdir(parents=True)
    shutil.copy(ROOT / ".streamlit" / "config.toml", folder / ".streamlit" / "config.toml")
    (folder / "plain.py").write_text(PLAIN_PAGE)
    proc, url = start_dashboard({**os.environ, "PYTHONPATH": ""}, logs / f"streamlit-plain-{label}.log",
                                SERVE_DEADLINE, cpus=None if args.no_pin else args.server_cpus,
                                script=folder / "plain.py")
    contexts = []
    try:
        warm = await browser.new_context(viewport=VIEWPORT)  # the server's first page run imports the script
        page = await warm.new_page()
        await page.goto(url)
        await page.locator(PLAIN_SHOWN).wait_for(timeout=args.deadline * 1000)
        await warm.close()
        pages = []
        for _ in range(n):
            contexts.append(await browser.new_context(viewport=VIEWPORT))
            pages.append(await contexts[-1].new_page())

        window = Window(proc.pid)
        shown = [a["first_run_s"] for a in await asyncio.gather(*(arrive(p, url, args.deadline, PLAIN_SHOWN)
                                                                    for p in pages))]
        w = window.end()
    finally:
        await asyncio.gather(*(c.close() for c in contexts), return_exceptions=True)
        stop_dashboard(proc)
    arrived = [t for t in shown if t is not None]
    return {"arrived": len(arrived), "median_s": _median(arrived), "slowest_s": max(arrived) if arrived else None,
            "server_cpu_per_arrival_s": round(w["server_cpu_s"] / n, 3),
            "browser_cpu_per_arrival_s": round(w["browser_cpu_s"] / n, 3), "window": w}


def server_first_runs(log: Path) -> list[float]:
    """Each session's first page run as the server timed it (ui/busy.py logs one line per session: from the page
    script's start, slot wait included, to the end of the page), in the order they ended."""
    from ui.busy import FIRST_RUN_LOG
    pattern = re.compile(re.escape(FIRST_RUN_LOG) + r" ([0-9.]+) s")
    return [float(m.group(1)) for m in pattern.finditer(log.read_text(errors="replace"))]


# ---- figures --------------------------------------------------------------------------------------------------
def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def summarise(r: dict) -> dict:
    """The figures of one server's measurement (None where a phase did not happen)."""
    n, s = r["sessions"], {}
    arrivals = r.get("arrivals") or []
    if arrivals:
        inf = float("inf")
        dag = [a["dag_s"] if a["dag_s"] is not None else inf for a in arrivals]
        first = [a["first_run_s"] if a["first_run_s"] is not None else inf for a in arrivals]
        t0 = min(a["start"] for a in arrivals)
        s.update(showing_dag=sum(d < inf for d in dag), dag_median_s=statistics.median(dag), dag_slowest_s=max(dag),
                 first_run_median_s=statistics.median(first), first_run_slowest_s=max(first),
                 first_runs_span_s=max(a["start"] - t0 + f for a, f in zip(arrivals, first)))
        s = {k: (None if v == inf else round(v, 2)) for k, v in s.items()}  # None: some session never got there
        own = r.get("server_first_runs") or []
        s.update(server_first_runs=len(own), server_first_run_median_s=_median(own),
                 server_first_run_slowest_s=round(max(own), 3) if own else None)
        w = r["arrival_window"]
        s.update(server_cpu_per_arrival_s=round(w["server_cpu_s"] / n, 3),
                 browser_cpu_per_arrival_s=round(w["browser_cpu_s"] / n, 3), arrival_window_s=w["seconds"],
                 browser_core_pct_arrivals=w["browser_core_pct"], bench_cpu_arrivals_s=w["bench_cpu_s"])
    if arrivals and r.get("idle_0"):
        # The server's own background (the worker's tick) runs through the arrivals too, and the window is as long
        # as the slowest browser: net of it, what the arrivals themselves cost.
        w = r["arrival_window"]
        net = w["server_cpu_s"] - r["idle_0"]["server_core_pct"] / 100 * w["seconds"]
        s["server_cpu_per_arrival_net_s"] = round(net / n, 3)
        if r.get("idle_n"):
            # A session drawn early rests (its watch timer ticks) while the slowest browsers are still drawing
            # theirs: what an open visitor costs, measured at rest as idle per session. Net of it too, what arriving
            # costs: each session's rest from the end of its first page run to the end of the window.
            t0 = min(a["start"] for a in arrivals)
            rested = sum(max(0.0, t0 + w["seconds"] - a["start"] - a["first_run_s"]) for a in arrivals
                         if a["first_run_s"] is not None)
            per_idle = (r["idle_n"]["server_core_pct"] - r["idle_0"]["server_core_pct"]) / n / 100
            s.update(arrivals_rested_s=round(rested, 1),
                     server_cpu_per_arrival_net_rest_s=round((net - per_idle * rested) / n, 3))
    plain = r.get("plain") or {}
    if "browser_cpu_per_arrival_s" in plain:
        s.update(plain_arrived=plain["arrived"], plain_median_s=plain["median_s"], plain_slowest_s=plain["slowest_s"],
                 plain_server_cpu_per_arrival_s=plain["server_cpu_per_arrival_s"],
                 plain_browser_cpu_per_arrival_s=plain["browser_cpu_per_arrival_s"])
    if r.get("idle_0") and r.get("idle_n"):
        base, rest = r["idle_0"]["server_core_pct"], r["idle_n"]["server_core_pct"]
        s.update(idle_0_pct=base, idle_n_pct=rest, idle_per_session_pct=round((rest - base) / n, 2),
                 idle_raw_per_session_pct=round(rest / n, 2))
    alone, watched = r.get("unwatched_run") or {}, r.get("watched_run") or {}
    if alone.get("duration_s") and watched.get("duration_s"):
        s.update(ci_unwatched_s=alone["duration_s"], ci_watched_s=watched["duration_s"],
                 ci_ratio=round(watched["duration_s"] / alone["duration_s"], 2),
                 ci_statuses=[alone["status"], watched["status"]])
        if alone.get("server_cpu_s") is not None and watched.get("server_cpu_s") is not None:
            s.update(ci_server_cpu_alone_s=alone["server_cpu_s"], ci_server_cpu_watched_s=watched["server_cpu_s"],
                     watching_per_session_pct=round(100 * (watched["server_cpu_s"] - alone["server_cpu_s"])
                                                    / watched["duration_s"] / n, 2))
        if alone.get("server_cpu_to_settled_s") is not None and watched.get("server_cpu_to_settled_s") is not None:
            s["watching_cpu_per_session_s"] = round(
                (watched["server_cpu_to_settled_s"] - alone["server_cpu_to_settled_s"]) / n, 3)
    stream = r.get("stream") or {}
    if "achieved_rate" in stream:
        s.update(stream_rate=stream["achieved_rate"], stream_rate_producer_clock=stream.get("producer_clock_rate"),
                 stream_pages_showing_feed=stream["pages_showing_feed"])
    if r.get("peak"):
        s.update(peak_rss_mb=r["peak"]["rss_mb"], peak_pss_mb=r["peak"]["pss_mb"], peak_phase=r["peak"]["phase"],
                 peak_processes=r["peak"]["processes"], peak_app_rss_mb=r["peak"]["app_rss_mb"])
    if r.get("idle_n"):  # how quiet the machine was: each core's busy share while the server rested
        s["cores_busy_pct_at_rest"] = r["idle_n"]["cores_busy_pct"]
        s["others_on_server_core_pct"] = r["idle_n"].get("others_on_server_core_pct")
    return s


ROWS = (  # (key in the summary, what, unit)
    ("showing_dag", "sessions showing the DAG within the deadline", ""),
    ("dag_median_s", "arrival to DAG visible, median session", "s"),
    ("dag_slowest_s", "arrival to DAG visible, slowest session", "s"),
    ("first_run_median_s", "arrival to first page run's end (browser), median", "s"),
    ("first_run_slowest_s", "arrival to first page run's end (browser), slowest", "s"),
    ("first_runs_span_s", "first arrival to the last first page run's end", "s"),
    ("server_first_run_median_s", "first page run as the server timed it, median", "s"),
    ("server_first_run_slowest_s", "first page run as the server timed it, slowest", "s"),
    ("server_cpu_per_arrival_s", "server CPU per arriving session", "s"),
    ("server_cpu_per_arrival_net_s", "the same, net of the no-session background", "s"),
    ("server_cpu_per_arrival_net_rest_s", "the same, net also of drawn sessions' rest in the window", "s"),
    ("browser_cpu_per_arrival_s", "browser CPU per arriving session", "s"),
    ("browser_core_pct_arrivals", "browser CPU during arrivals, % of a core", "%"),
    ("plain_arrived", "reference, a plain one-line page: sessions shown", ""),
    ("plain_median_s", "reference: arrival to first run's end, median", "s"),
    ("plain_slowest_s", "reference: arrival to first run's end, slowest", "s"),
    ("plain_server_cpu_per_arrival_s", "reference: server CPU per arriving session", "s"),
    ("plain_browser_cpu_per_arrival_s", "reference: browser CPU per arriving session", "s"),
    ("idle_0_pct", "server at rest, no session, % of a core", "%"),
    ("idle_n_pct", "server at rest, N sessions, % of a core", "%"),
    ("idle_per_session_pct", "server per idle session (net of no-session), % core", "%"),
    ("ci_unwatched_s", "CI run watched by nobody", "s"),
    ("ci_watched_s", "CI run watched by the N sessions", "s"),
    ("ci_ratio", "CI run watched / unwatched", "x"),
    ("ci_server_cpu_alone_s", "server CPU over the unwatched run", "s"),
    ("ci_server_cpu_watched_s", "server CPU over the watched run", "s"),
    ("watching_per_session_pct", "server per watching session (net of the run), % core", "%"),
    ("watching_cpu_per_session_s", "server CPU per watcher, commit to settled, net", "s"),
    ("stream_rate", "stream achieved (stream status counts), claims/s", "/s"),
    ("stream_rate_producer_clock", "stream achieved (producer's clock), claims/s", "/s"),
    ("stream_pages_showing_feed", "pages showing the live feed", ""),
    ("others_on_server_core_pct", "other processes on the server's core at rest, %", "%"),
    ("peak_rss_mb", "peak RSS, server tree (app + worker + children)", "MiB"),
    ("peak_pss_mb", "peak PSS, server tree (every 10th sample)", "MiB"),
    ("peak_app_rss_mb", "peak RSS, the streamlit process alone", "MiB"),
)


def combine(per_repeat: list[dict]) -> dict:
    """Median over the repeats of every figure (repeats where it is missing left out)."""
    keys = {k for r in per_repeat for k, v in r["summary"].items() if isinstance(v, (int, float))}
    return {k: _median([r["summary"].get(k) for r in per_repeat]) for k in sorted(keys)}


def report(result: dict) -> None:
    """Print one table per N: the median over repeats and each repeat's value."""
    pin = "unpinned" if result["no_pin"] else \
        f"server on core {result['server_cpus']}, browsers on core {result['browser_cpus']}"
    for n, block in result["by_sessions"].items():
        reps = block["repeats"]
        print(f"\nN = {n} session(s): median of {len(reps)} repeat(s), {pin}; deadline {result['deadline_s']:g} s")
        print(f"{'what':56} {'median':>9}  repeats")
        for key, what, unit in ROWS:
            values = [r["summary"].get(key) for r in reps]
            med = block["median"].get(key)
            shown = "-" if med is None else f"{med:g}{'/' + n if key == 'showing_dag' else ''}"
            each = ", ".join("-" if v is None else f"{v:g}" for v in values)
            if key in ("dag_slowest_s", "first_run_slowest_s", "first_runs_span_s") and None in values:
                each += f"  (- : a session past {result['deadline_s']:g} s)"
            print(f"{what:56} {shown:>9}  {each}")
        errors = [r.get("error") for r in reps if r.get("error")]
        for e in errors:
            print(f"  error: {e.splitlines()[0][:200]}")
        busy = [r["summary"].get("cores_busy_pct_at_rest") for r in reps]
        print(f"  cores busy while at rest (machine-wide, everyone's): {busy}")
    print(f"\nfirst page run's end is measured from the browser ({result['first_run_measured_from']}); "
          f"targets: {TARGETS}")


# ---- the bench ------------------------------------------------------------------------------------------------
async def measure(args, env: dict, data: Path, pristine: Path, logs: Path) -> dict:
    """Every (repeat, N) on its own fresh server, one Chromium throughout."""
    from playwright.async_api import async_playwright
    # SIGTERM takes Ctrl-C's path while the loop runs: the task is cancelled and every finally below runs.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    runs: dict[int, list[dict]] = {n: [] for n in args.sessions}
    async with async_playwright() as p:
        browser = await launch_chromium(p, cpus=None if args.no_pin else args.browser_cpus)
        try:
            for repeat in range(args.repeats):
                for n in args.sessions:
                    label = f"n{n}-r{repeat + 1}"
                    started = time.monotonic()
                    print(f"[{time.strftime('%H:%M:%S')}] {label}: {n} session(s), repeat {repeat + 1}", flush=True)
                    r = await one_server(browser, n, args, env, data, pristine, logs, label)
                    r["repeat"], r["seconds"] = repeat + 1, round(time.monotonic() - started, 1)
                    runs[n].append(r)
                    print(f"[{time.strftime('%H:%M:%S')}] {label}: done in {r['seconds']:.0f} s; "
                          f"{json.dumps({k: v for k, v in r['summary'].items() if k != 'cores_busy_pct_at_rest'})}",
                          flush=True)
        finally:
            try:
                await browser.close()
            except Exception as exc:  # already gone (Ctrl-C reaches Chromium too): nothing left to close
                print(f"closing Chromium: {exc}", file=sys.stderr)
    return runs


def stop_leftovers() -> list[int]:
    """SIGTERM, then SIGKILL, whatever this bench started that still runs (each by its pid); the pids found."""
    left = descendants(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(running(p) for p in left):
            time.sleep(0.2)
    return left


def _interrupted(*_) -> None:
    """SIGTERM ends the bench as Ctrl-C does: every finally runs (asyncio.run cancels the tasks it holds)."""
    raise KeyboardInterrupt


def parse_sessions(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--sessions {text!r}: give a comma-separated list of counts, e.g. 1,10,30")
    return values


def main(argv=None) -> dict:
    """Run the bench, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=parse_sessions, default=[1, 10, 30], help="session counts (default 1,10,30)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers per count (default 3)")
    parser.add_argument("--idle-seconds", type=float, default=30, help="each window at rest (default 30)")
    parser.add_argument("--stream-seconds", type=float, default=30, help="the stream's measured window (default 30)")
    parser.add_argument("--settle-seconds", type=float, default=5, help="pause before a window at rest (default 5)")
    parser.add_argument("--deadline", type=float, default=180, help="seconds a session may take to arrive (180)")
    parser.add_argument("--rate", type=float, default=20, help="claims/s asked of the stream (default 20)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the measured CI runs (default 42)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the browsers to cores")
    parser.add_argument("--server-cpus", default="0", help="taskset list for the server tree (default 0)")
    parser.add_argument("--browser-cpus", default="1", help="taskset list for Chromium and this bench (default 1)")
    parser.add_argument("--demo", action="store_true", help="serve with LAB_DEMO=1 (the guarded public demo)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the JSON written (default {RESULTS})")
    parser.add_argument("--keep", type=Path, help="copy the servers' and workers' logs to this directory")
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.idle_seconds, args.stream_seconds, args.deadline) <= 0 or args.rate <= 0:
        parser.error("--repeats must be at least 1; --idle-seconds, --stream-seconds, --deadline, --rate above 0")
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if not args.no_pin:
        allowed = os.sched_getaffinity(0)
        wanted = {int(c) for cpus in (args.server_cpus, args.browser_cpus) for c in cpus.split(",")}
        if not shutil.which("taskset") or not wanted <= allowed:
            parser.error(f"pinning needs taskset and cores {sorted(wanted)} (this process may use {sorted(allowed)});"
                         " pass --no-pin, or --server-cpus/--browser-cpus")
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.monotonic()
    result: dict = {"sessions": args.sessions, "repeats": args.repeats, "idle_seconds": args.idle_seconds,
                    "stream_seconds": args.stream_seconds, "settle_seconds": args.settle_seconds,
                    "deadline_s": args.deadline, "rate": args.rate, "seed": args.seed, "demo": args.demo,
                    "no_pin": args.no_pin, "server_cpus": args.server_cpus, "browser_cpus": args.browser_cpus,
                    "machine": f"{os.cpu_count()} cores", "load_at_start": os.getloadavg(),
                    "clients": "headless chromium, one context per session",
                    "first_run_measured_from": "browser: stApp data-test-script-state notRunning after the first run,"
                                               " no data-stale element, DAG visible; Streamlit reports no per-session"
                                               " script timing without app changes", "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="visitors-") as tmp:
        tmp = Path(tmp)
        data, pristine, logs = tmp / "lab", tmp / "pristine", tmp / "logs"
        logs.mkdir()
        env = lab_env(data, args.demo)
        try:
            print(f"[{time.strftime('%H:%M:%S')}] building the promoted model (CLI, --wait)", flush=True)
            result["build_s"] = round(build_promoted_model(env), 1)
            shutil.copytree(data, pristine)
            if not args.no_pin:  # after the build, which may use every core: from now on the bench sits by the browsers
                os.sched_setaffinity(0, {int(c) for c in args.browser_cpus.split(",")})
            try:
                runs = asyncio.run(measure(args, env, data, pristine, logs))
            except asyncio.CancelledError:  # SIGTERM (see measure)
                raise KeyboardInterrupt from None
        finally:
            signal.signal(signal.SIGTERM, _interrupted)  # the loop's own handler went with it
            if left := stop_leftovers():
                print(f"stopped processes left behind: {left}", file=sys.stderr)
            if args.keep:
                shutil.copytree(logs, args.keep, dirs_exist_ok=True)
    result["by_sessions"] = {str(n): {"median": combine(reps), "repeats": reps} for n, reps in runs.items()}
    result["load_at_end"] = os.getloadavg()
    result["total_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"\n{result['total_s']:.0f} s in all; written to {args.out}")
    return result


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: the servers, workers and Chromium it started are stopped; no results written",
              file=sys.stderr)
        sys.exit(130)

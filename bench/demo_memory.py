"""Demo memory bench: the Streamlit server's RSS through a whole autopilot lifecycle and a live stream.

    python -m bench.demo_memory [--sessions 10] [--stream-minutes 10] [--rate the demo's cap]
    # table on stdout, bench/results/demo_memory.json

The server is a real `streamlit run app.py` on a free loopback port, in embedded mode over a fresh temporary
LAB_DATA_DIR (SQLite state and MLflow store), with LAB_DEMO=1 as a public deployment runs. `--sessions` headless
Chromium pages (one browser, one context per page, so each page is its own Streamlit session) open the dashboard
and stay open. One of them opens the Demo page, presses Play and goes back to the dashboard; the autopilot then
plays its lifecycle in the server process (two commits through CI, CD, approval and promotion, the live stream,
a rollback, a drift act, the stream stopped); the bench waits for its session to end (engine.autopilot, read from
the same store). The pages are checked, then reloaded: a page opened on the empty lab keeps its empty state (it
has no timer while no run moves), so without the reload no session would draw the runs during the stream. Then
`python -m engine stream start --rate R --scenario aging` turns the stream on again, and the server's runner
produces it for `--stream-minutes`; the pages are checked again at the end.

Every 5 s the bench reads, from /proc, the RSS of the server process and, separately, of all its descendants
(the ci_tests pytest subprocess, worker pools), plus their PSS sum, the share a container is charged for (RSS
sums count shared pages once per process). Reported: RSS when serving, with the pages open, after the lifecycle,
after the reload (the stream's start), peak, at the end, growth over the stream phase, and the peak against
1 GiB, a typical free-tier container; the claims the stream produced; and how many pages show the dashboard
without an exception, after the lifecycle and at the end. The server and the browser stop at the end, also on
error.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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
RESULTS = Path(__file__).parent / "results" / "demo_memory.json"
LIMIT_MB = 1024.0  # 1 GiB, a typical free-tier container
SAMPLE_EVERY = 5.0
SERVE_DEADLINE = 180            # seconds until the fresh server answers its health check
PAGE_DEADLINE = 180             # seconds for one page to show the dashboard, on a busy machine
LIFECYCLE_DEADLINE = 45 * 60    # seconds for the whole autopilot session (about a minute on a quiet machine)
# Variables that would take the server out of embedded mode over its own data dir.
SERVICE_VARS = ("DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT")


# ---- processes and memory -------------------------------------------------------------------------------------
class Sampler:
    """Samples the server's memory every SAMPLE_EVERY seconds in a thread, tagging each sample with the phase."""

    def __init__(self, pid: int):
        self.pid, self.phase = pid, "serving"
        self.samples: list[dict] = []
        self.children_seen: dict[int, str] = {}
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def sample(self) -> dict:
        """One sample now: server RSS, descendants' RSS, and PSS of both, in MiB."""
        kids = descendants(self.pid)
        for kid in kids:
            self.children_seen.setdefault(kid, command_line(kid))
        row = {"t": round(time.monotonic() - self._started, 1), "phase": self.phase,
               "server_mb": round(status_kb(self.pid, "VmRSS") / 1024, 1),
               "children_mb": round(sum(status_kb(k, "VmRSS") for k in kids) / 1024, 1), "children": len(kids),
               "pss_total_mb": round(sum(status_kb(p, "Pss", "smaps_rollup") for p in [self.pid, *kids]) / 1024, 1)}
        row["total_mb"] = round(row["server_mb"] + row["children_mb"], 1)
        self.samples.append(row)
        return row

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_EVERY)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SAMPLE_EVERY * 2)


# ---- the server -----------------------------------------------------------------------------------------------
def server_env(data: Path) -> dict[str, str]:
    """The server's (and the CLI's) environment: embedded mode over `data`, demo mode on."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    return {**env, "LAB_DATA_DIR": str(data), "LAB_DEMO": "1", "PYTHONPATH": str(ROOT)}


class ServerDied(RuntimeError):
    """The server exited while the bench needed it."""


def check_alive(proc: subprocess.Popen, log: Path) -> None:
    """Raise ServerDied, with the end of its log, if the server has exited."""
    if proc.poll() is not None:
        raise ServerDied(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")


def wait_until(predicate, deadline_s: float, what: str, pause, proc, log):
    """Poll `predicate` until it returns something truthy (returned); `pause(seconds)` between polls."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        check_alive(proc, log)
        value = predicate()
        if value:
            return value
        pause(1.0)
    raise TimeoutError(f"{what} did not happen within {deadline_s:.0f} s")


def cli(env: dict, *args: str) -> dict:
    """`python -m engine ARGS` in the server's environment; its JSON output (raises with stderr on failure)."""
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    if done.returncode:
        raise RuntimeError(f"python -m engine {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def log_errors(log: str) -> dict[str, dict]:
    """The distinct exceptions in the server's log (the line each traceback ends with): count and first traceback."""
    found: dict[str, dict] = {}
    lines = log.splitlines()
    block_start = 0
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            block_start = max(i - 1, 0)  # the line before names what failed (a job, "Uncaught app execution")
        elif re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b", line):
            entry = found.setdefault(line[:300], {"count": 0, "traceback": "\n".join(lines[block_start:i + 1])[-3000:]})
            entry["count"] += 1
    return found


# ---- the browser ----------------------------------------------------------------------------------------------
def page_state(page) -> dict:
    """What `page` shows: the dashboard (its Fake commit action), with runs or empty, and any Streamlit exception."""
    errors = page.locator('[data-testid="stException"]')
    return {"dashboard": page.get_by_role("button", name="Fake commit").count() > 0,
            "empty": page.get_by_text("No runs yet").count() > 0,
            "exception": errors.first.inner_text()[:300] if errors.count() else None}


def pages_summary(states: list[dict]) -> dict:
    """How many pages show the dashboard without an exception, how many the empty state; the exceptions."""
    return {"showing_dashboard": sum(s["dashboard"] and not s["exception"] for s in states),
            "empty_state": sum(s["empty"] for s in states),
            "exceptions": {i: s["exception"] for i, s in enumerate(states) if s["exception"]}}


def open_dashboard(page, url: str, must: bool = True) -> bool:
    """Navigate `page` to the dashboard and wait until it is drawn; a page that is not drawn within the deadline
    raises, or with must=False is reported as False (a saturated server is a finding, not a reason to lose the
    run's figures)."""
    from playwright.sync_api import TimeoutError as PageTimeout
    try:
        page.goto(url, timeout=PAGE_DEADLINE * 1000)
        page.get_by_role("button", name="Fake commit").first.wait_for(timeout=PAGE_DEADLINE * 1000)
        return True
    except PageTimeout:
        if must:
            raise
        return False


def press_play(page, url: str) -> None:
    """Open the Demo page and press Play (the button keyed demo_play)."""
    page.goto(url + "demo")
    button = page.locator(".st-key-demo_play button")
    button.wait_for(timeout=PAGE_DEADLINE * 1000)
    button.click()


# ---- the bench ------------------------------------------------------------------------------------------------
def summarise(samples: list[dict]) -> dict:
    """The figures of the report from the tagged samples."""
    def last(phase):
        rows = [s for s in samples if s["phase"] == phase]
        return rows[-1] if rows else None

    stream = [s for s in samples if s["phase"] == "stream"]
    after, reloaded, end = last("lifecycle"), last("reload"), last("stream") or samples[-1]
    peak_total = max(samples, key=lambda s: s["total_mb"])
    out = {
        "server_serving_mb": samples[0]["server_mb"],
        "server_pages_open_mb": (last("pages") or samples[0])["server_mb"],
        "server_after_lifecycle_mb": after["server_mb"] if after else None,
        "server_pages_reloaded_mb": reloaded["server_mb"] if reloaded else None,
        "server_peak_mb": max(s["server_mb"] for s in samples),
        "children_peak_mb": max(s["children_mb"] for s in samples),
        "total_peak_mb": peak_total["total_mb"],
        "total_peak_at": {"t": peak_total["t"], "phase": peak_total["phase"]},
        "pss_total_peak_mb": max(s["pss_total_mb"] for s in samples),
        "server_end_mb": end["server_mb"],
    }
    if stream and reloaded:
        out["stream_growth_mb"] = round(end["server_mb"] - reloaded["server_mb"], 1)
        out["stream_peak_over_start_mb"] = round(max(s["server_mb"] for s in stream) - reloaded["server_mb"], 1)
    out["total_peak_share_of_1gib"] = round(out["total_peak_mb"] / LIMIT_MB, 3)
    out["headroom_to_1gib_mb"] = round(LIMIT_MB - out["total_peak_mb"], 1)
    return out


def run(sessions: int, stream_minutes: float, rate: float, tmp: Path) -> dict:
    """Start the server, open the pages, play the lifecycle, stream; return the raw result."""
    from playwright.sync_api import sync_playwright

    from engine import Lab, Settings
    from engine import autopilot as ap

    data = tmp / "lab"
    data.mkdir()
    env, log = server_env(data), tmp / "streamlit.log"
    result: dict = {"sessions": sessions, "stream_minutes": stream_minutes, "rate": rate, "clients": "chromium",
                    "machine": f"{os.cpu_count()} cores", "limit_mb": LIMIT_MB}
    started = time.monotonic()
    proc, url = start_dashboard(env, log, SERVE_DEADLINE)
    timings = {"serving_s": time.monotonic() - started}
    sampler = lab = None
    try:
        sampler = Sampler(proc.pid).start()
        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                sampler.phase = "pages"
                pages = []
                for _ in range(sessions):
                    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
                    open_dashboard(page, url)
                    pages.append(page)
                pause = pages[0].wait_for_timeout
                sampler.sample()  # the figure with every page open, before anything plays

                lab = Lab(Settings.from_env(env))  # reads the server's store; it runs nothing itself
                sampler.phase = "lifecycle"
                started = time.monotonic()
                press_play(pages[0], url)
                session = wait_until(lambda: ap.latest_session(lab), PAGE_DEADLINE, "an autopilot session starting",
                                     lambda s: pause(s * 1000), proc, log)
                # all pages sit on the dashboard while the autopilot plays
                result["play_page_drawn_again"] = open_dashboard(pages[0], url, must=False)
                ended = wait_until(lambda: (s := ap.latest_session(lab)) and not ap.is_active(s) and s,
                                   LIFECYCLE_DEADLINE, "the autopilot session ending", lambda s: pause(s * 1000),
                                   proc, log)
                timings["lifecycle_s"] = time.monotonic() - started
                result["autopilot"] = {"session": session["id"], "outcome": ended["outcome"],
                                       "runs": ap.session_runs(lab, session["id"]),
                                       "last_lines": [n["message"] for n in ap.narration(lab, session["id"])[-3:]]}
                if ended["outcome"] != "done":
                    raise RuntimeError(f"the autopilot ended {ended['outcome']!r}: {result['autopilot']['last_lines']}")
                sampler.sample()  # the after-lifecycle figure, taken now rather than up to 5 s later
                result["pages_after_lifecycle"] = pages_summary([page_state(page) for page in pages])
                # A page opened on the empty lab shows the empty state and has no timer to refresh it, and a
                # page with an exception stays that way: reload every page, so that each session draws the
                # dashboard with the autopilot's runs while the stream plays.
                sampler.phase = "reload"
                result["pages_not_drawn_on_reload"] = sum(not open_dashboard(page, url, must=False)
                                                          for page in pages)
                sampler.sample()  # the stream phase's starting figure

                sampler.phase = "stream"
                before = lab.stream.state()["next_seq"]
                cli(env, "stream", "start", "--rate", f"{rate:g}", "--scenario", "aging")
                enabled_at = lab.stream.state()["updated_at"]
                while (left := enabled_at + stream_minutes * 60 - time.time()) > 0:
                    check_alive(proc, log)
                    pause(min(left, SAMPLE_EVERY) * 1000)
                produced, elapsed = lab.stream.state()["next_seq"] - before, time.time() - enabled_at
                sampler.sample()  # the end figure
                sampler.phase = "checks"
                timings["stream_s"] = elapsed
                status = lab.stream.status()  # what `python -m engine stream status` prints
                result["stream"] = {"produced": produced, "achieved_rate": round(produced / elapsed, 1),
                                    "stored": status["stored"], "champion_version": status["champion_version"],
                                    "producer_alive": status["producer"]["alive"]}
                result["pages_at_end"] = pages_summary([page_state(page) for page in pages])
                cli(env, "stream", "stop")
            finally:
                browser.close()
    except Exception:
        print(f"--- end of the server's log ---\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if sampler:
            sampler.stop()
        if lab:
            lab.close()
        stop_dashboard(proc)
    result["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    result["server_log_tracebacks"] = log.read_text().count("Traceback")
    result["server_log_errors"] = log_errors(log.read_text())
    result["children_seen"] = sorted(set(sampler.children_seen.values()))
    result["memory"] = summarise(sampler.samples)
    result["samples"] = sampler.samples
    return result


def report(r: dict) -> None:
    """Print the table."""
    m = r["memory"]
    rows = [("server RSS, serving (no page open)", m["server_serving_mb"]),
            (f"server RSS, {r['sessions']} pages open", m["server_pages_open_mb"]),
            ("server RSS, after the lifecycle", m["server_after_lifecycle_mb"]),
            ("server RSS, pages reloaded (stream start)", m["server_pages_reloaded_mb"]),
            ("server RSS, peak", m["server_peak_mb"]),
            ("children RSS, peak (ci_tests, ...)", m["children_peak_mb"]),
            ("server + children RSS, peak", m["total_peak_mb"]),
            ("server + children PSS, peak", m["pss_total_peak_mb"]),
            ("server RSS, end", m["server_end_mb"]),
            (f"server RSS growth, {r['stream_minutes']:g} min stream", m.get("stream_growth_mb"))]
    print(f"{'what':40} {'MiB':>9}")
    for what, value in rows:
        print(f"{what:40} {'-' if value is None else f'{value:,.1f}':>9}")
    print(f"peak (server + children) is {m['total_peak_share_of_1gib']:.0%} of 1 GiB; "
          f"headroom {m['headroom_to_1gib_mb']:,.0f} MiB")
    s = r["stream"]
    print(f"stream: {s['produced']:,} claims in {r['timings_s']['stream_s']:.0f} s ({s['achieved_rate']:,.1f}/s of "
          f"{r['rate']:g}/s asked); lifecycle {r['timings_s']['lifecycle_s']:.0f} s, outcome "
          f"{r['autopilot']['outcome']}")
    for when in ("after_lifecycle", "at_end"):
        pages = r[f"pages_{when}"]
        print(f"pages {when.replace('_', ' ')}: {pages['showing_dashboard']}/{r['sessions']} show the dashboard "
              f"({pages['empty_state']} its empty state), {len(pages['exceptions'])} an exception")
    print(f"the Play page drawn on the dashboard within {PAGE_DEADLINE} s: {r.get('play_page_drawn_again')}; "
          f"pages not drawn within {PAGE_DEADLINE} s of their reload: {r.get('pages_not_drawn_on_reload')}")
    print(f"tracebacks in the server's log: {r['server_log_tracebacks']}")
    for line, entry in r["server_log_errors"].items():
        print(f"  {entry['count']} x {line}")


def main(argv=None) -> dict:
    """Run the bench, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="browser pages on the dashboard (default 10)")
    parser.add_argument("--stream-minutes", type=float, default=10, help="minutes of stream after the lifecycle")
    parser.add_argument("--rate", type=float,
                        help="claims per second in the stream phase (default: the public demo's cap, "
                             "LAB_DEMO_MAX_STREAM_RATE, 20 unless set; a higher rate is refused)")
    args = parser.parse_args(argv)
    if args.rate is None:
        from engine import Settings
        args.rate = Settings.from_env().demo_max_stream_rate  # what the demo server below will allow
    if args.sessions < 1 or args.stream_minutes <= 0 or args.rate <= 0:
        parser.error("--sessions must be at least 1, --stream-minutes and --rate more than 0")
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="demo-memory-") as tmp:
        result = run(args.sessions, args.stream_minutes, args.rate, Path(tmp))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    return result


if __name__ == "__main__":
    main()

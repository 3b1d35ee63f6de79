"""Dashboard bench: server-side time of one full rerun of the dashboard (AppTest), and browser time to the DAG.

    .venv/bin/python -m bench.dashboard [--reruns 20]   # table on stdout, bench/results/dashboard.json

Three stores: empty, one real run, and large (one real run through CI, plus 999 runs whose steps copy
its rows, 100,000 log lines and 5,000 MLflow runs). The large store is load for the queries the page makes,
so its extra rows are bulk-inserted copies, not pipeline runs. Rerun time is the median of `--reruns` AppTest
runs after a warm-up; browser time is from navigation until the DAG's frame is visible, median of 5 fresh
pages, in Debian's chromium.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "dashboard.json"
TARGETS = {"rerun_p50_ms_large": 150, "growth_large_over_empty": 2.0, "dag_visible_s": 2.5}


def lab_env(data: Path) -> dict[str, str]:
    """Environment pointing a Lab (or the app) at `data`; the app's runner idles during the bench."""
    return {"LAB_DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'lab.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": (data / "mlartifacts").as_uri(), "LAB_TICK_SECONDS": "3600"}


def seed_large(data: Path, runs: int = 1000, log_lines: int = 100_000, mlflow_runs: int = 5000) -> None:
    """Fill `data` with one real CI run plus bulk copies up to the requested sizes."""
    from engine import Lab, Settings
    from engine import store as S
    lab = Lab(Settings.from_env(lab_env(data)))
    real = lab.commit(seed=7, message="bench: real run")
    lab.runner.run_until_idle()
    steps = lab.store.steps_of(real)
    template = lab.store.get_run(real)
    with lab.store.tx() as c:
        for i in range(runs - 1):
            run_id = c.execute(sa.insert(S.runs).values(
                {**{k: v for k, v in template.items() if k != "id"}, "message": f"bench copy {i}"})
                .returning(S.runs.c.id)).scalar_one()
            c.execute(sa.insert(S.steps), [{**{k: v for k, v in s.items() if k != "id"}, "run_id": run_id}
                                           for s in steps])
        now = time.time()
        lines = [dict(run_id=real - (i % 50), step="ci_tests", attempt=1, ts=now, level="INFO",
                                           message=f"bench log line {i}") for i in range(log_lines)]
        if lines:
            c.execute(sa.insert(S.logs), lines)
    tracking = lab.tracking
    for i in range(mlflow_runs):
        run_id = tracking.start_run(f"bench-{i}", {"stage": "CI" if i % 2 else "CD"})
        tracking.log(run_id, metrics={"roc_auc": 0.9, "f1": 0.88})
    lab.close()


def rerun_times(data: Path, reruns: int) -> list[float]:
    """Seconds per full AppTest rerun of the app's default (dashboard) page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    os.environ.update(lab_env(data))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.run()  # warm: imports, caches
    if at.exception:
        raise RuntimeError(f"the dashboard raised: {at.exception[0].message}")
    out = []
    for _ in range(reruns):
        start = time.perf_counter()
        at.run()
        out.append(time.perf_counter() - start)
    from ui.common import get_lab
    get_lab().close()
    return out


def dag_visible_times(data: Path, pages: int = 5) -> list[float]:
    """Seconds from navigation to the DAG frame being visible, each in a fresh browser page."""
    import socket

    from playwright.sync_api import sync_playwright
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT,
                            env={**os.environ, **lab_env(data), "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        out = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update", "--no-first-run"])
            for i in range(pages + 1):  # the first page warms the server's caches and is not counted
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator("iframe").first.wait_for(state="visible", timeout=60_000)
                if i:
                    out.append(time.perf_counter() - start)
                page.close()
            browser.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main(argv=None) -> dict:
    """Run the bench, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=20)
    args = parser.parse_args(argv)
    result = {"reruns": args.reruns, "stores": {}}
    with tempfile.TemporaryDirectory() as tmp:
        # "one_run" isolates growth with data size: the empty store draws no DAG, inspector or claims at all.
        for name, sizes in (("empty", None), ("one_run", dict(runs=1, log_lines=0, mlflow_runs=0)),
                            ("large", {})):
            data = Path(tmp) / name
            data.mkdir()
            if sizes is not None:
                started = time.perf_counter()
                seed_large(data, **sizes)
                result[f"seed_seconds_{name}"] = round(time.perf_counter() - started, 1)
            times = rerun_times(data, args.reruns)
            dag = dag_visible_times(data) if shutil.which("chromium") else []
            result["stores"][name] = {"rerun_p50_ms": round(1000 * statistics.median(times), 1),
                                      "rerun_p90_ms": round(1000 * sorted(times)[int(0.9 * len(times))], 1),
                                      "dag_visible_s": round(statistics.median(dag), 2) if dag else None,
                                      "dag_visible_all_s": [round(t, 2) for t in dag]}
    stores = result["stores"]
    for base in ("empty", "one_run"):
        result[f"growth_large_over_{base}"] = round(stores["large"]["rerun_p50_ms"] / stores[base]["rerun_p50_ms"], 2)
    result["targets"] = TARGETS
    print(f"{'store':6} {'rerun p50 ms':>13} {'p90 ms':>8} {'DAG visible s':>14}")
    for name, r in result["stores"].items():
        dag = r["dag_visible_s"] or float("nan")
        print(f"{name:6} {r['rerun_p50_ms']:>13.1f} {r['rerun_p90_ms']:>8.1f} {dag:>14.2f}")
    print(f"growth large/empty: {result['growth_large_over_empty']:.2f}x, large/one run: "
          f"{result['growth_large_over_one_run']:.2f}x  (targets: {TARGETS})")
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

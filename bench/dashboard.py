"""Dashboard bench: server-side time of one full rerun (AppTest); in Chromium, time to the header (cold and
warm) and to the drawn DAG, console errors per session, and the share of stale (faded) samples during a run.

    .venv/bin/python -m bench.dashboard [--reruns 20] [--pages 5]   # table on stdout, results/dashboard.json
    .venv/bin/python -m bench.dashboard --quick --reruns 3 --pages 1  # a small run to check the bench works

Three stores: empty, one real run, and large (one real run through CI, plus 999 runs whose steps copy
its rows, 100,000 log lines and 5,000 MLflow runs). The large store is load for the queries the page makes,
so its extra rows are bulk-inserted copies, not pipeline runs. Rerun time is the median of `--reruns` AppTest
runs after a warm-up; browser times are from navigation until the header, and the DAG's picture (its plain first
paint or the component's drawing, ui/dag.py), are visible: the first page after the server starts is "cold", the
median of the next `--pages` fresh pages "warm". Stale samples are taken 4 times a second, while a CI run
committed from a second Lab is live on an open page, inside the pipeline and inspector fragment, over five CI
runs: the share of samples with an element a rerun has not redrawn yet (Streamlit marks it data-stale="true") and
the share with one the user sees faded (opacity below 1).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.serving import launch_chromium, start_dashboard, stop_dashboard

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "dashboard.json"
# The DAG as a user first sees it: the plain first paint or the component's drawing (ui/dag.py), whichever shows.
DAG_PICTURE = ".lab-dag-first img:visible, .lab-dag svg:visible"  # Playwright's :visible
TARGETS = {"rerun_p50_ms_large": 150, "growth_large_over_empty": 2.0, "dag_visible_s": 2.5,
           "stale_share": 0.10, "console_errors_per_session": 0}


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
    steps = [s.as_dict() for s in lab.store.steps_of(real)]
    template = lab.store.get_run(real).as_dict()
    with lab.store.tx() as c:
        for i in range(runs - 1):
            run_id = c.execute(sa.insert(S.runs).values(
                {**{k: v for k, v in template.items() if k in S.runs.c and k != "id"}, "message": f"bench copy {i}"})
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
    at = AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=120)
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


def _serve(data: Path, **env) -> tuple[subprocess.Popen, str]:
    """A dashboard server over `data`, its output in `data`/../streamlit-<name>.log; returns (process, base URL)
    once it answers."""
    return start_dashboard({**os.environ, **lab_env(data), "PYTHONPATH": str(ROOT), **env},
                           data.parent / f"streamlit-{data.name}.log", deadline_s=60)


def _page(browser, errors: list[str]):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def browser_times(data: Path, pages: int = 5) -> dict:
    """Per fresh browser page (a new session each): seconds from navigation to the header and to the DAG drawn,
    console errors, and whether Streamlit's raw page list showed. The first page after the server starts is
    the cold one; the others are warm."""
    from playwright.sync_api import sync_playwright
    proc, url = _serve(data)
    header, dag, errors_per_session, raw_nav = [], [], [], 0
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            for _ in range(pages + 1):
                errors: list[str] = []
                page = _page(browser, errors)
                start = time.perf_counter()
                page.goto(url)
                page.get_by_text("Claim ML CI/CD Lab").first.wait_for(state="visible", timeout=60_000)
                header.append(time.perf_counter() - start)
                raw_nav += page.locator('[data-testid="stSidebarNav"]').count() > 0
                page.locator(DAG_PICTURE).first.wait_for(state="visible", timeout=60_000)
                dag.append(time.perf_counter() - start)
                page.wait_for_timeout(1000)  # errors logged just after the first paint count too
                errors_per_session.append(len(errors))
                page.close()
            browser.close()
    finally:
        stop_dashboard(proc)
    return {"header_cold_s": round(header[0], 2), "header_warm_s": round(statistics.median(header[1:]), 2),
            "dag_visible_s": round(statistics.median(dag[1:]), 2), "dag_visible_all_s": [round(t, 2) for t in dag],
            "console_errors_per_session": errors_per_session, "raw_page_list_seen": raw_nav}


# The panels fragment (DAG and inspector) is the vertical block around the DAG component's host element. A sample
# reports both what a rerun has not redrawn yet (data-stale="true") and what of that the user sees faded (computed
# opacity below 1: Streamlit fades stale elements, ui/theme.css keeps the live panels at full strength).
_STALE_IN_PANELS = """el => {
  const block = el.getRootNode().host.closest('[data-testid="stVerticalBlock"]');
  const stale = [...block.querySelectorAll('[data-stale="true"]')];
  const outer = block.closest('[data-stale="true"]');
  if (outer) stale.push(outer);
  const faded = stale.filter(e => parseFloat(getComputedStyle(e).opacity) < 1);
  return [stale.length, faded.length];
}"""


def stale_share(data: Path, runs: int = 5, every: float = 0.25, limit: float = 120) -> dict:
    """Samples taken `every` seconds while a CI run is live on an open page, over `runs` runs one after another:
    the share in which any element of the pipeline or the inspector is stale (a rerun has not redrawn it yet),
    and the share in which one shows faded. Each run is committed from a second Lab once the page is open, as a
    CLI user would; the page follows it by itself."""
    from playwright.sync_api import sync_playwright

    from engine import Lab, Settings
    from engine.states import RunStatus
    active = (RunStatus.QUEUED, RunStatus.RUNNING)
    proc, url = _serve(data, LAB_TICK_SECONDS="0.5")
    samples, errors = [], []
    lab = Lab(Settings.from_env(lab_env(data)))
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = _page(browser, errors)
            page.goto(url)
            page.get_by_text("Claim ML CI/CD Lab").first.wait_for(state="visible", timeout=60_000)
            for i in range(runs):
                run_id = lab.commit(message=f"bench: stale samples {i + 1}")
                # Sampled from the commit on: the worker runs CI in about as long as the page takes to notice it.
                deadline = time.monotonic() + limit
                while time.monotonic() < deadline and lab.run(run_id).status in active:
                    samples.append(page.locator(".lab-dag").first.evaluate(_STALE_IN_PANELS))
                    page.wait_for_timeout(every * 1000)
                page.get_by_text(f"run {run_id}:").first.wait_for(state="visible", timeout=60_000)
            browser.close()
    finally:
        lab.close()
        stop_dashboard(proc)
    stale, faded = sum(s > 0 for s, _ in samples), sum(f > 0 for _, f in samples)

    def share(n: int) -> float | None:
        return round(n / len(samples), 3) if samples else None
    return {"runs": runs, "samples": len(samples), "stale_samples": stale, "stale_share": share(stale),
            "faded_samples": faded, "faded_share": share(faded), "console_errors": len(errors)}


def main(argv=None) -> dict:
    """Run the bench, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=20)
    parser.add_argument("--pages", type=int, default=5, help="fresh browser pages per store")
    parser.add_argument("--quick", action="store_true", help="a small 'large' store: to check the bench runs")
    args = parser.parse_args(argv)
    result = {"reruns": args.reruns, "stores": {}}
    with tempfile.TemporaryDirectory() as tmp:
        # "one_run" isolates growth with data size: the empty store draws no DAG, inspector or claims at all.
        large = dict(runs=50, log_lines=2000, mlflow_runs=50) if args.quick else {}
        for name, sizes in (("empty", None), ("one_run", dict(runs=1, log_lines=0, mlflow_runs=0)),
                            ("large", large)):
            data = Path(tmp) / name
            data.mkdir()
            if sizes is not None:
                started = time.perf_counter()
                seed_large(data, **sizes)
                result[f"seed_seconds_{name}"] = round(time.perf_counter() - started, 1)
            times = rerun_times(data, args.reruns)
            browser = browser_times(data, args.pages) if shutil.which("chromium") else {}
            result["stores"][name] = {"rerun_p50_ms": round(1000 * statistics.median(times), 1),
                                      "rerun_p90_ms": round(1000 * sorted(times)[int(0.9 * len(times))], 1),
                                      **browser}
            if name == "one_run" and shutil.which("chromium"):
                result["during_a_run"] = stale_share(data)
    stores = result["stores"]
    for base in ("empty", "one_run"):
        result[f"growth_large_over_{base}"] = round(stores["large"]["rerun_p50_ms"] / stores[base]["rerun_p50_ms"], 2)
    result["targets"] = TARGETS
    print(f"{'store':7} {'rerun p50 ms':>13} {'p90 ms':>8} {'header cold s':>14} {'warm s':>7} "
          f"{'DAG visible s':>14} {'console errors':>15}")
    for name, r in result["stores"].items():
        nan = float("nan")
        print(f"{name:7} {r['rerun_p50_ms']:>13.1f} {r['rerun_p90_ms']:>8.1f} {r.get('header_cold_s', nan):>14.2f} "
              f"{r.get('header_warm_s', nan):>7.2f} {r.get('dag_visible_s', nan):>14.2f} "
              f"{sum(r.get('console_errors_per_session', [])):>15}")
    if "during_a_run" in result:
        run = result["during_a_run"]
        print(f"during {run['runs']} CI runs: {run['samples']} samples, {run['stale_samples']} with a stale element "
              f"({run['stale_share']}), {run['faded_samples']} with a faded one ({run['faded_share']}); "
              f"{run['console_errors']} console errors")
    print(f"growth large/empty: {result['growth_large_over_empty']:.2f}x, large/one run: "
          f"{result['growth_large_over_one_run']:.2f}x  (targets: {TARGETS})")
    if not args.quick:  # a quick run checks the bench; its numbers are not results
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

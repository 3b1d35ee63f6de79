"""Stream bench: claims/s through the whole producer path, one drift snapshot, RSS over a long run.

    python -m bench.stream [--backends sqlite,postgres] [--soak-minutes 10] [--evidently /path/to/venv/python]

Setup (not timed): a lab with two promoted versions (real CI and CD runs) and `staging` pointed back at the
first, so every claim is scored by the champion *and* a shadow. Then:

- throughput: `Stream.produce(BATCH)` (generate, score by champion and shadow through the served pyfunc, store,
  label, prune), median claims/s over several batches, snapshots excluded (timed on their own below);
- snapshot: `monitor.snapshot` over a 10,000-claim window against the 10,000-row reference, all six features
  and the prediction PSI, median of 7; with `--evidently`, Evidently's Report(DataDriftPreset(method="psi"))
  on the same frames in a separate interpreter (it needs pandas < 3), median of 7, and the ratio;
- worker rate: a worker (a second Lab on the same store, its real scheduler ticking every second, snapshots
  included) set to `--worker-rate` claims/s (default 5,000) for `--worker-seconds`, on each backend: claims stored
  per second after a 5 s warm-up (the stream's position moves only when a batch is stored);
- soak: the real scheduler produces at 200 claims/s for `--soak-minutes`; RSS sampled every 15 s, growth is
  the last sample minus the one after the first minute (imports and caches warm up in that minute).

Writes bench/results/stream.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "stream.json"
TARGETS = {"claims_per_s": 5000, "snapshot_ms": 50, "rss_growth_mb": 50}
BATCH = 5000
PG_ADMIN = os.environ.get("LAB_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def rss_mb() -> float:
    """This process's resident set size in MB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_lab(data: Path, database_url: str | None = None, seeds: tuple[int, ...] = (11, 12), **overrides):
    """A lab in `data` (SQLite unless a URL is given) with a promoted version per seed (two by default) and, with
    two or more, staging = version 1 (a shadow scores every claim)."""
    from engine.config import STAGING, Settings
    from engine.lab import Lab
    lab = Lab(Settings.from_env({}, data_dir=data, **({"database_url": database_url} if database_url else {}),
                                **overrides))
    for seed in seeds:
        run = lab.commit(seed=seed, message=f"bench model {seed}", author="bench")
        lab.runner.run_until_idle()
        lab.continue_run(run, by="bench")
        lab.runner.run_until_idle()
        lab.approve(run, by="bench")
        lab.runner.run_until_idle()
        assert lab.run(run).status == "promoted", lab.run(run).steps
    if len(seeds) > 1:
        lab.tracking.set_alias(STAGING, 1)  # champion 2, staging 1: every claim gets a shadow decision
    return lab


def throughput(lab, batches: int = 6) -> dict:
    """Median claims/s of Stream.produce(BATCH), snapshots excluded."""
    from engine import stream as S
    saved, S.SNAPSHOT_EVERY = S.SNAPSHOT_EVERY, 10**12
    try:
        lab.stream.start(rate=200, scenario="inflation", ramp=0, by="bench")
        lab.stream.produce(BATCH)  # warm-up: model loads, reference, first inserts
        rates = []
        for _ in range(batches):
            started = time.perf_counter()
            lab.stream.produce(BATCH)
            rates.append(BATCH / (time.perf_counter() - started))
    finally:
        S.SNAPSHOT_EVERY = saved
        lab.stream.stop(by="bench")
    shadowed = lab.stream.claims(limit=10)["shadow_version"].notna().all()
    return {"claims_per_s": statistics.median(rates), "runs": [round(r) for r in rates],
            "batch": BATCH, "shadow_scored": bool(shadowed)}


def worker_rate(lab, rate: float, seconds: float, warmup: float = 5.0) -> dict:
    """Claims/s a worker stores when set to `rate`: a second Lab on the same store runs the real scheduler."""
    from engine.lab import Lab
    lab.stream.start(rate=rate, scenario="inflation", ramp=0, by="bench")
    worker = Lab(lab.settings).start()
    try:
        time.sleep(warmup)  # model loads and the first batches: not the steady rate
        first, started = lab.stream.state()["next_seq"], time.monotonic()
        time.sleep(seconds)
        stored, elapsed = lab.stream.state()["next_seq"] - first, time.monotonic() - started
    finally:
        lab.stream.stop(by="bench")
        worker.close()
    return {"set_rate": rate, "seconds": round(elapsed, 1), "stored": stored, "stored_per_s": stored / elapsed}


def snapshot_frames(lab):
    """The reference and a drifted 10,000-claim window, as the snapshot sees them."""
    from engine.ml.claims import CATEGORICAL
    ref = lab.stream.reference(lab.tracking.alias_version("champion"))
    lab.stream.start(rate=200, scenario="inflation", ramp=0, by="bench")
    while lab.stream.state()["next_seq"] < 10_000:
        lab.stream.produce(BATCH)
    lab.stream.stop(by="bench")
    window = lab.stream.claims(limit=10_000).astype({c: "category" for c in CATEGORICAL})
    return ref, window


def snapshot_ms(ref, window, repeats: int = 7) -> dict:
    """Median wall time of one snapshot: six features' PSI and tests, the prediction PSI, the performance level
    with its bootstrap intervals, calibration and the distributions."""
    from engine.ml.monitor import snapshot
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        snapshot(ref["features"], ref["p_approved"], window, 500, holdout=ref["holdout"])  # with performance
        times.append((time.perf_counter() - started) * 1000)
    return {"snapshot_ms": statistics.median(times), "runs_ms": [round(t, 1) for t in times],
            "window": len(window), "reference": len(ref["features"])}


EVIDENTLY = """
import json, statistics, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_pickle(sys.argv[1]), pd.read_pickle(sys.argv[2])
times = []
for _ in range(7):
    t = time.perf_counter()
    Report([DataDriftPreset(method="psi")]).run(reference_data=ref, current_data=cur)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"evidently_ms": statistics.median(times), "runs_ms": [round(x, 1) for x in times]}))
"""


def evidently_ms(python: str, ref, window) -> dict | None:
    """Evidently on the same frames (features + prediction), in its own interpreter."""
    from engine.ml.claims import FEATURES
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "ref.pkl", Path(tmp) / "cur.pkl"
        cols = list(FEATURES)
        ref_frame = ref["features"][cols].astype({c: str for c in cols[:3]}).assign(prediction=ref["p_approved"])
        cur_frame = window[cols].astype({c: str for c in cols[:3]}).assign(
            prediction=window["p_approved"].to_numpy(float))
        # Plain dtypes: pickles made under pandas 3 must load under the pandas < 3 Evidently needs.
        for frame, path in ((ref_frame, a), (cur_frame, b)):
            pd.DataFrame({c: (frame[c].astype(object) if c in cols[:3] else frame[c].astype(float))
                          for c in frame.columns}).to_pickle(path, protocol=4)
        done = subprocess.run([python, "-c", EVIDENTLY, str(a), str(b)], capture_output=True, text=True)
    if done.returncode:
        print(f"evidently failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def soak(lab, minutes: float, rate: float = 200) -> dict:
    """The real scheduler producing at `rate` for `minutes`; RSS samples every 15 s."""
    lab.stream.start(rate=rate, scenario="aging", ramp=0, by="bench")
    lab.start()
    samples, started = [], time.monotonic()
    first_seq = lab.stream.state()["next_seq"]
    try:
        while (elapsed := time.monotonic() - started) < minutes * 60:
            samples.append((round(elapsed), round(rss_mb(), 1)))
            time.sleep(15)
        samples.append((round(time.monotonic() - started), round(rss_mb(), 1)))
    finally:
        lab.stream.stop(by="bench")
    produced = lab.stream.state()["next_seq"] - first_seq
    base = next((mb for t, mb in samples if t >= 60), samples[0][1])
    return {"minutes": minutes, "rate": rate, "produced": produced,
            "achieved_rate": produced / (minutes * 60), "rss_start_mb": samples[0][1], "rss_after_1min_mb": base,
            "rss_end_mb": samples[-1][1], "rss_growth_mb": samples[-1][1] - base, "samples": samples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--soak-minutes", type=float, default=10)
    ap.add_argument("--worker-rate", type=float, default=5000, help="claims/s the worker is set to (0: skip)")
    ap.add_argument("--worker-seconds", type=float, default=30)
    ap.add_argument("--evidently", help="python of a venv with evidently installed")
    args = ap.parse_args()
    import sqlalchemy as sa
    results: dict = {"targets": TARGETS, "machine": f"{os.cpu_count()} cores"}
    with tempfile.TemporaryDirectory() as tmp:
        base = make_lab(Path(tmp) / "sqlite")
        if "sqlite" in args.backends:
            results["sqlite"] = throughput(base)
            if args.worker_rate > 0:
                results["sqlite"]["worker"] = worker_rate(base, args.worker_rate, args.worker_seconds)
        if "postgres" in args.backends:
            name = f"lab_bench_{os.getpid()}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                pg = make_lab(Path(tmp) / "pg", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
                results["postgres"] = throughput(pg)
                if args.worker_rate > 0:
                    results["postgres"]["worker"] = worker_rate(pg, args.worker_rate, args.worker_seconds)
                pg.close()
            finally:
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        ref, window = snapshot_frames(base)
        results["snapshot"] = snapshot_ms(ref, window)
        if args.evidently:
            ev = evidently_ms(args.evidently, ref, window)
            if ev:
                results["evidently"] = {**ev, "ratio": ev["evidently_ms"] / results["snapshot"]["snapshot_ms"]}
        if args.soak_minutes > 0:
            results["soak"] = soak(base, args.soak_minutes)
        base.close()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    rows = [("claims/s, SQLite", results.get("sqlite", {}).get("claims_per_s"), ">= 5,000"),
            ("claims/s, PostgreSQL", results.get("postgres", {}).get("claims_per_s"), ">= 5,000"),
            ("worker stored/s, SQLite", (results.get("sqlite", {}).get("worker") or {}).get("stored_per_s"),
             f">= {args.worker_rate:,.0f} (set)"),
            ("worker stored/s, PostgreSQL", (results.get("postgres", {}).get("worker") or {}).get("stored_per_s"),
             f">= {args.worker_rate:,.0f} (set)"),
            ("snapshot, 10k window, ms", results["snapshot"]["snapshot_ms"], "<= 50"),
            ("Evidently, same data, ms", (results.get("evidently") or {}).get("evidently_ms"), "ratio"),
            ("Evidently / ours", (results.get("evidently") or {}).get("ratio"), "report"),
            ("RSS growth at 200/s, MB", (results.get("soak") or {}).get("rss_growth_mb"), "<= 50")]
    print(f"{'what':32} {'value':>12}  target")
    for what, value, target in rows:
        shown = "-" if value is None else f"{value:,.1f}"
        print(f"{what:32} {shown:>12}  {target}")


if __name__ == "__main__":
    main()

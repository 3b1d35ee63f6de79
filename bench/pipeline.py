"""Pipeline bench: wall time of each stage through the engine next to the raw compute of the same work.

    .venv/bin/python -m bench.pipeline [--runs 5]      # table on stdout, bench/results/pipeline.json

One warm process (like a dashboard server), embedded SQLite state and MLflow store in a temp dir. A warm-up
lifecycle runs first (imports, MLflow schema, a first champion), then each measured repetition times:
  CI      commit -> ci_complete           vs  raw: the CI pytest run (a fork of the warm interpreter the
                                                  engine keeps, engine/warm.py) alongside generate, validate, fit,
                                                  score and an MLflow run with params, metrics and dataset
  CD      continue -> awaiting_approval   vs  raw: generate, split, fit, isotonic calibration and its
                                                  reliability, threshold search, score, SHAP + PNG, MLflow run
                                                  with three digested datasets and four artifacts, register,
                                                  version tags, alias, then challenger and champion scored on a
                                                  fresh holdout and compared with paired-bootstrap intervals
  deploy  approve -> promoted             vs  raw: alias staging, both models on a shadow batch with the accuracy
                                                  interval, PSI, alias champion
The raw side calls the same engine.ml functions and MLflow client directly: no store, no runner, no steps.
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

from engine import Lab, Settings, warm
from engine.ml import gates
from engine.ml import model as M
from engine.ml.claims import derived_seed, generate_claims, label_array
from engine.ml.drift import feature_drift
from engine.ml.monitor import calibration
from engine.ml.provenance import carve, described, frame_digest, quick_parts
from engine.ml.threshold import Costs, choose_threshold
from engine.ml.validation import validate
from engine.pipeline import spec
from engine.steps.ci_tests import SUITE

RESULTS = Path(__file__).parent / "results" / "pipeline.json"
TARGETS = {"CI": 3.0, "CD": 6.0, "deploy": 3.0}
WINDOW = "2025-01-01..2025-06-30"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def engine_stages(lab: Lab, seed: int) -> dict[str, float]:
    """Stage wall times of one run through the engine (commit, continue, approve)."""
    out, run_id = {}, None

    def commit():
        nonlocal run_id
        run_id = lab.commit(seed=seed, message="bench")
        lab.runner.run_until_idle()
    out["CI"] = _timed(commit)
    out["CD"] = _timed(lambda: (lab.continue_run(run_id), lab.runner.run_until_idle()))
    out["deploy"] = _timed(lambda: (lab.approve(run_id, "bench", "bench"), lab.runner.run_until_idle()))
    status = lab.run(run_id).status
    if status != "promoted":
        raise RuntimeError(f"bench run {run_id} ended {status}; benchmarks need a clean lifecycle")
    return out


def raw_ci(tracking, seed: int, tmp: Path) -> None:
    """The CI work without the engine."""
    ci, quick = spec("ci_tests").params(), spec("ci_quick_train").params()
    sample_path = tmp / f"ci-{seed}.pkl"
    generate_claims(ci["sample_rows"], seed, WINDOW).to_pickle(sample_path)
    root = Path(__file__).parents[1]
    tests = warm.pytest([str(SUITE), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(root),
                         f"--junitxml={tmp / 'junit.xml'}"],
                        {**os.environ, "LAB_CI_SAMPLE": str(sample_path), "PYTHONPATH": str(root),
                         "LAB_CI_MIN_ROC_AUC": str(ci["min_roc_auc"]), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
                        root, tmp / "pytest.log")
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "engine/ml"], capture_output=True,
                          cwd=Path(__file__).parents[1])
    feed = generate_claims(spec("data_validation").params()["rows"], seed, WINDOW)
    validate(feed)
    parts = quick_parts(feed, quick["sample_rows"], quick["holdout_share"], quick["validation_share"], seed)
    model = M.train(parts["training"], {**quick["forest"], "random_state": seed})
    threshold = choose_threshold(label_array(parts["validation"]), M.predict_approval(model, parts["validation"]),
                                 Costs(**quick["costs"])).threshold
    metrics = M.evaluate(model, parts["evaluation"], threshold)
    run_id = tracking.start_run(f"raw-ci-{seed}", {"stage": "CI"})
    tracking.log(run_id, params=quick["forest"], metrics={k: v for k, v in metrics.items() if isinstance(v, float)})
    for context, frame in parts.items():
        tracking.log_dataset(run_id, frame, f"claims-{context}", context, digest=frame_digest(frame))
    tracking.finish(run_id)
    tests.wait()
    assert lint.returncode == 0 and tests.returncode == 0


def raw_cd(tracking, seed: int) -> int:
    """The CD work without the engine, call for call what cd_full_train and evaluate_vs_champion do (calibration,
    reliability, artifacts, version tags and the gate's metrics included); returns the registered version."""
    p, ev = spec("cd_full_train").params(), spec("evaluate_vs_champion").params()
    feed = generate_claims(p["rows"], seed, WINDOW)
    holdout = generate_claims(p["holdout_rows"], derived_seed(seed, 1), WINDOW)
    rows, validation = carve(feed, p["validation_share"], seed)
    started = time.perf_counter()
    forest = M.train(rows, {**p["forest"], "random_state": seed})
    fit_seconds = time.perf_counter() - started
    model = M.calibrate(forest, validation, p["calibration"])
    outcome = label_array(holdout) == 1
    before, after = (calibration(M.predict_approval(m, holdout), outcome) for m in (forest, model))
    costs = Costs(**p["costs"])
    choice = choose_threshold(label_array(validation), M.predict_approval(model, validation), costs)
    threshold = choice.threshold
    metrics = M.evaluate(model, holdout, threshold)
    explanation = M.explain(model, holdout, p["shap_sample_size"], seed)
    parts = {"training": rows, "validation": validation, "evaluation": holdout}
    datasets = described(parts)
    tags = {"commit_sha": f"raw{seed}", "stage": "CD", "dataset_window": WINDOW, "seed": str(seed),
            "model_version": "unregistered", "pipeline_run_id": "raw"}
    run_id = tracking.start_run(f"raw-cd-{seed}", tags)
    tracking.log(run_id, params={**p["forest"], "random_state": seed, "train_rows": len(rows),
                                 "validation_rows": len(validation), "holdout_rows": len(holdout),
                                 "decision_threshold": threshold, "cost_false_denial": costs.false_denial,
                                 "cost_false_approval": costs.false_approval,
                                 "shap_sample_size": explanation.sample_size, "calibration": p["calibration"]},
                 metrics={**{k: v for k, v in metrics.items() if isinstance(v, float)},
                          "fit_seconds": fit_seconds, "ece": after["ece"], "ece_uncalibrated": before["ece"]})
    for context, frame in parts.items():
        tracking.log_dataset(run_id, frame, f"claims-{context}", context, digest=datasets[context]["digest"])
    tracking.log_files(run_id, {
        "shap/beeswarm.png": explanation.beeswarm_png(),
        "shap/importance.csv": explanation.importance.to_csv(index=False),
        "eval/confusion_matrix.json": json.dumps(metrics["confusion_matrix"], indent=2),
        "eval/reliability.json": json.dumps({"calibrated": after, "uncalibrated": before}, indent=2)})
    version = tracking.log_and_register(run_id, model, rows, threshold=threshold)
    tracking.log(run_id, tags={"model_version": str(version)})
    tracking.set_version_tags(version, {"commit_sha": tags["commit_sha"], "pipeline_run_id": "raw",
                                        "dataset_window": WINDOW, "seed": str(seed),
                                        "training_digest": datasets["training"]["digest"],
                                        "decision_threshold": threshold})
    tracking.finish(run_id)
    M.model_size_bytes(model)
    tracking.set_alias("challenger", version)
    fresh = generate_claims(ev["holdout_rows"], derived_seed(seed, 2), WINDOW)
    y = label_array(fresh)
    boot = gates.PairedBootstrap(y, ev["bootstrap_resamples"], seed)

    def scored(served) -> gates.Scored:
        s = gates.Scored(M.predict_approval(served, fresh), served.threshold)
        M.classification_metrics(y, s.proba, s.threshold), costs.per_claim(y, s.approve)
        return s
    challenger, champion = tracking.load_model(version), tracking.comparable("champion")[1]
    gates.versus_champion(boot, scored(challenger), scored(champion), ev["min_auc_delta"], ev["min_f1_delta"])
    frame_digest(fresh)
    return version


def raw_deploy(tracking, seed: int, version: int) -> None:
    """The deploy work without the engine."""
    p = spec("shadow_monitor").params()
    tracking.set_alias("staging", version)
    batch = generate_claims(p["rows"], derived_seed(seed, 3), WINDOW)
    boot = gates.PairedBootstrap(label_array(batch), p["bootstrap_resamples"], seed)
    staging, champion = (tracking.load_alias(alias)[1] for alias in ("staging", "champion"))
    gates.accuracy_versus(boot, gates.Scored(M.predict_approval(staging, batch), staging.threshold),
                          gates.Scored(M.predict_approval(champion, batch), champion.threshold),
                          p["min_accuracy_delta"], "champion")
    feature_drift(generate_claims(p["reference_rows"], seed, WINDOW), batch)
    tracking.set_alias("champion", version)


def raw_stages(lab: Lab, seed: int, tmp: Path) -> dict[str, float]:
    """Stage times of the same work done directly."""
    out, version = {}, None

    def cd():
        nonlocal version
        version = raw_cd(lab.tracking, seed)
    out["CI"] = _timed(lambda: raw_ci(lab.tracking, seed, tmp))
    out["CD"] = _timed(cd)
    out["deploy"] = _timed(lambda: raw_deploy(lab.tracking, seed, version))
    return out


def model_sizes() -> dict:
    """Artifact size and ROC-AUC of the configured full forest and of the naive 100-tree depth-15 one."""
    from bench.forest import measure
    forest = spec("cd_full_train").params()["forest"]
    chosen = measure({**forest, "random_state": 7})
    naive = measure({"n_estimators": 100, "max_depth": 15, "random_state": 7, "n_jobs": 2})
    pick = ("cloudpickle_mb", "skops_mb", "roc_auc", "f1", "fit_s", "shap_ms_per_row")
    return {"chosen": {"params": forest, **{k: chosen[k] for k in pick}},
            "naive_100x_depth15": {k: naive[k] for k in pick}}


def main(argv=None) -> dict:
    """Run the bench, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-sizes", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Settings.from_env({}, data_dir=Path(tmp)))
        engine_stages(lab, seed=100)          # warm-up: imports, schema, a first champion
        raw_stages(lab, seed=100, tmp=Path(tmp))
        samples = {"engine": [], "raw": []}
        for i in range(args.runs):            # interleaved so machine noise hits both sides alike
            samples["engine"].append(engine_stages(lab, seed=200 + i))
            samples["raw"].append(raw_stages(lab, seed=300 + i, tmp=Path(tmp)))
        lab.close()
    stages = {}
    for stage, target in TARGETS.items():
        eng = statistics.median(s[stage] for s in samples["engine"])
        raw = statistics.median(s[stage] for s in samples["raw"])
        stages[stage] = {"engine_s": round(eng, 3), "raw_s": round(raw, 3),
                         "overhead_pct": round(100 * (eng - raw) / raw, 1), "target_s": target,
                         "engine_all_s": [round(s[stage], 3) for s in samples["engine"]],
                         "raw_all_s": [round(s[stage], 3) for s in samples["raw"]]}
    result = {"runs": args.runs, "stages": stages, "cpus": os.cpu_count()}
    if not args.skip_sizes:
        result["model"] = model_sizes()
    print(f"{'stage':8} {'engine s':>9} {'raw s':>7} {'overhead':>9} {'target':>7}")
    for stage, r in stages.items():
        print(f"{stage:8} {r['engine_s']:>9.2f} {r['raw_s']:>7.2f} {r['overhead_pct']:>8.1f}% {r['target_s']:>6.1f}s")
    for name, m in result.get("model", {}).items():
        print(f"{name:20} artifact {m['cloudpickle_mb']:.2f} MB (skops {m['skops_mb']:.2f})  "
              f"ROC-AUC {m['roc_auc']:.4f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

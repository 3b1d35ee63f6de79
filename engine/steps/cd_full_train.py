"""Train the full model, calibrate it, choose its decision threshold, explain it, log and register it, alias it
`challenger`."""
import json
import time

from engine import failures
from engine.ml.claims import label_array
from engine.ml.model import calibrate, evaluate, explain, model_size_bytes, predict_approval, train
from engine.ml.monitor import calibration
from engine.ml.provenance import carve, described
from engine.ml.threshold import Costs, choose_threshold


def run(ctx) -> dict:
    p, seed = ctx.params, ctx.run.seed
    data = ctx.feed(p["rows"])
    if ctx.mode("metric_regression"):
        data = failures.flip_labels(data, seed=seed)
        ctx.log(f"metric_regression: {failures.REGRESSION_FLIP_SHARE:.0%} of Approved labels flipped", "WARNING")
    rows, validation = carve(data, p["validation_share"], seed)
    holdout = ctx.holdout(p["holdout_rows"], purpose=1)  # a production retrain: its newest production claims
    started = time.perf_counter()
    forest = train(rows, {**p["forest"], "random_state": seed})
    fit_seconds = time.perf_counter() - started
    model = calibrate(forest, validation, p["calibration"])
    outcome = label_array(holdout) == 1
    before, after = (calibration(predict_approval(m, holdout), outcome) for m in (forest, model))
    ctx.log(f"P(Approved) calibrated ({p['calibration']}, scikit-learn CalibratedClassifierCV) on {len(validation):,} "
            f"validation claims: holdout ECE {before['ece']:.4f} -> {after['ece']:.4f}")
    choice = choose_threshold(label_array(validation), predict_approval(model, validation), Costs(**p["costs"]))
    threshold = choice.threshold
    ctx.log(f"decision threshold {threshold:.4f} on {len(validation):,} validation claims: expected cost "
            f"{choice.cost_per_claim:.4f} per claim (at 0.5: {choice.cost_per_claim_at_half:.4f})")
    metrics = evaluate(model, holdout, threshold)
    ctx.log(f"fit {len(rows):,} claims in {fit_seconds:.2f} s; holdout ROC-AUC {metrics['roc_auc']:.4f}, "
            f"F1 {metrics['f1']:.4f} at the threshold")
    explanation = explain(model, holdout, p["shap_sample_size"], seed)
    ctx.log(f"SHAP: {explanation.method} on {explanation.sample_size} holdout claims")

    parts = {"training": rows, "validation": validation, "evaluation": holdout}
    datasets = described(parts)
    tracking = ctx.tracking
    run_id = tracking.start_run(f"{p['run_name_prefix']}-{ctx.run.sha[:7]}", ctx.tags("CD"))
    tracking.log(run_id, params={**p["forest"], "random_state": seed, "train_rows": len(rows),
                                 "validation_rows": len(validation), "holdout_rows": len(holdout),
                                 "decision_threshold": threshold, "cost_false_denial": choice.costs.false_denial,
                                 "cost_false_approval": choice.costs.false_approval,
                                 "shap_sample_size": explanation.sample_size, "calibration": p["calibration"]},
                 metrics={**{k: v for k, v in metrics.items() if isinstance(v, float)},
                          "fit_seconds": fit_seconds, "ece": after["ece"], "ece_uncalibrated": before["ece"]})
    for context, frame in parts.items():
        tracking.log_dataset(run_id, frame, name=f"claims-{ctx.run.dataset_window}-{context}", context=context,
                             digest=datasets[context]["digest"])
    tracking.log_files(run_id, {
        "shap/beeswarm.png": explanation.beeswarm_png(),
        "shap/importance.csv": explanation.importance.to_csv(index=False),
        "eval/confusion_matrix.json": json.dumps(metrics["confusion_matrix"], indent=2),
        "eval/reliability.json": json.dumps({"calibrated": after, "uncalibrated": before}, indent=2)})
    version = ctx.register(run_id, model, rows, threshold=threshold)
    tracking.log(run_id, tags={"model_version": str(version)})
    tracking.set_version_tags(version, {"commit_sha": ctx.run.sha, "pipeline_run_id": str(ctx.run.id),
                                        "dataset_window": ctx.run.dataset_window, "seed": str(seed),
                                        "training_digest": datasets["training"]["digest"],
                                        "decision_threshold": threshold})
    tracking.finish(run_id)
    ctx.log(f"registered claims-settlement-rf version {version} from MLflow run {run_id}; training data digest "
            f"{datasets['training']['digest']}")
    ctx.move_alias("challenger", version, f"trained by pipeline run {ctx.run.id}")
    return {"model_version": version, "mlflow_run_id": run_id, "metrics": metrics, "params": p["forest"],
            "decision_threshold": threshold, "threshold_choice": choice.to_dict(),
            "calibration": {"method": p["calibration"], "fitted_on": "validation", "ece": after["ece"],
                            "ece_uncalibrated": before["ece"], "reliability": after["bins"],
                            "artifact": "eval/reliability.json"},
            "artifact_mb": round(model_size_bytes(model) / 1e6, 2), "fit_seconds": round(fit_seconds, 3),
            "train_rows": len(rows), "validation_rows": len(validation), "holdout_rows": len(holdout),
            "dataset_digest": datasets["training"]["digest"], "datasets": datasets,
            "shap": {"method": explanation.method, "sample_size": explanation.sample_size,
                     "importance": explanation.importance.round(5).to_dict("records"),
                     "artifact": "shap/beeswarm.png"}}

"""Train the full model on the run's data, explain it with SHAP, log and register it, alias it `challenger`."""
import json
import time

from engine import failures
from engine.ml.model import evaluate, explain, model_size_bytes, train


def run(ctx) -> dict:
    p, seed = ctx.params, ctx.run["seed"]
    data = ctx.feed(p["rows"])
    if ctx.mode("metric_regression"):
        data = failures.flip_labels(data, seed=seed)
        ctx.log(f"metric_regression: {failures.REGRESSION_FLIP_SHARE:.0%} of Approved labels flipped", "WARNING")
    holdout = ctx.fresh(p["holdout_rows"], purpose=1)
    started = time.perf_counter()
    model = train(data, {**p["forest"], "random_state": seed})
    fit_seconds = time.perf_counter() - started
    metrics = evaluate(model, holdout)
    ctx.log(f"fit {len(data):,} claims in {fit_seconds:.2f} s; holdout ROC-AUC {metrics['roc_auc']:.4f}")
    explanation = explain(model, holdout, p["shap_sample_size"], seed)
    ctx.log(f"SHAP: {explanation.method} on {explanation.sample_size} holdout claims")

    tracking = ctx.tracking
    run_id = tracking.start_run(f"{p['run_name_prefix']}-{ctx.run['sha'][:7]}", ctx.tags("CD"))
    tracking.log(run_id, params={**p["forest"], "random_state": seed, "train_rows": len(data),
                                 "holdout_rows": len(holdout), "shap_sample_size": explanation.sample_size},
                 metrics={**{k: v for k, v in metrics.items() if isinstance(v, float)},
                          "fit_seconds": fit_seconds})
    digest = tracking.log_dataset(run_id, data, name=f"claims-{ctx.run['dataset_window']}", context="training")
    tracking.log_file(run_id, "beeswarm.png", explanation.beeswarm_png(), "shap")
    tracking.log_file(run_id, "importance.csv", explanation.importance.to_csv(index=False), "shap")
    tracking.log_file(run_id, "confusion_matrix.json", json.dumps(metrics["confusion_matrix"], indent=2), "eval")
    version = tracking.log_and_register(run_id, model, data, threshold=0.5)
    tracking.log(run_id, tags={"model_version": str(version)})
    tracking.set_version_tags(version, {"commit_sha": ctx.run["sha"], "pipeline_run_id": str(ctx.run["id"]),
                                        "dataset_window": ctx.run["dataset_window"], "seed": str(seed)})
    tracking.finish(run_id)
    ctx.log(f"registered claims-settlement-rf version {version} from MLflow run {run_id}")
    ctx.move_alias("challenger", version, f"trained by pipeline run {ctx.run['id']}")
    return {"model_version": version, "mlflow_run_id": run_id, "metrics": metrics, "params": p["forest"],
            "artifact_mb": round(model_size_bytes(model) / 1e6, 2), "fit_seconds": round(fit_seconds, 3),
            "train_rows": len(data), "holdout_rows": len(holdout), "dataset_digest": digest,
            "shap": {"method": explanation.method, "sample_size": explanation.sample_size,
                     "importance": explanation.importance.round(5).to_dict("records"),
                     "artifact": "shap/beeswarm.png"}}

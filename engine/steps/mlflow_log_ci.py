"""Record the CI run in MLflow: params, metrics, the reproducibility tags and the exact rows with their digests."""
from engine.ml.provenance import described, quick_parts


def run(ctx) -> dict:
    quick = ctx.upstream("ci_quick_train")
    # The same seeded split ci_quick_train made; the digests prove these are the rows it trained and scored on.
    parts = quick_parts(ctx.feed(ctx.upstream("data_validation")["n_rows"]), **quick["split"])
    datasets = described(parts)
    if datasets != quick["datasets"]:
        raise RuntimeError("the rows rebuilt for MLflow differ from those ci_quick_train used (digests "
                           f"{datasets} vs {quick['datasets']}); retry from ci_quick_train")
    tracking = ctx.tracking
    ctx.log(f"logging to MLflow at {tracking.uri}")
    run_id = tracking.start_run(f"{ctx.params['run_name_prefix']}-{ctx.run.sha[:7]}", ctx.tags("CI"))
    metrics = {k: v for k, v in quick["metrics"].items() if isinstance(v, (int, float))}
    costs = quick["threshold_choice"]["costs"]
    tracking.log(run_id, params={**quick["params"], "train_rows": quick["train_rows"],
                                 "validation_rows": quick["validation_rows"], "holdout_rows": quick["holdout_rows"],
                                 "decision_threshold": quick["decision_threshold"],
                                 "cost_false_denial": costs["false_denial"],
                                 "cost_false_approval": costs["false_approval"]}, metrics=metrics)
    for context, frame in parts.items():
        tracking.log_dataset(run_id, frame, name=f"claims-{ctx.run.dataset_window}-{context}", context=context,
                             digest=datasets[context]["digest"])
    tracking.finish(run_id)
    digest = datasets["training"]["digest"]
    ctx.log(f"MLflow run {run_id}: {len(metrics)} metrics; training data {len(parts['training']):,} claims, "
            f"digest {digest}")
    return {"mlflow_run_id": run_id, "experiment": "claims-settlement", "tracking_uri": tracking.uri,
            "dataset_digest": digest, "datasets": datasets, "tags": ctx.tags("CI")}

"""Record the CI run in MLflow: params, metrics, the reproducibility tags and the dataset with its digest."""


def run(ctx) -> dict:
    quick = ctx.upstream("ci_quick_train")
    tracking = ctx.tracking
    ctx.log(f"logging to MLflow at {tracking.uri}")
    run_id = tracking.start_run(f"{ctx.params['run_name_prefix']}-{ctx.run['sha'][:7]}", ctx.tags("CI"))
    metrics = {k: v for k, v in quick["metrics"].items() if isinstance(v, (int, float))}
    tracking.log(run_id, params={**quick["params"], "train_rows": quick["train_rows"],
                                 "holdout_rows": quick["holdout_rows"]}, metrics=metrics)
    data = ctx.feed(ctx.upstream("data_validation")["n_rows"])
    digest = tracking.log_dataset(run_id, data, name=f"claims-{ctx.run['dataset_window']}", context="training")
    tracking.finish(run_id)
    ctx.log(f"MLflow run {run_id}: {len(metrics)} metrics, dataset digest {digest}")
    return {"mlflow_run_id": run_id, "experiment": "claims-settlement", "tracking_uri": tracking.uri,
            "dataset_digest": digest, "tags": ctx.tags("CI")}

"""Collect the evidence a reviewer needs, then wait: the run rests in awaiting_approval until approve/reject."""


def run(ctx) -> dict:
    full, evaluation = ctx.upstream("cd_full_train"), ctx.upstream("evaluate_vs_champion")
    evidence = {
        "model_version": full["model_version"], "mlflow_run_id": full["mlflow_run_id"],
        "gate": evaluation["gate"], "challenger_metrics": evaluation["challenger"]["metrics"],
        "reference": evaluation["champion"] or evaluation["baseline"],
        "top_features": full["shap"]["importance"][: ctx.params["top_features"]],
    }
    ctx.log(f"version {full['model_version']} passed the gate; waiting for a reviewer "
            f"(dashboard: Approve / Reject, or python -m engine approve {ctx.run.id} --by NAME)")
    return {"evidence": evidence}

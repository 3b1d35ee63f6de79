"""Score the challenger and the champion on the same fresh holdout and apply the promotion gate."""
from engine.errors import GateFailed
from engine.ml.gates import baseline_metrics, gate
from engine.ml.model import evaluate


def run(ctx) -> dict:
    p = ctx.params
    full = ctx.upstream("cd_full_train")
    holdout = ctx.fresh(p["holdout_rows"], purpose=2)
    tracking = ctx.tracking
    challenger = {"version": full["model_version"],
                  "metrics": evaluate(tracking.load_model(full["model_version"]), holdout)}
    champion_version, champion_model = tracking.load_alias("champion")
    if champion_model is not None:
        reference = {"version": champion_version, "metrics": evaluate(champion_model, holdout)}
        label, min_f1_delta = f"champion v{champion_version}", p["min_f1_delta"]
    else:
        reference = {"version": None, "policy": "approve every claim", "metrics": baseline_metrics(holdout)}
        label, min_f1_delta = "baseline (approve every claim)", p["min_f1_delta_vs_baseline"]
    ctx.log(f"challenger v{challenger['version']} vs {label} on {len(holdout):,} fresh claims")
    verdict = gate(f"challenger F1 must beat {label} F1 by at least {min_f1_delta:+.3f}, and ROC-AUC may not "
                   f"fall more than {p['max_auc_drop']:.3f} below it", [
                       ("F1 gain", challenger["metrics"]["f1"] - reference["metrics"]["f1"], ">=", min_f1_delta),
                       ("ROC-AUC drop", reference["metrics"]["roc_auc"] - challenger["metrics"]["roc_auc"], "<=",
                        p["max_auc_drop"])])
    for check in verdict["checks"]:
        ctx.log(f"{check['name']}: {check['value']:+.4f} {check['op']} {check['threshold']:+.4f} "
                f"(margin {check['margin']:+.4f}) {'PASS' if check['passed'] else 'FAIL'}")
    has_champion = champion_model is not None
    outputs = {"gate": verdict, "challenger": challenger, "champion": reference if has_champion else None,
               "baseline": None if has_champion else reference, "holdout_rows": len(holdout)}
    if verdict["verdict"] != "pass":
        failed = next(c for c in verdict["checks"] if not c["passed"])
        raise GateFailed(f"promotion gate failed: {failed['name']} {failed['value']:+.4f} "
                         f"(needs {failed['op']} {failed['threshold']:+.4f}, margin {failed['margin']:+.4f})", outputs)
    return outputs

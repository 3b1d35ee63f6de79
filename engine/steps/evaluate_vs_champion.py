"""Score the challenger and the champion on the same holdout, each at its own threshold; apply the gate.

The holdout is where the model will serve: for a retrain on production data, the newest labelled production
claims of its time-based split, which it never trained on; for any other run, fresh claims of its window."""
import numpy as np

from engine.errors import GateFailed
from engine.ml import gates as G
from engine.ml.claims import label_array
from engine.ml.model import classification_metrics, predict_approval
from engine.ml.provenance import frame_digest
from engine.ml.threshold import Costs


def run(ctx) -> dict:
    p, tracking = ctx.params, ctx.tracking
    full = ctx.upstream("cd_full_train")
    costs = Costs(**full["threshold_choice"]["costs"])
    holdout = ctx.holdout(p["holdout_rows"], purpose=2)
    where = (f"production claims {ctx.production['evaluation'][0]:,}..{ctx.production['evaluation'][1] - 1:,} "
             "(newer than every claim it trained on)" if ctx.production else "fresh claims")
    y = label_array(holdout)
    boot = G.PairedBootstrap(y, p["bootstrap_resamples"], ctx.run.seed)

    def scored(version, model) -> tuple[dict, G.Scored]:
        s = G.Scored(predict_approval(model, holdout), model.threshold)
        metrics = {**classification_metrics(y, s.proba, s.threshold),
                   "cost_per_claim": round(costs.per_claim(y, s.approve), 4)}
        return {"version": version, "threshold": round(s.threshold, 6), "metrics": metrics}, s

    challenger, new = scored(full["model_version"], tracking.load_model(full["model_version"]))
    champion_version, champion_model, unservable = tracking.comparable("champion")
    if unservable:
        ctx.log(f"{unservable}: judged against approve-every-claim instead", "WARNING")
    if champion_model is not None:
        champion, old = scored(champion_version, champion_model)
        baseline, against = None, f"champion v{champion_version} (threshold {old.threshold:.4f})"
        checks = G.versus_champion(boot, new, old, p["min_auc_delta"], p["min_f1_delta"])
        rule = (f"against champion v{champion_version} on the same {where}, each at its own threshold: ROC-AUC "
                f"may not fall by more than {-p['min_auc_delta']:.3f}, nor F1 by more than "
                f"{-p['min_f1_delta']:.3f}; {G.BOUND_RULE}")
    else:
        champion, against = None, G.APPROVE_ALL
        feature, feature_auc, score = G.best_single_feature(holdout)
        baseline = {"version": None, "policy": G.APPROVE_ALL,
                    "metrics": {**G.baseline_metrics(holdout),
                                "cost_per_claim": round(costs.per_claim(y, np.ones(len(y), bool)), 4)},
                    "single_feature": {"feature": feature, "roc_auc": round(feature_auc, 4)}}
        checks = G.versus_baseline(boot, new, feature, score, costs, p["min_auc_gain_over_single_feature"],
                                   p["min_f1_gain_over_baseline"], p["min_cost_saving_over_baseline"])
        rule = (f"{'champion v%d cannot be served' % champion_version if unservable else 'no champion yet'}: "
                f"ROC-AUC must beat the best single feature ({feature}) by "
                f"{p['min_auc_gain_over_single_feature']:.3f}; F1 must beat approve-every-claim by "
                f"{p['min_f1_gain_over_baseline']:.3f} and its expected cost per claim be lower by "
                f"{p['min_cost_saving_over_baseline']:.3f}; {G.BOUND_RULE}")
    ctx.log(f"challenger v{challenger['version']} (threshold {new.threshold:.4f}) vs {against} on "
            f"{len(holdout):,} {where}")
    verdict = G.gate(rule, checks)
    verdict["thresholds"] = {"challenger": challenger["threshold"],
                             "champion": champion["threshold"] if champion else None}
    verdict["bootstrap"] = boot.describe()
    for check in checks:
        ctx.log(check.describe() + (" PASS" if check.passed else " FAIL"))
    outputs = {"gate": verdict, "challenger": challenger, "champion": champion, "baseline": baseline,
               "costs": {"false_denial": costs.false_denial, "false_approval": costs.false_approval},
               "holdout_rows": len(holdout), "holdout_digest": frame_digest(holdout), "holdout_source": where}
    if verdict["verdict"] != "pass":
        failed = "; ".join(c.describe() for c in checks if not c.passed)
        raise GateFailed(f"promotion gate failed: {failed}", outputs)
    return outputs

"""Shadow test: this run's own version and the champion score the same claims; hold the run on major drift or worse
accuracy. A retrain on production data is tested on current production traffic, any other run on fresh claims."""
from engine.errors import GateHeld
from engine.ml import gates as G
from engine.ml.claims import Shift, label_array
from engine.ml.drift import feature_drift
from engine.ml.model import predict_approval


def run(ctx) -> dict:
    p, tracking = ctx.params, ctx.tracking
    # The run's own version, whatever @staging holds by now: another approved run may have moved it meanwhile.
    version = ctx.upstream("cd_full_train")["model_version"]
    if ctx.production:
        batch, source = ctx.traffic(p["rows"]), "current production traffic (labelled claims after its training data)"
    else:
        batch, source = ctx.fresh(p["rows"], purpose=3, shift=Shift(**(p.get("traffic_shift") or {}))), "fresh claims"
    truth = label_array(batch).astype(bool)
    boot = G.PairedBootstrap(truth, p["bootstrap_resamples"], ctx.run.seed)
    staging_model = tracking.load_model(version)
    champion_version, champion_model, unservable = tracking.comparable("champion")
    if unservable:
        ctx.log(f"{unservable}: shadow-tested without a champion to compare with", "WARNING")
    staging = G.Scored(predict_approval(staging_model, batch), staging_model.threshold)
    staging_says = staging.approve
    thresholds = {"staging": round(staging.threshold, 6), "champion": None}
    outputs = {"rows": len(batch), "source": source, "tested_version": version, "staging_version": version,
               "staging_alias_holder": tracking.alias_version("staging"), "champion_version": champion_version,
               "accuracy": {"staging": round(float((staging_says == truth).mean()), 4)}}
    ctx.log(f"shadow-testing this run's version {version} on {len(batch):,} claims: {source}")
    if champion_model is not None:
        champion = G.Scored(predict_approval(champion_model, batch), champion_model.threshold)
        champion_says = champion.approve
        thresholds["champion"] = round(champion.threshold, 6)
        outputs["accuracy"]["champion"] = round(float((champion_says == truth).mean()), 4)
        outputs["agreement_rate"] = round(float((staging_says == champion_says).mean()), 4)
        outputs["disagreement"] = {
            f"staging_{a}": {f"champion_{b}": int(((staging_says == x) & (champion_says == y)).sum())
                             for b, y in (("approve", True), ("deny", False))}
            for a, x in (("approve", True), ("deny", False))}
        accuracy_check = G.accuracy_versus(boot, staging, champion, p["min_accuracy_delta"], "champion")
        accuracy_rule = f"staging is less accurate than champion by more than {-p['min_accuracy_delta']}"
        ctx.log(f"agreement {outputs['agreement_rate']:.2%} on {len(batch):,} claims; accuracy staging "
                f"{outputs['accuracy']['staging']:.4f} vs champion {outputs['accuracy']['champion']:.4f}")
    else:
        outputs["accuracy"]["approve_every_claim"] = round(float(truth.mean()), 4)
        accuracy_check = G.accuracy_versus(boot, staging, None, p["min_accuracy_gain_first_model"],
                                           "approve-every-claim")
        accuracy_rule = (f"staging is not more accurate than approve-every-claim "
                         f"({outputs['accuracy']['approve_every_claim']:.4f} here) by "
                         f"{p['min_accuracy_gain_first_model']}")
        ctx.log(f"no champion yet: staging accuracy {outputs['accuracy']['staging']:.4f} vs approve-every-claim "
                f"{outputs['accuracy']['approve_every_claim']:.4f} on the same claims")
    drift = feature_drift(ctx.feed(p["reference_rows"]), batch)
    outputs["drift"] = drift.to_dict()
    ctx.log(f"input drift against its training data: level {drift.level}, max PSI {drift.max_psi:.3f}, "
            f"{drift.drift_share:.0%} of features drifting")
    checks = [accuracy_check, G.check("max input PSI", drift.max_psi, "<", p["max_psi"])]
    outputs["gate"] = G.gate(f"hold when any feature's PSI against the training data reaches {p['max_psi']} (major "
                             f"drift), or {accuracy_rule} (each model at its own threshold); {G.BOUND_RULE}",
                             checks, "hold")
    outputs["gate"]["thresholds"] = thresholds
    outputs["gate"]["bootstrap"] = boot.describe()
    for check in checks:
        ctx.log(check.describe() + (" PASS" if check.passed else " HOLD"))
    if outputs["gate"]["verdict"] != "pass":
        failed = [c.name for c in checks if not c.passed]
        raise GateHeld(f"shadow gate held the run: {', '.join(failed)}", outputs)
    return outputs

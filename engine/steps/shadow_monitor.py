"""Shadow test: staging and champion score the same fresh claims; hold the run on major drift or worse accuracy."""
from engine.errors import GateHeld
from engine.ml.claims import Shift, label_array
from engine.ml.drift import feature_drift
from engine.ml.gates import gate
from engine.ml.model import predict_approval


def run(ctx) -> dict:
    p, tracking = ctx.params, ctx.tracking
    batch = ctx.fresh(p["rows"], purpose=3, shift=Shift(**(p.get("traffic_shift") or {})))
    truth = label_array(batch).astype(bool)
    staging_version, staging = tracking.load_alias("staging")
    champion_version, champion = tracking.load_alias("champion")
    staging_says = predict_approval(staging, batch) >= 0.5
    outputs = {"rows": len(batch), "staging_version": staging_version, "champion_version": champion_version,
               "accuracy": {"staging": round(float((staging_says == truth).mean()), 4)}}
    if champion is not None:
        champion_says = predict_approval(champion, batch) >= 0.5
        outputs["accuracy"]["champion"] = round(float((champion_says == truth).mean()), 4)
        outputs["agreement_rate"] = round(float((staging_says == champion_says).mean()), 4)
        outputs["disagreement"] = {
            f"staging_{a}": {f"champion_{b}": int(((staging_says == x) & (champion_says == y)).sum())
                             for b, y in (("approve", True), ("deny", False))}
            for a, x in (("approve", True), ("deny", False))}
        accuracy_check = ("accuracy drop vs champion", outputs["accuracy"]["champion"] -
                          outputs["accuracy"]["staging"], "<=", p["max_accuracy_drop"])
        ctx.log(f"agreement {outputs['agreement_rate']:.2%} on {len(batch):,} claims; accuracy staging "
                f"{outputs['accuracy']['staging']:.4f} vs champion {outputs['accuracy']['champion']:.4f}")
    else:
        accuracy_check = ("staging accuracy", outputs["accuracy"]["staging"], ">=", p["min_accuracy_first_model"])
        ctx.log("no champion yet: staging is checked against the accuracy floor alone")
    drift = feature_drift(ctx.feed(p["reference_rows"]), batch)
    outputs["drift"] = drift.to_dict()
    ctx.log(f"input drift: level {drift.level}, max PSI {drift.max_psi:.3f}, "
            f"{drift.drift_share:.0%} of features drifting")
    outputs["gate"] = gate(f"hold when any feature's PSI reaches {p['max_psi']} (major drift), or staging is less "
                           f"accurate than champion by more than {p['max_accuracy_drop']}",
                           [accuracy_check, ("max input PSI", drift.max_psi, "<", p["max_psi"])], "hold")
    if outputs["gate"]["verdict"] != "pass":
        failed = [c["name"] for c in outputs["gate"]["checks"] if not c["passed"]]
        raise GateHeld(f"shadow gate held the run: {', '.join(failed)}", outputs)
    return outputs

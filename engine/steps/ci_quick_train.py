"""Train a small forest on a sample of the run's data, choose its threshold, and score it on a held-out part."""
import time

from engine.ml.claims import label_array
from engine.ml.model import evaluate, predict_approval, train
from engine.ml.provenance import described, quick_parts
from engine.ml.threshold import Costs, choose_threshold


def run(ctx) -> dict:
    p, seed = ctx.params, ctx.run.seed
    split = {"sample_rows": p["sample_rows"], "holdout_share": p["holdout_share"],
             "validation_share": p["validation_share"], "seed": seed}
    parts = quick_parts(ctx.feed(ctx.upstream("data_validation")["n_rows"]), **split)
    rows, validation, holdout = parts["training"], parts["validation"], parts["evaluation"]
    ctx.log(f"training {p['forest']} on {len(rows):,} claims; validation {len(validation):,}, "
            f"holdout {len(holdout):,}")
    started = time.perf_counter()
    model = train(rows, {**p["forest"], "random_state": seed})
    fit_seconds = time.perf_counter() - started
    choice = choose_threshold(label_array(validation), predict_approval(model, validation), Costs(**p["costs"]))
    metrics = evaluate(model, holdout, choice.threshold)
    ctx.log(f"fit in {fit_seconds:.2f} s; threshold {choice.threshold:.4f}; ROC-AUC {metrics['roc_auc']:.4f}, "
            f"F1 {metrics['f1']:.4f}")
    return {"metrics": metrics, "params": p["forest"], "decision_threshold": choice.threshold,
            "threshold_choice": choice.to_dict(), "train_rows": len(rows), "validation_rows": len(validation),
            "holdout_rows": len(holdout), "fit_seconds": round(fit_seconds, 3), "split": split,
            "datasets": described(parts)}

"""Train a small forest on a sample of the run's data and score it on a held-out part."""
import time

from engine.ml.model import evaluate, train


def run(ctx) -> dict:
    p = ctx.params
    sample = ctx.feed(ctx.upstream("data_validation")["n_rows"]).sample(p["sample_rows"],
                                                                       random_state=ctx.run["seed"])
    n_holdout = int(len(sample) * p["holdout_share"])
    holdout, train_part = sample.iloc[:n_holdout], sample.iloc[n_holdout:]
    ctx.log(f"training {p['forest']} on {len(train_part):,} claims; holdout {len(holdout):,}")
    started = time.perf_counter()
    model = train(train_part, {**p["forest"], "random_state": ctx.run["seed"]})
    fit_seconds = time.perf_counter() - started
    metrics = evaluate(model, holdout)
    ctx.log(f"fit in {fit_seconds:.2f} s; ROC-AUC {metrics['roc_auc']:.4f}, F1 {metrics['f1']:.4f}")
    return {"metrics": metrics, "params": p["forest"], "train_rows": len(train_part),
            "holdout_rows": len(holdout), "fit_seconds": round(fit_seconds, 3)}

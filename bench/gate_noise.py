"""Gate noise: how much the gates' differences move by chance, next to the effect they must catch.

    .venv/bin/python -m bench.gate_noise [--models 6]     # table on stdout, bench/results/gate_noise.json

Models are trained exactly as cd_full_train trains them (its YAML: forest, validation share, costs), each on the
feed of its own seed, and scored as the gates score them (each at its own threshold, on the fresh rows of the
later seed). Three kinds of spread are measured:
  bootstrap SE    the standard deviation of the paired-bootstrap differences the gate reports (holdout noise);
  retrain spread  the differences between clean models of consecutive seeds (what an honest retrain moves);
  regression      a model of the same seed trained under metric_regression, minus the clean one (the effect,
                  first five seeds).
A margin is justified when it sits several SEs and retrain spreads away from 0 and inside the regression effect.
No timing is measured.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from engine import failures
from engine.ml import gates as G
from engine.ml.claims import derived_seed, generate_claims, label_array
from engine.ml.model import predict_approval, train
from engine.ml.provenance import carve
from engine.ml.threshold import Costs, choose_threshold
from engine.pipeline import spec

RESULTS = Path(__file__).parent / "results" / "gate_noise.json"
WINDOW = "2025-01-01..2025-06-30"


def fit(seed: int, regression: bool = False):
    """(model, threshold) as cd_full_train makes them for a run of `seed`."""
    p = spec("cd_full_train").params()
    data = generate_claims(p["rows"], seed, WINDOW)
    if regression:
        data = failures.flip_labels(data, seed=seed)
    rows, validation = carve(data, p["validation_share"], seed)
    model = train(rows, {**p["forest"], "random_state": seed})
    choice = choose_threshold(label_array(validation), predict_approval(model, validation), Costs(**p["costs"]))
    return model, choice.threshold


def sd(boot: G.PairedBootstrap, metric, a, b) -> float:
    """Standard error of metric(a) - metric(b): the spread of its paired-bootstrap resamples."""
    return float(np.std(metric(boot.weights, boot.y, a) - metric(boot.weights, boot.y, b), ddof=1))


def measure(models: int) -> dict:
    ev, shadow = spec("evaluate_vs_champion").params(), spec("shadow_monitor").params()
    costs = Costs(**spec("cd_full_train").params()["costs"])
    seeds = list(range(31, 31 + models))
    clean = {s: fit(s) for s in seeds}
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(float(value))

    for older, newer in zip(seeds, seeds[1:]):
        holdout = generate_claims(ev["holdout_rows"], derived_seed(newer, 2), WINDOW)
        y = label_array(holdout)
        boot = G.PairedBootstrap(y, ev["bootstrap_resamples"], newer)
        (m_new, t_new), (m_old, t_old) = clean[newer], clean[older]
        new = G.Scored(predict_approval(m_new, holdout), t_new)
        old = G.Scored(predict_approval(m_old, holdout), t_old)
        everyone = np.ones(len(y), dtype=bool)
        _, _, single = G.best_single_feature(holdout)
        add("AUC diff, retrain vs champion: bootstrap SE", sd(boot, G.roc_auc, new.proba, old.proba))
        add("AUC diff, retrain vs champion: retrain spread", boot.difference(G.roc_auc, new.proba, old.proba)[0])
        add("F1 diff, retrain vs champion: bootstrap SE", sd(boot, G.f1, new.approve, old.approve))
        add("F1 diff, retrain vs champion: retrain spread", boot.difference(G.f1, new.approve, old.approve)[0])
        add("AUC gain over best single feature", boot.difference(G.roc_auc, new.proba, single)[0])
        add("AUC gain over best single feature: bootstrap SE", sd(boot, G.roc_auc, new.proba, single))
        add("F1 gain over approve-all", boot.difference(G.f1, new.approve, everyone)[0])
        add("F1 gain over approve-all: bootstrap SE", sd(boot, G.f1, new.approve, everyone))
        add("cost saving over approve-all", boot.difference(G.cost(costs), everyone, new.approve)[0])
        add("cost saving over approve-all: bootstrap SE", sd(boot, G.cost(costs), everyone, new.approve))
        add("threshold", t_new)

        batch = generate_claims(shadow["rows"], derived_seed(newer, 3), WINDOW)
        sy = label_array(batch)
        sboot = G.PairedBootstrap(sy, shadow["bootstrap_resamples"], newer)
        s_new = G.Scored(predict_approval(m_new, batch), t_new).approve
        s_old = G.Scored(predict_approval(m_old, batch), t_old).approve
        s_all = np.ones(len(sy), dtype=bool)
        add("shadow accuracy diff vs champion: bootstrap SE", sd(sboot, G.accuracy, s_new, s_old))
        add("shadow accuracy diff vs champion: retrain spread", sboot.difference(G.accuracy, s_new, s_old)[0])
        add("shadow approve-all accuracy", float(sy.mean()))
        add("shadow accuracy gain over approve-all", sboot.difference(G.accuracy, s_new, s_all)[0])
        add("shadow accuracy gain over approve-all: bootstrap SE", sd(sboot, G.accuracy, s_new, s_all))

    for seed in seeds[:5]:
        holdout = generate_claims(ev["holdout_rows"], derived_seed(seed, 2), WINDOW)
        y = label_array(holdout)
        boot = G.PairedBootstrap(y, ev["bootstrap_resamples"], seed)
        (m_bad, t_bad), (m_ok, t_ok) = fit(seed, regression=True), clean[seed]
        bad = G.Scored(predict_approval(m_bad, holdout), t_bad)
        ok = G.Scored(predict_approval(m_ok, holdout), t_ok)
        add("regression: AUC diff", boot.difference(G.roc_auc, bad.proba, ok.proba)[0])
        add("regression: F1 diff at own thresholds", boot.difference(G.f1, bad.approve, ok.approve)[0])
        add("regression: F1 diff at 0.5", boot.difference(G.f1, bad.proba >= 0.5, ok.proba >= 0.5)[0])
        add("regression: threshold", t_bad)
    return {key: {"mean": round(statistics.fmean(v), 5), "min": round(min(v), 5), "max": round(max(v), 5),
                  "n": len(v)} for key, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=6, help="clean models (consecutive seeds from 31)")
    args = parser.parse_args()
    result = measure(args.models)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    print(f"{'quantity':{width}}  {'mean':>9} {'min':>9} {'max':>9}  n")
    for key, r in result.items():
        print(f"{key:{width}}  {r['mean']:+9.5f} {r['min']:+9.5f} {r['max']:+9.5f}  {r['n']}")


if __name__ == "__main__":
    main()

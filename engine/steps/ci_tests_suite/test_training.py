"""Training smoke test: CI's model, configured as ci_quick_train.yaml says, learns this run's sample well enough.

It runs first (files run in name order): under the training_error failure mode its failure is the real error.
"""
from engine.ml.model import evaluate, train


def test_the_ci_model_trained_on_this_runs_sample_clears_the_bar(sample, params, min_roc_auc):
    quick = params("ci_quick_train")
    n_holdout = int(len(sample) * quick["holdout_share"])
    model = train(sample.iloc[n_holdout:], {**quick["forest"], "random_state": 0})
    auc = evaluate(model, sample.iloc[:n_holdout])["roc_auc"]
    assert auc >= min_roc_auc, (f"ROC-AUC {auc:.4f} on {n_holdout} held-out claims of this run is below "
                                f"min_roc_auc {min_roc_auc} (ci_tests.yaml) with the forest of ci_quick_train.yaml")

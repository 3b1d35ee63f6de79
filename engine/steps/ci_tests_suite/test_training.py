"""A training smoke test on this run's CI sample: the model fits and beats chance."""
from sklearn.metrics import roc_auc_score

from engine.ml.claims import label_array
from engine.ml.model import train


def test_model_fits_the_run_sample(sample):
    cut = int(len(sample) * 0.75)
    model = train(sample.iloc[:cut], {"n_estimators": 20, "min_samples_leaf": 5, "random_state": 0, "n_jobs": 1})
    auc = roc_auc_score(label_array(sample.iloc[cut:]), model.predict_proba(sample.iloc[cut:])[:, 1])
    assert auc > 0.7

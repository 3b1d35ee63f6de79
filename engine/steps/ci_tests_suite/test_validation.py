"""This run's sample meets the data contract (engine/ml/validation.py) that data_validation enforces."""
from engine.ml.claims import COLUMNS
from engine.ml.validation import validate


def test_this_runs_sample_meets_the_data_contract(sample):
    report = validate(sample)
    assert report.passed, "; ".join(f"{c.name}: {c.detail}" for c in report.failed_checks)


def test_this_runs_sample_has_the_size_and_columns_the_step_promised(sample, params):
    assert len(sample) == params("ci_tests")["sample_rows"]
    assert tuple(sample.columns) == COLUMNS

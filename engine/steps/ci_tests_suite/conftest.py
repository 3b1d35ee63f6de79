"""Fixtures of the CI suite: this run's CI sample and bar (from the ci_tests step) and the steps' YAML."""
import os

import pandas as pd
import pytest

from engine import pipeline


@pytest.fixture(scope="session")
def sample() -> pd.DataFrame:
    """The claims the ci_tests step drew for this run (its seed and dataset window)."""
    return pd.read_pickle(_from_step("LAB_CI_SAMPLE"))


@pytest.fixture(scope="session")
def min_roc_auc() -> float:
    """The ROC-AUC the CI model must reach: min_roc_auc of the ci_tests step that runs this suite."""
    return float(_from_step("LAB_CI_MIN_ROC_AUC"))


@pytest.fixture(scope="session")
def params():
    """A step's parameters, read from its YAML as the pipeline reads them: params('ci_quick_train')."""
    return lambda step: pipeline.spec(step).params()


def _from_step(name: str) -> str:
    if not os.environ.get(name):
        pytest.fail(f"{name} is not set: this suite runs inside the ci_tests step (engine/steps/ci_tests.py)")
    return os.environ[name]

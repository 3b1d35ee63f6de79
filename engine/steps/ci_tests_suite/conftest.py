"""Fixtures of the CI suite: the run's CI sample, written by the ci_tests step."""
import os

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def sample() -> pd.DataFrame:
    path = os.environ.get("LAB_CI_SAMPLE")
    if not path:
        pytest.fail("LAB_CI_SAMPLE is not set: this suite runs inside the ci_tests step")
    return pd.read_pickle(path)

"""No log record prints a password: loggers that do not propagate and handlers added later included."""
from __future__ import annotations

import io
import logging

import pytest

from engine import logmask

PASSWORD = "log-pw-Pangolin-42"


@pytest.fixture
def secret_env(monkeypatch):
    """The MLflow URI carries PASSWORD; an operator key is set too."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://lab:{PASSWORD}@mlflow:5000")
    monkeypatch.setenv("LAB_OPERATOR_KEY", "opkey-Okapi-7")
    logmask.install()


def _own_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger with a handler of its own that does not propagate (as Streamlit and MLflow set theirs up), made
    after the masking was installed."""
    logger, out = logging.getLogger(name), io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers, logger.propagate = [handler], False
    return logger, out


def test_a_message_its_arguments_and_its_traceback_are_masked(secret_env):
    logger, out = _own_logger("test.logmask.own")
    logger.warning("calling %s", f"http://lab:{PASSWORD}@mlflow:5000/api")
    try:
        try:
            raise ConnectionError(f"API request to http://lab:{PASSWORD}@mlflow:5000 failed")
        except ConnectionError as cause:
            raise RuntimeError("registry unavailable") from cause
    except RuntimeError:
        logger.exception("page failed")
    logger.error("key %s", "opkey-Okapi-7", stack_info=True)
    text = out.getvalue()
    assert "calling http://lab:***@mlflow:5000/api" in text
    assert "registry unavailable" in text and "API request to http://lab:***@mlflow:5000 failed" in text
    assert "key ***" in text and "Stack (most recent call last)" in text
    assert PASSWORD not in text and "opkey-Okapi-7" not in text


def test_installing_twice_keeps_one_masking():
    first = logmask.install()
    factory = logging.getLogRecordFactory()
    assert logmask.install() is first and logging.getLogRecordFactory() is factory

"""Fixtures for the history, registry, demo and walkthrough page tests.

`empty_lab` points the app's Lab at a fresh data dir in tmp_path (through the same environment variables a user
sets) and closes every Lab the app started. `lifecycle_store` plays the whole lifecycle once per session (two
promotions and a rollback, by the demo autopilot, plus one run failed by a failure mode); `lifecycle_lab` gives each
test its own copy of it. `open_page` runs app.py in AppTest opened on one page.

Unlike conftest.py's fixtures (whose app runner never ticks), the app's own runner ticks every 0.2 s here: these
tests check that pages follow work done in the background, as a user would see it. The names differ from
conftest.py's so both sets can be used side by side.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings(data_dir: Path, **overrides):
    from engine.config import Settings
    values = dict(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'lab.db'}",
                  tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}", artifact_root=(data_dir / "mlartifacts").as_uri(),
                  tick_seconds=0.2, heartbeat_seconds=0.3, stale_seconds=5.0)
    return Settings.from_env({}, **{**values, **overrides})


def _point_env(monkeypatch, data_dir: Path) -> None:
    monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{data_dir / 'lab.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow.db'}")
    monkeypatch.setenv("LAB_TICK_SECONDS", "0.2")
    monkeypatch.setenv("LAB_HEARTBEAT_SECONDS", "0.3")
    monkeypatch.setenv("LAB_STALE_SECONDS", "5")


@pytest.fixture
def started_labs(monkeypatch):
    """Every Lab started during the test (the app's get_lab() starts one); all closed and caches cleared after."""
    import streamlit as st

    from engine.lab import Lab
    labs, original = [], Lab.start

    def recording_start(self):
        labs.append(self)
        return original(self)

    monkeypatch.setattr(Lab, "start", recording_start)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield labs
    for lab in labs:
        lab.close()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def empty_lab(tmp_path, mlflow_template, monkeypatch, started_labs):
    """An empty lab in tmp_path/data that the app will open; returns its Settings."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    _point_env(monkeypatch, data)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", (data / "mlartifacts").as_uri())
    return _settings(data)


@pytest.fixture(scope="session")
def lifecycle_store(tmp_path_factory, mlflow_template) -> Path:
    """A data dir holding a played lifecycle: runs 1 and 2 promoted, champion rolled back to v1, run 3 failed."""
    from engine.autopilot import Autopilot
    from engine.lab import Lab
    data = tmp_path_factory.mktemp("seeded")
    shutil.copy(mlflow_template, data / "mlflow.db")
    lab = Lab(_settings(data)).start()
    try:
        pilot = Autopilot(lab, seeds=(11, 12), poll=0.1)
        assert pilot.run() == "done", "seeding the lifecycle failed"
        lab.set_failure_mode("schema_validation", True, by="seed")
        failed = lab.commit(message="seed: broken export", seed=13, author="seed")
        _wait_for(lambda: lab.run(failed)["status"] == "failed")
        lab.set_failure_mode("schema_validation", False, by="seed")
    finally:
        lab.close()
    return data


@pytest.fixture
def lifecycle_lab(lifecycle_store, tmp_path, monkeypatch, started_labs):
    """A private copy of the seeded lab that the app will open; returns its Settings."""
    data = tmp_path / "data"
    # Model artifacts stay where they were logged (their URIs are absolute): only the databases are copied.
    shutil.copytree(lifecycle_store, data, ignore=shutil.ignore_patterns("mlartifacts", "runs"))
    _point_env(monkeypatch, data)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", (lifecycle_store / "mlartifacts").as_uri())
    return _settings(data, artifact_root=(lifecycle_store / "mlartifacts").as_uri())


def _wait_for(predicate, timeout: float = 90.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout:.0f} s")


wait_for = _wait_for


def open_page(url_path: str, timeout: float = 60):
    """app.py in AppTest, opened directly on the page at `url_path` ('runs', 'tour-1-start', ...)."""
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    # AppTest.switch_page only knows file pages; the tour's pages are callables. A page's script hash is the
    # hash of its url_path (st.Page._script_hash), which is what a browser's URL selects.
    at._page_hash = calc_hash(url_path)
    return at.run()


def texts(at) -> str:
    """Every markdown, caption, info, success, warning and error text of a run, joined (for assertions)."""
    parts = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "title"):
        parts += [e.value for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def frame_with(at, column: str):
    """The value of the first st.dataframe that has `column` (dataframes carry no key in AppTest)."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no dataframe with a column {column!r}")

"""Fixtures for the dashboard's AppTest tests.

Each test gets its own data dir, pointed at through the environment before the app creates its Lab, and fresh
Streamlit caches (so `get_lab()` builds a new Lab on the new dir). The app's own runner ticks once an hour here:
tests drive steps deterministically with a second Lab's `runner.run_until_idle()` on the same store.
Stores with finished runs are built once per session and copied, because a CI run costs seconds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def lab_env(data_dir: Path) -> dict[str, str]:
    """Environment that points a Lab (the app's, or a test's) at `data_dir`."""
    return {"LAB_DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{data_dir / 'lab.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": (data_dir / "mlartifacts").as_uri(),
            "LAB_TICK_SECONDS": "3600", "LAB_HEARTBEAT_SECONDS": "0.5", "LAB_STALE_SECONDS": "30"}


def _clear_streamlit_caches() -> None:
    import streamlit as st
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory, mlflow_template) -> tuple[Path, dict[str, int]]:
    """A data dir with run 1 resting in ci_complete and run 2 failed by the schema_validation mode."""
    from engine import Lab, Settings
    data = tmp_path_factory.mktemp("seeded")
    shutil.copy(mlflow_template, data / "mlflow.db")
    lab = Lab(Settings.from_env(lab_env(data)))
    try:
        ok = lab.commit(seed=11, message="seeded: CI passes", author="fixture")
        lab.runner.run_until_idle()
        lab.set_failure_mode("schema_validation", True, "fixture")
        bad = lab.commit(seed=12, message="seeded: schema breaks", author="fixture")
        lab.runner.run_until_idle()
        lab.set_failure_mode("schema_validation", False, "fixture")
        assert lab.run(ok)["status"] == "ci_complete" and lab.run(bad)["status"] == "failed"
    finally:
        lab.close()
    return data, {"ok": ok, "failed": bad}


@pytest.fixture(scope="session")
def awaiting_store(tmp_path_factory, seeded_store) -> tuple[Path, dict[str, int]]:
    """The seeded store with its ci_complete run continued through CD to awaiting_approval (built once)."""
    from engine import Lab, Settings
    source, runs = seeded_store
    data = tmp_path_factory.mktemp("awaiting")
    shutil.copytree(source, data, dirs_exist_ok=True)
    lab = Lab(Settings.from_env(lab_env(data)))
    try:
        lab.continue_run(runs["ok"], by="fixture")
        lab.runner.run_until_idle()
        assert lab.run(runs["ok"])["status"] == "awaiting_approval"
    finally:
        lab.close()
    return data, runs


@pytest.fixture
def data_dir(tmp_path, monkeypatch, mlflow_template) -> Path:
    """An empty lab data dir that the app (and test Labs) will use; caches cleared before and after."""
    data = tmp_path / "lab"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    for key, value in lab_env(data).items():
        monkeypatch.setenv(key, value)
    _clear_streamlit_caches()
    yield data
    from ui.common import get_lab
    get_lab().close()  # the app's lab (cached by the AppTest runs): stop its scheduler before the dir goes
    _clear_streamlit_caches()


@pytest.fixture
def seeded_dir(data_dir, seeded_store) -> tuple[Path, dict[str, int]]:
    """`data_dir` holding a copy of the seeded store."""
    source, runs = seeded_store
    shutil.copytree(source, data_dir, dirs_exist_ok=True)
    return data_dir, runs


@pytest.fixture
def awaiting_dir(data_dir, awaiting_store) -> tuple[Path, dict[str, int]]:
    """`data_dir` holding a copy of the awaiting store (run "ok" awaits approval, run "failed" failed)."""
    source, runs = awaiting_store
    shutil.copytree(source, data_dir, dirs_exist_ok=True)
    return data_dir, runs


@pytest.fixture
def make_lab(data_dir):
    """Call to get a Lab over the app's store (after any seeding), for driving steps and checking state."""
    from engine import Lab
    made = []

    def make() -> Lab:
        made.append(Lab())
        return made[-1]

    yield make
    for lab in made:
        lab.close()


@pytest.fixture
def app(data_dir):
    """An AppTest of the whole app (st.navigation opens the dashboard by default), not yet run."""
    from streamlit.testing.v1 import AppTest
    return AppTest.from_file(APP, default_timeout=90)

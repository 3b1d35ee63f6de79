"""Fixtures and helpers of the pages' AppTest tests.

The app builds its Lab from the environment (`get_lab()`, cached per process), so each test points the
environment at its own data dir and clears Streamlit's caches before and after. Two kinds of app lab:

- `data_dir` (and `seeded_dir`, `played_dir`, `awaiting_dir`, `app`, `make_lab`): the app's runner
  ticks once an hour, so the test drives steps deterministically with a second Lab's `runner.run_until_idle()`.
- `empty_lab` and `lifecycle_lab` (with `started_labs`, `open_page`): a worker ticks every 0.2 s in the test's
  process (standing in for the one app.py's server starts), for tests that check that pages follow work done in
  the background, as a user would see it.

Stores with finished runs are built once per session (here, or in tests/conftest.py) and copied per test.
"""
from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, built_once, copy_store, lab_env, make_settings, store_settings

APP = str(ROOT / "navigation.py")  # the page script app.py's server runs; AppTest runs it directly
WAITING = 4  # the run of the awaiting lifecycle (tests/conftest.py) that waits at the manual gate


@pytest.fixture(autouse=True)
def through_navigation(monkeypatch):
    """Every run opens its page through navigation.py, as the server does (app.py turns the pages/-folder mode off).
    AppTest switches on, at every run, Streamlit's older mode for an app with a pages/ folder, in which a rerun
    runs the page alone, without navigation.py and so without its guard, its busy slot or its visit bookkeeping."""
    from streamlit.runtime.pages_manager import PagesManager
    made = PagesManager.__init__

    def without_the_folder_mode(self, *args, **kwargs):
        made(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", without_the_folder_mode)


@pytest.fixture(scope="session", autouse=True)
def _scan_installed_components_once():
    """Each new AppTest reads the metadata of every installed package, looking for Streamlit components: about a
    third of a second, a sixth of these tests' CPU. The installed packages cannot change during a test run, so
    the scan (a function of nothing) runs once per process and the apps share its answer."""
    from streamlit.components.v2 import manifest_scanner
    scan = manifest_scanner.scan_component_manifests
    manifest_scanner.scan_component_manifests = functools.cache(scan)
    yield
    manifest_scanner.scan_component_manifests = scan


def _clear_streamlit_caches() -> None:
    import streamlit as st
    st.cache_resource.clear()
    st.cache_data.clear()


def point_app_at(monkeypatch, settings) -> None:
    """Make the app's Lab (and any Lab built from the environment) use `settings`. Its reads are not shared for a
    second (LAB_SHARED_READ_SECONDS=0): a test reads the page right after a background change it waited for
    (tests/engine/test_shared.py covers the sharing)."""
    for key, value in lab_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LAB_SHARED_READ_SECONDS", "0")


# ---- the app's runner ticks hourly: the test drives steps ----------------------------------------------------
@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory, mlflow_template) -> tuple[Path, dict[str, int]]:
    """A data dir with run 1 resting in ci_complete and run 2 failed by the schema_validation mode. Read only."""
    from engine import Lab
    runs = {"ok": 1, "failed": 2}

    def seed(data: Path) -> None:
        lab = Lab(make_settings(data, None, mlflow_template))
        try:
            assert lab.commit(seed=11, message="seeded: CI passes", author="fixture") == runs["ok"]
            lab.runner.run_until_idle()
            lab.set_failure_mode("schema_validation", True, "fixture")
            assert lab.commit(seed=12, message="seeded: schema breaks", author="fixture") == runs["failed"]
            lab.runner.run_until_idle()
            lab.set_failure_mode("schema_validation", False, "fixture")
            assert [lab.run(r).status for r in runs.values()] == ["ci_complete", "failed"]
        finally:
            lab.close()
    return built_once(tmp_path_factory, "seeded", seed), runs


@pytest.fixture
def data_dir(tmp_path, monkeypatch, mlflow_template) -> Path:
    """An empty lab data dir that the app (and test Labs) will use; caches cleared before and after."""
    point_app_at(monkeypatch, make_settings(tmp_path / "lab", None, mlflow_template, tick_seconds=3600))
    _clear_streamlit_caches()
    yield tmp_path / "lab"
    from ui.common import get_lab
    get_lab().close()  # the app's lab (cached by the AppTest runs): release its connections before the dir goes
    _clear_streamlit_caches()


@pytest.fixture
def seeded_dir(data_dir, seeded_store) -> tuple[Path, dict[str, int]]:
    """`data_dir` holding a copy of the seeded store."""
    source, runs = seeded_store
    shutil.copytree(source, data_dir, dirs_exist_ok=True)
    return data_dir, runs


def _holding(data_dir: Path, source: Path, monkeypatch) -> Path:
    """Fill `data_dir` with a copy of the lifecycle store `source` (whose artifacts stay where they are)."""
    copy_store(source, data_dir)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", (source / "mlartifacts").as_uri())
    return data_dir


@pytest.fixture
def played_dir(data_dir, played_lifecycle, monkeypatch) -> Path:
    """`data_dir` holding a copy of the played lifecycle (tests/conftest.py)."""
    return _holding(data_dir, played_lifecycle, monkeypatch)


@pytest.fixture
def awaiting_dir(data_dir, awaiting_lifecycle, monkeypatch) -> Path:
    """`data_dir` holding a copy of the awaiting lifecycle (run WAITING waits at the manual gate; champion v1)."""
    return _holding(data_dir, awaiting_lifecycle, monkeypatch)


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
    return AppTest.from_file(APP, default_timeout=180)


# ---- a worker ticks every 0.2 s: pages follow background work ---------------------------------------------------
@pytest.fixture
def started_labs(request):
    """The worker of the test (a started Lab in this process, as app.py's server starts one in its own), made by
    empty_lab, lifecycle_lab or awaiting_lab; closed and caches cleared after."""
    labs: list = []
    _clear_streamlit_caches()
    yield labs
    for lab in labs:
        lab.close()
    from ui.common import get_lab
    get_lab().close()
    _clear_streamlit_caches()


def _serve(settings, request, monkeypatch):
    """Point the app at `settings` and start its worker (with `quiet_stream`, one whose stream job never ticks)."""
    from engine.lab import Lab
    point_app_at(monkeypatch, settings)
    if "quiet_stream" in request.fixturenames:
        settings = dataclasses.replace(settings, stream_tick_seconds=3600)
    request.getfixturevalue("started_labs").append(Lab(settings).start())
    return settings


@pytest.fixture
def empty_lab(tmp_path, mlflow_template, monkeypatch, request):
    """An empty lab in tmp_path/data that the app will open, with a worker; returns its Settings."""
    return _serve(make_settings(tmp_path / "data", None, mlflow_template), request, monkeypatch)


@pytest.fixture
def lifecycle_lab(played_lifecycle, tmp_path, monkeypatch, request):
    """A private copy of the played lifecycle (tests/conftest.py) that the app will open, with a worker; returns
    its Settings."""
    return _serve(store_settings(played_lifecycle, copy_store(played_lifecycle, tmp_path / "data")), request,
                  monkeypatch)


@pytest.fixture
def awaiting_lab(awaiting_lifecycle, tmp_path, monkeypatch, request):
    """A private copy of the awaiting lifecycle (run 4 at the manual gate) that the app will open, with a worker;
    its Settings."""
    return _serve(store_settings(awaiting_lifecycle, copy_store(awaiting_lifecycle, tmp_path / "data")), request,
                  monkeypatch)


@pytest.fixture
def side_lab(request):
    """A Lab on the test's copy (lifecycle_lab or awaiting_lab): another person or process acting meanwhile."""
    from engine.lab import Lab
    settings = next(request.getfixturevalue(name) for name in ("awaiting_lab", "lifecycle_lab")
                    if name in request.fixturenames)
    lab = Lab(settings)
    yield lab
    lab.close()


def open_page(url_path: str, timeout: float = 180):
    """The app (navigation.py) in AppTest, opened directly on the page at `url_path` ('runs', 'tour-1-start', ...)."""
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash
    at = AppTest.from_file(APP, default_timeout=timeout)
    # AppTest.switch_page only knows file pages; the tour's pages are callables. A page's script hash is the
    # hash of its url_path (st.Page._script_hash), which is what a browser's URL selects.
    at._page_hash = calc_hash(url_path)
    return at.run()


def arrive(at, page: str, **params: str):
    """Come to `page` ("pages/runs.py") from another page of the app, at an address with `params`, as a link does.
    A page takes its selection from the URL only on arriving (ui/pagekit.arrived): later in a visit the address is
    the page's own, and the browser may send an older one back."""
    at.switch_page("pages/registry.py" if page != "pages/registry.py" else "pages/runs.py").run()
    at.query_params.clear()
    at.query_params.update(params)
    return at.switch_page(page).run()


def texts(at) -> str:
    """Every markdown, caption, info, success, warning and error text of a run, joined (for assertions)."""
    parts = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "title"):
        parts += [e.value for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def errors_besides_the_drift_alert(at, lab) -> list[str]:
    """The errors a dashboard run shows, less the Claims panel's major-drift and performance alerts, each of which
    must be there exactly when the store's latest snapshot says so (the lifecycle streams drifted claims)."""
    errors = [str(e.value) for e in at.error]
    latest = lab.stream.snapshots(1)
    alerts = []
    if latest and latest[0]["level"] == "major":
        alerts.append(f"Drift is **major** (snapshot #{latest[0]['id']}):")
    if latest and latest[0]["performance_level"] == "alert":
        alerts.append(f"Performance **alert** (snapshot #{latest[0]['id']}, ")
    for alert in alerts:
        assert [e for e in errors if e.startswith(alert)], f"no alert starting {alert!r} among {errors}"
    return [e for e in errors if not any(e.startswith(alert) for alert in alerts)]


@pytest.fixture
def served(monkeypatch):
    """Call with a download button (AppTest element) to get the bytes it serves when clicked: the file its
    data callable builds, as the button registered it with Streamlit's media manager in the page run."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    made: dict[str, object] = {}
    register = MediaFileManager.add_deferred

    def add_deferred(self, data, *args, **kwargs):
        file_id = register(self, data, *args, **kwargs)
        made[file_id] = data
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)

    def serve(button) -> bytes:
        data = made[button.proto.deferred_file_id]()
        return data.encode() if isinstance(data, str) else data
    return serve


def step_picker(at):
    """The inspector's step selector (its widget key names the shown step: ui/common.pick_key)."""
    return next(s for s in at.selectbox if s.label == "Step")


def view_picker(at):
    """The inspector's Code / Config / Logs / Outputs control."""
    return next(s for s in at.segmented_control if s.label == "View")


def frame_with(at, column: str):
    """The value of the first st.dataframe that has `column` (dataframes carry no key in AppTest)."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no dataframe with a column {column!r}")


# ---- the stream, driven only by the test (Claims panel and Drift page) ------------------------------------------
# A rate (claims/s) at which nothing is ever due: a stream a test turned on at this rate gives a ticking stream job
# nothing to produce, so only `produce(n)` makes claims.
STILL = 0.001


@pytest.fixture
def quiet_stream(monkeypatch):
    """The test's worker has a stream job that waits an hour before its first tick: only the test produces claims."""
    monkeypatch.setenv("LAB_STREAM_TICK_SECONDS", "3600")


@pytest.fixture
def producer(lifecycle_lab, quiet_stream):
    """A Lab on the test's copy of the played lifecycle (champion v1, staging v2, its demo's claims): it produces
    claims and reads the stream's state."""
    from engine.lab import Lab
    lab = Lab(lifecycle_lab)
    yield lab
    lab.close()

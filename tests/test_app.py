"""app.py, the server: a real `streamlit run app.py` serves its st.App (an experimental Streamlit entry point, so
what the lab relies on is pinned here): the pages and the health check answer, the lifespan starts one supervised
worker in its own process and stops it with the server, and LAB_APP_WORKER=0 starts none."""
from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, kill_group, make_settings, start_serving, wait_until


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def lab_settings(tmp_path, mlflow_template):
    return make_settings(tmp_path / "lab", None, mlflow_template)


def test_the_server_runs_one_worker_of_its_own_and_stops_it_with_itself(lab_settings, tmp_path):
    from engine import Lab
    proc, url = start_serving(cli_env(lab_settings), tmp_path / "streamlit.log")
    lab = Lab(lab_settings)
    try:
        with urllib.request.urlopen(url, timeout=30) as page:  # the page shell is served beside the lifespan
            assert page.status == 200 and b"<html" in page.read().lower()
        live = wait_until(lambda: [w for w in lab.workers() if w["alive"]], what="the embedded worker")
        assert len(live) == 1
        worker = live[0]["pid"]
        assert worker != proc.pid and _parent(worker) == proc.pid
        assert Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")[1:4] == [b"-m", b"engine", b"worker"]
        assert (lab_settings.data_dir / "worker.lock").read_text().strip() == str(proc.pid)

        os.kill(proc.pid, signal.SIGTERM)  # the server alone: its lifespan must stop the worker
        proc.wait(120)
        wait_until(lambda: not Path(f"/proc/{worker}").exists() or
                   "Z" in Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0],
                   what="the worker to stop with the server")
        assert not [w for w in lab.workers() if w["alive"]], "a stopped worker deregisters"
    finally:
        kill_group(proc, signal.SIGKILL)
        lab.close()


def test_with_lab_app_worker_off_the_server_starts_no_worker(lab_settings, tmp_path):
    from engine import Lab
    proc, _ = start_serving({**cli_env(lab_settings), "LAB_APP_WORKER": "0"}, tmp_path / "streamlit.log")
    lab = Lab(lab_settings)
    try:  # the health check answers only after the lifespan's start-up has run
        assert not (lab_settings.data_dir / "worker.lock").exists()
        assert lab.workers() == []
    finally:
        kill_group(proc, signal.SIGTERM)
        lab.close()


def test_streamlits_older_multipage_mode_is_off():
    """app.py turns off the pages/-folder mode through an internal attribute: it must still be the one Streamlit
    reads, or /registry would run pages/registry.py without navigation.py's guard. (app.py is not imported here:
    building its st.App would pin Streamlit's process-wide script path for the AppTests after this one.)"""
    import inspect

    from streamlit.runtime import pages_manager
    assert "uses_pages_directory" in inspect.getsource(pages_manager)
    assert "PagesManager.uses_pages_directory = False" in (ROOT / "app.py").read_text()

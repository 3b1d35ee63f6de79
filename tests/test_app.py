"""app.py, the server: a real `streamlit run app.py` serves its st.App (an experimental Streamlit entry point, so
what the lab relies on is pinned here): the pages and the health check answer, the lifespan starts one supervised
worker in its own process (restarted when it dies) and stops it with the server, its pages run below its steps,
LAB_APP_WORKER=0 starts none, a page run imports no scikit-learn, a page's address answers a
shell that names the app's root (api/page_root.py), and uvicorn runs on httptools and uvloop."""
from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, kill_group, make_settings, serving, start_serving, wait_until


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields from the state on (index 0: state, 1: parent, 16: nice)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _parent(pid: int) -> int:
    return int(_stat(pid)[1])


def _nice(pid: int) -> int:
    return int(_stat(pid)[16])


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
        # Steps first: the server's event loop (which starts every page run's thread) runs below its worker, and a
        # worker restarted after a crash keeps full priority (the supervisor's thread starts it, not a page's).
        assert (_nice(proc.pid), _nice(worker)) == (lab_settings.page_nice, 0) and lab_settings.page_nice > 0
        os.kill(worker, signal.SIGKILL)
        again = wait_until(lambda: [w["pid"] for w in lab.workers() if w["alive"] and w["pid"] != worker],
                           what="the supervisor to restart the worker")[0]
        assert _parent(again) == proc.pid and _nice(again) == 0
        worker = again

        os.kill(proc.pid, signal.SIGTERM)  # the server alone: its lifespan must stop the worker
        proc.wait(120)
        wait_until(lambda: not Path(f"/proc/{worker}").exists() or "Z" in _stat(worker)[0],
                   what="the worker to stop with the server")
        # a stopped worker deregisters (the one killed above is listed until its heartbeat goes stale)
        assert not [w for w in lab.workers() if w["alive"] and w["pid"] == worker]
    finally:
        kill_group(proc, signal.SIGKILL)
        lab.close()


def test_with_lab_app_worker_off_the_server_starts_no_worker(lab_settings, tmp_path):
    from engine import Lab
    proc, url = start_serving({**cli_env(lab_settings), "LAB_APP_WORKER": "0"}, tmp_path / "streamlit.log")
    lab = Lab(lab_settings)
    try:  # the health check answers only after the lifespan's start-up has run
        assert not (lab_settings.data_dir / "worker.lock").exists()
        assert lab.workers() == []
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200
        # requirements.txt installs them for this: uvicorn parses HTTP with httptools and runs on uvloop
        loaded = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "/httptools/" in loaded and "/uvloop/" in loaded
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


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
    except urllib.error.HTTPError as reply:
        return reply.code, {k.lower(): v for k, v in reply.headers.items()}, reply.read()


def test_a_pages_address_answers_a_shell_that_names_the_apps_root(lab_settings, tmp_path):
    """Opened cold at /drift, Streamlit's frontend asked /drift/_stcore/health and /drift/_stcore/host-config
    (404 each, two console errors) before the root's. Every page's address (navigation.py: the pages/ files and
    the walkthrough) now answers the shell with the root set; the root, the static files and the API are as
    before. tests/e2e/test_browser.py opens /drift in Chromium."""
    from api.page_root import SCRIPT
    from ui.tour import TOUR
    pages = [p.stem for p in sorted((ROOT / "pages").glob("*.py"))] + [path for _, _, path in TOUR]
    with serving({**cli_env(lab_settings), "LAB_APP_WORKER": "0"}, tmp_path / "streamlit.log") as url:
        for path in pages:
            for encoding in ("identity", "gzip"):  # a browser asks for gzip: the shell comes uncompressed
                status, headers, body = _get(f"{url}{path}?run=3", **{"Accept-Encoding": encoding})
                assert (status, headers["content-type"].split(";")[0]) == (200, "text/html"), (path, status)
                assert "content-encoding" not in headers and int(headers["content-length"]) == len(body)
                assert body.count(SCRIPT) == 1 and body.index(SCRIPT) < body.index(b'<script type="module"'), path
        status, _, root = _get(url)
        assert status == 200 and b"<html" in root.lower() and SCRIPT not in root
        status, headers, icon = _get(f"{url}favicon.png")  # one segment too, but no shell: untouched
        assert (status, headers["content-type"]) == (200, "image/png") and icon.startswith(b"\x89PNG")
        status, _, health = _get(f"{url}_stcore/health")
        assert (status, health) == (200, b"ok")


def test_the_pages_import_no_scikit_learn(awaiting_lifecycle, lifecycle_copy):
    """The server only draws pages: scikit-learn (with scipy.stats, about 60 MB a process) belongs to the worker,
    which trains and scores. engine.ml.gates, which the pages read checks from, imports it where a gate is
    computed. Drawn on a lab with champions, a rollback, a failed run and a run waiting with its gate evidence;
    then the Claims panel's Start, which checks the champion servable without loading it (it loaded it, and
    scikit-learn with it: 130 MB more in the app after the demo's lifecycle)."""
    import subprocess
    import sys
    script = (
        "import sys\n"
        "from streamlit.runtime.pages_manager import PagesManager\n"
        "made = PagesManager.__init__\n"
        "def no_folder(self, *a, **k):\n"
        "    made(self, *a, **k); PagesManager.uses_pages_directory = False\n"
        "PagesManager.__init__ = no_folder\n"
        "import app\n"
        "from streamlit.testing.v1 import AppTest\n"
        "for page in ('dashboard', 'runs', 'registry', 'drift', 'demo'):\n"
        f"    at = AppTest.from_file({str(ROOT / 'navigation.py')!r}, default_timeout=300)\n"
        "    at.switch_page(f'pages/{page}.py').run()\n"
        "    assert not at.exception, (page, at.exception)\n"
        "at.switch_page('pages/dashboard.py').run()\n"
        "at.button(key='stream_start').click().run()\n"
        "assert not at.exception, at.exception\n"
        "from ui.common import get_lab\n"
        "assert get_lab().stream.state()['enabled']\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops'))[:5])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**cli_env(lifecycle_copy(awaiting_lifecycle)), "LAB_APP_WORKER": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]


@pytest.mark.parametrize("path, rewritten", [("/drift", True), ("/lab/drift", False), ("/favicon.png", False),
                                             ("/", False), ("/_stcore/health", False)])
def test_only_a_pages_address_is_asked_uncompressed(path, rewritten):
    """The shell is read and rewritten uncompressed; a file one segment below the root (a dot in its name) is
    served as the client asked, compressed when it may be."""
    from api.page_root import PageRoot
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)
    scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"accept-encoding", b"gzip")]}
    # Driven by hand: nothing in it waits, and a browser test in this process may hold a running event loop.
    with pytest.raises(StopIteration):
        PageRoot(app)(scope, None, None).send(None)
    assert (b"accept-encoding", b"gzip") not in seen["headers"] if rewritten else seen["headers"] == scope["headers"]

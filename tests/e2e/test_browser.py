"""The real dashboard in headless Chromium: a fake commit runs CI to ci_complete, a step's logs open, no
Streamlit exception shows anywhere. The server is a real `streamlit run app.py` with its own runner."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, free_port, kill_group, make_settings, wait_serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
CI_DEADLINE = 300  # seconds for a whole CI run (tests in a subprocess, training, MLflow) on a busy small machine


@pytest.fixture
def server(tmp_path, mlflow_template):
    """A dashboard server on a free port over an empty data dir; stopped whatever happens."""
    settings = make_settings(tmp_path / "lab", None, mlflow_template)
    port = free_port()
    log = tmp_path / "streamlit.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.address", "127.0.0.1", "--server.headless", "true"],
                                cwd=ROOT, env=cli_env(settings), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_serving(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        kill_group(proc, signal.SIGTERM)


@pytest.fixture
def chromium():
    """Debian's chromium; skipped where it is absent, unless CI is set (then its absence is a failure)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so the browser test is mandatory)")
        pytest.skip(message)
    return CHROMIUM


@pytest.mark.e2e
def test_commit_runs_ci_to_complete_and_logs_open(server, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=60_000)  # every wait below is by condition; a loaded machine redraws slowly
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(server)
            expect(page.get_by_text("No runs yet — click + Fake Commit")).to_be_visible()

            page.get_by_role("button", name="Fake Commit").click()
            page.get_by_role("textbox", name="Commit message").fill("e2e: a change to the forest")
            page.get_by_role("button", name="Start CI").click()
            expect(page.get_by_text("run 1: ci_complete")).to_be_visible(timeout=CI_DEADLINE * 1000)

            # The DAG is an iframe; pick the step with the plain selector beside it, then its Logs view.
            page.get_by_test_id("stSelectbox").filter(has_text="Step").click()
            page.get_by_role("option", name="CI · Quick train").click()
            page.get_by_role("radiogroup", name="View").get_by_role("radio", name="Logs").click()
            expect(page.get_by_text("Quick train", exact=True).first).to_be_visible()
            expect(page.get_by_role("button", name="Download .log")).to_be_visible()
            expect(page.get_by_text(re.compile(r"^(\d+) of \1 lines$"))).to_be_visible()  # the unfiltered log
            # the picture once nothing is being redrawn (Streamlit marks elements it has not redrawn yet)
            expect(page.locator('[data-stale="true"]')).to_have_count(0)

            shot = tmp_path / "dashboard-ci-complete.png"
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
            errors = page.locator('[data-testid="stException"]')
            assert errors.count() == 0, errors.first.inner_text()
        finally:
            browser.close()

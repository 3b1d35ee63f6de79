"""The Claims panel and the score form in headless Chromium, on a real `streamlit run app.py` whose own runner
produces the stream. The lab is a copy of the played lifecycle (champion v1, staging v2, its demo's stream stopped).

Start from the panel: the producer takes the lease and claims appear in the feed. Stop: the stream's state is off,
and the producer gives its lease up at its next tick, with no claim added beyond the batch that may have been in
flight when Stop landed.
"""
from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from engine.stream import MAX_BATCH_SECONDS
from tests.conftest import ROOT, wait_until
from tests.e2e.conftest import serving

DEADLINE = 120  # seconds for anything the server does on a busy 2-core machine


@pytest.fixture(scope="module")
def lab_dir(played_lifecycle, tmp_path_factory):
    """A private copy of the played lifecycle's databases (model artifacts stay where they were logged)."""
    data = tmp_path_factory.mktemp("stream-e2e") / "lab"
    shutil.copytree(played_lifecycle, data, ignore=shutil.ignore_patterns("mlartifacts", "runs"))
    return data


@pytest.fixture(scope="module")
def env(lab_dir, played_lifecycle):
    """The environment of the server, and of the Lab the test reads the stream's state with."""
    return {"LAB_DATA_DIR": str(lab_dir), "DATABASE_URL": f"sqlite:///{lab_dir / 'lab.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{lab_dir / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": (played_lifecycle / "mlartifacts").as_uri()}


@pytest.fixture(scope="module")
def server(env, lab_dir):
    """The dashboard on a free port over the copy; terminated whatever happens."""
    with serving({**os.environ, **env, "PYTHONPATH": str(ROOT)}, lab_dir.parent / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def reader(env):
    """A Lab over the server's store, for reading the stream's state (it never starts a runner)."""
    from engine.config import Settings
    from engine.lab import Lab
    lab = Lab(Settings.from_env(env))
    yield lab
    lab.store.dispose()


def _no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def _produced(page) -> int:
    """The count of produced claims on the panel's status line (0 while it is not drawn)."""
    line = page.get_by_text(re.compile(r"[\d,]+ produced")).first
    found = re.search(r"([\d,]+) produced", line.inner_text()) if line.count() else None
    return int(found.group(1).replace(",", "")) if found else 0


def _shoot(page, anchor: str, path, width: int) -> None:
    """A picture of the part of the page that starts at `anchor`, at `width` pixels."""
    page.set_viewport_size({"width": width, "height": 1400})
    page.get_by_text(anchor, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    time.sleep(1.5)  # let charts finish drawing before the picture (not a wait for work)
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")


@pytest.mark.e2e
def test_the_panel_starts_the_stream_rows_appear_and_stop_stops_it(server, browser, reader, tmp_path):
    from playwright.sync_api import expect
    before = reader.stream.state()
    assert not before["enabled"]
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(server)
    heading = page.get_by_text("Claims stream", exact=True)
    expect(heading).to_be_visible(timeout=DEADLINE * 1000)
    heading.scroll_into_view_if_needed()

    rate = page.get_by_role("spinbutton", name="Rate (claims/s)")
    rate.fill("50")
    rate.press("Enter")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_role("button", name="Apply", exact=True)).to_be_visible(timeout=DEADLINE * 1000)
    state = reader.stream.state()  # the Start callback committed before the page drew Apply
    assert (state["enabled"], state["rate"]) == (True, 50.0)

    # Rows appear: the app's producer stores new claims and the panel's live part shows them.
    wait_until(lambda: reader.stream.state()["next_seq"] > before["next_seq"] + 100, DEADLINE,
               what="the app's producer to store claims")
    feed = page.get_by_test_id("stDataFrame")
    expect(page.get_by_text("Latest 20 claims")).to_be_visible(timeout=DEADLINE * 1000)
    expect(feed.first).to_be_visible(timeout=DEADLINE * 1000)
    # The panel refreshes by itself while the stream is on: its count moves past where it started.
    wait_until(lambda: _produced(page) > before["next_seq"] + 100, DEADLINE, interval=0.5,
               what="the panel's produced count to move")
    _no_exception(page)
    _shoot(page, "Claims stream", tmp_path / "claims-panel-1440.png", 1440)
    _shoot(page, "Claims stream", tmp_path / "claims-panel-390.png", 390)
    page.set_viewport_size({"width": 1440, "height": 1000})

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_visible(timeout=DEADLINE * 1000)
    assert reader.stream.state()["enabled"] is False
    stopped_at = reader.stream.state()["next_seq"]
    # Stopped, the producer gives its lease up at its next tick (it would otherwise lapse in 30 s).
    wait_until(lambda: reader.stream.state()["producer"]["owner"] is None, DEADLINE, interval=0.5,
               what="the producer to give up its lease")
    # A batch already being scored when Stop landed may still be stored (at most rate x MAX_BATCH_SECONDS claims).
    # Ticks never overlap (one instance at a time), so that batch was stored before the tick that gave the lease
    # up: every claim the producer will ever store after Stop is counted here.
    assert reader.stream.state()["next_seq"] - stopped_at <= 50 * MAX_BATCH_SECONDS, "claims kept coming after Stop"
    _no_exception(page)


@pytest.mark.e2e
def test_an_unknown_category_typed_into_the_score_form_gets_its_own_message(server, browser, tmp_path):
    from playwright.sync_api import expect
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    # The page's own URL path (st.Page takes it from pages/drift.py), as a bookmark or a shared link opens it; the
    # top navigation keeps it in the "Lab" section's menu.
    page.goto(f"{server.rstrip('/')}/drift")
    expect(page.get_by_text("Score a claim", exact=True)).to_be_visible(timeout=DEADLINE * 1000)
    _shoot(page, "Drift and scoring", tmp_path / "drift-page-1440.png", 1440)
    _shoot(page, "Drift and scoring", tmp_path / "drift-page-390.png", 390)
    page.set_viewport_size({"width": 1440, "height": 1000})

    cpt = page.get_by_test_id("stSelectbox").filter(has_text="CPT bucket")
    cpt.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Dentistry")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Score with the champion").click()
    message = page.get_by_text("CPT bucket 'Dentistry' is not a known category")  # the field as labelled
    expect(message).to_be_visible(timeout=DEADLINE * 1000)
    expect(page.get_by_text("Nothing was scored: fix the 1 field(s) marked above.")).to_be_visible()
    _no_exception(page)

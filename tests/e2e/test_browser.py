"""The real dashboard in headless Chromium, against a real `streamlit run app.py` and the worker it supervises:

- a fake commit runs CI to ci_complete; a step's log console opens; a DAG click picks a step;
- a schema-failure run, then Retry: the page keeps working and the failed step is focused;
- a commit from the CLI appears on a resting dashboard by itself;
- the phone layout (390 px): primary action plus a menu, which closes when an action in it opens its dialog;
- a page's address opened directly draws that page, with no 404 on the way;
- the registry's lineage graph over a played lifecycle, at 1440 px and 390 px; and over 2, 7 and 20 synthetic
  versions at both widths, measured on its screenshot (saved in the test's tmp_path as
  lineage-<versions>-<width>.png).

No Streamlit exception and no browser console error may show in any of them. Waits are by condition with
generous deadlines (the machine is small and shared); nothing here asserts a timing.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, copy_store, make_settings, store_settings, wait_until
from tests.e2e.conftest import serving

CI_DEADLINE = 300  # seconds for a whole CI run (tests in a subprocess, training, MLflow) on a busy small machine


@pytest.fixture
def server_env(tmp_path, mlflow_template) -> dict[str, str]:
    """Environment of an empty lab in tmp_path: the server, the CLI and test Labs all use it."""
    return cli_env(make_settings(tmp_path / "lab", None, mlflow_template))


@pytest.fixture
def server(tmp_path, server_env):
    """A dashboard server over the empty lab."""
    with serving(server_env, tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture
def lifecycle_server(tmp_path, played_lifecycle):
    """A dashboard server over a private copy of the played lifecycle (two promotions and a rollback)."""
    env = cli_env(store_settings(played_lifecycle, copy_store(played_lifecycle, tmp_path / "lab")))
    with serving(env, tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture
def lab(server_env):
    """A Lab over the server's store (its runner not started: the server's worker does the work)."""
    from engine import Lab, Settings
    lab = Lab(Settings.from_env(server_env))
    yield lab
    lab.close()


def open_page(browser, url: str, width: int = 1440, height: int = 1000, wait: bool = True):
    """A page at `url`, recording console errors in page.errors and answers of 400 or more in page.refused
    (wait=False: return as soon as it commits)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)  # every wait is by condition; a loaded machine redraws slowly
    page.errors, page.refused = [], []
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda reply: page.refused.append((reply.status, reply.url)) if reply.status >= 400 else None)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url, wait_until="load" if wait else "commit")
    return page


def assert_healthy(page) -> None:
    """No Streamlit exception on the page and no error in the browser console."""
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()
    assert page.errors == []


def status_line(page, text: str, timeout: float):
    from playwright.sync_api import expect
    expect(page.get_by_text(text).first).to_be_visible(timeout=timeout * 1000)


NAV_LINKS = '[data-testid="stTopNavLink"], [data-testid="stTopNavDropdownLink"], [data-testid="stSidebarNavLink"]'


def dag_node(page, name: str):
    return page.locator(f'.lab-dag [data-step="{name}"]')


def step_select(page):
    """The inspector's step selector (its value is the shown step's "stage · title")."""
    return page.get_by_role("combobox", name="Step")


@pytest.mark.e2e
def test_commit_runs_ci_to_complete_and_a_dag_click_opens_a_steps_log(server, browser, lab):
    from playwright.sync_api import expect
    page = open_page(browser, server, wait=False)
    raw_list_seen, deadline = False, time.monotonic() + 60  # Streamlit's own list of the pages/ folder
    while not page.get_by_text("No runs yet: click Fake commit").is_visible():
        assert time.monotonic() < deadline, "the dashboard did not draw within 60 s"
        raw_list_seen |= page.locator('[data-testid="stSidebarNav"]').count() > 0
        page.wait_for_timeout(50)
    assert not raw_list_seen

    page.get_by_role("button", name="Fake commit").first.click()
    page.get_by_role("textbox", name="Commit message").fill("e2e: a change to the forest")
    page.get_by_role("button", name="Start CI").click()
    expect(dag_node(page, "commit_received")).to_be_visible(timeout=30_000)
    status_line(page, "run 1: ci_complete", CI_DEADLINE)
    # The steps ran in the worker the server supervises, not in the interpreter that draws the pages.
    pids = {int(s.worker.split(":")[1]) for s in lab.run(1).steps if s.worker}
    assert len(pids) == 1
    assert Path(f"/proc/{pids.pop()}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"engine"]

    dag_node(page, "ci_quick_train").click()  # the DAG picks the step the inspector shows
    expect(step_select(page)).to_have_value("CI · Quick train", timeout=15_000)
    expect(page).to_have_url(re.compile(r"step=ci_quick_train"), timeout=15_000)  # the link follows the click
    page.get_by_role("radiogroup", name="View").get_by_role("radio", name="Logs").click()
    expect(page).to_have_url(re.compile(r"tab=Logs"), timeout=15_000)
    expect(page.locator(".lab-console")).to_contain_text("started ci_quick_train", timeout=15_000)
    expect(page.get_by_role("button", name="Download the full log")).to_be_visible()
    assert_healthy(page)


@pytest.mark.e2e
def test_clicks_made_while_a_moving_run_redraws_its_panels_all_land(server, browser, lab):
    # The DAG and the inspector redraw every second while a step is queued or running; a click that arrives while
    # they redraw is still the visitor's pick, and the address follows each one (it was lost, or one click late).
    from playwright.sync_api import expect
    page = open_page(browser, server)
    status_line(page, "No runs yet: click Fake commit", 60)
    run = lab.commit(message="e2e: clicks while it runs", author="e2e")
    expect(dag_node(page, "commit_received")).to_be_visible(timeout=60_000)
    picks = (("data_validation", "CI · Data validation"), ("ci_tests", "CI · CI tests"),
             ("commit_received", "CI · Commit"), ("ci_quick_train", "CI · Quick train"))
    for name, label in picks:
        dag_node(page, name).click()
        expect(step_select(page)).to_have_value(label, timeout=30_000)
        expect(page).to_have_url(re.compile(rf"step={name}(&|$)"), timeout=30_000)
    for tab in ("Config", "Logs", "Code"):
        page.get_by_role("radiogroup", name="View").get_by_role("radio", name=tab).click()
        expect(page).to_have_url(re.compile(rf"tab={tab}(&|$)"), timeout=30_000)
    status_line(page, f"run {run}: ci_complete", CI_DEADLINE)
    expect(step_select(page)).to_have_value("CI · Quick train")  # the last pick held while the run moved on
    assert_healthy(page)


@pytest.mark.e2e
def test_retry_of_a_schema_failure_keeps_the_page_working_and_focuses_the_failed_step(server, browser, lab):
    from playwright.sync_api import expect
    lab.set_failure_mode("schema_validation", True, by="e2e")
    page = open_page(browser, server)
    expect(page.get_by_text("No runs yet: click Fake commit")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Fake commit").first.click()
    page.get_by_role("button", name="Start CI").click()

    # data_validation fails at once while ci_tests still runs: the page stays live until ci_tests settles.
    expect(dag_node(page, "data_validation")).to_have_class("failed", timeout=CI_DEADLINE * 1000)
    expect(dag_node(page, "ci_tests")).not_to_have_class("running", timeout=CI_DEADLINE * 1000)
    status_line(page, "run 1: failed", 30)
    expect(step_select(page)).to_have_value("CI · Data validation")

    page.get_by_role("button", name="Retry").first.click()  # the failure mode is still on: it fails again
    page.get_by_role("button", name="Retry run 1").click()
    expect(page.get_by_text("Run 1 retrying from data_validation")).to_be_visible(timeout=15_000)
    wait_until(lambda: lab.run(1).status == "failed" and lab.store.step(1, "data_validation").attempt == 2)
    expect(page.get_by_text("attempt 2").first).to_be_visible(timeout=30_000)
    status_line(page, "run 1: failed", 30)
    expect(step_select(page)).to_have_value("CI · Data validation")
    expect(page.get_by_text("data_validation failed:")).to_be_visible()
    assert_healthy(page)


@pytest.mark.e2e
def test_a_cli_commit_appears_on_a_resting_dashboard_by_itself(server, browser, server_env, tmp_path):
    from playwright.sync_api import expect
    page = open_page(browser, server)
    expect(page.get_by_text("No runs yet: click Fake commit")).to_be_visible(timeout=60_000)
    done = subprocess.run([sys.executable, "-m", "engine", "commit", "--message", "from the command line"],
                          cwd=ROOT, env=server_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # Nobody touches the page: its watch fragment sees the new run (polling every few seconds) and shows it.
    expect(page.get_by_text("run 1:").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("from the command line").first).to_be_visible()
    assert_healthy(page)


@pytest.mark.e2e
def test_phone_layout_shows_the_primary_action_and_a_menu(server, browser, lab):
    from playwright.sync_api import expect
    lab.commit(message="e2e: phone", author="e2e")
    page = open_page(browser, server, width=390, height=844)
    expect(dag_node(page, "commit_received")).to_be_visible(timeout=60_000)
    # Read the buttons once the run has rested and the page has drawn it: the primary action follows the run's
    # status, and .all() gives nth() locators, which shift while the run's end redraws the header.
    status_line(page, "run 1: ci_complete", 60)
    expect(page.locator('[data-test-script-state="notRunning"]')).to_have_count(1, timeout=60_000)
    expect(page.get_by_role("button", name="More")).to_be_visible()
    visible = [b for b in page.get_by_role("button").all() if b.is_visible()]
    labels = [b.inner_text().strip() for b in visible]
    assert any(label.endswith("Continue to CD") for label in labels)  # what its status calls for comes first
    assert any("More" in label for label in labels)
    assert not any(label.endswith("Fake commit") for label in labels)  # in the menu, as the other actions
    assert not any(label.endswith("Rollback") for label in labels)  # in the menu, not on the first screen
    page.get_by_role("button", name="More").click()  # its entries are drawn by the rerun its opening asks for
    expect(page.get_by_role("button", name="Rollback")).to_be_visible(timeout=60_000)
    box = page.locator(".lab-dag").bounding_box()
    assert box["width"] <= 390  # the DAG keeps its size and scrolls inside its frame
    assert page.locator(".lab-dag").evaluate("el => el.scrollWidth > el.clientWidth")
    assert_healthy(page)


@pytest.mark.e2e
def test_on_a_phone_the_menu_closes_when_an_action_in_it_opens_its_dialog(lifecycle_server, browser):
    from playwright.sync_api import expect
    page = open_page(browser, lifecycle_server, width=390, height=844)
    status_line(page, "run 3: failed", 60)  # Retry is the first button; Fake commit is in the menu
    page.get_by_role("button", name="More").click()
    menu = page.get_by_test_id("stPopoverBody")
    expect(menu).to_be_visible()
    # As a person does: the menu's own rerun (it is tracked) has finished before an entry in it is chosen.
    expect(page.locator('[data-test-script-state="notRunning"]')).to_have_count(1, timeout=60_000)
    menu.get_by_role("button", name="Fake commit").click()
    field = page.get_by_role("dialog").get_by_role("textbox", name="Commit message")
    expect(field).to_be_visible(timeout=30_000)
    expect(menu).to_be_hidden(timeout=30_000)  # it stayed open over the dialog's title and first field
    box = field.bounding_box()
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('[role=dialog]') !== null",
                           [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert on_top, "something covers the dialog's first field"
    assert_healthy(page)


@pytest.mark.e2e
@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_registry_lineage_graph_draws_without_console_errors(lifecycle_server, browser, width, height):
    from playwright.sync_api import expect
    # Through the navigation, as a person gets there (a page's address opened directly: the next test).
    page = open_page(browser, lifecycle_server, width=width, height=height)
    status_line(page, "run 3: failed", 60)  # the dashboard is drawn and live
    if width >= 1000:  # wide: the top navigation's "Lab" menu lists the page; narrow: the collapsed sidebar does
        page.get_by_role("button", name="Lab").click()
    else:
        page.get_by_test_id("stExpandSidebarButton").click()
    # The navigation's own entry: the dashboard's "Model registry" heading has the same text.
    page.locator(NAV_LINKS).filter(has_text="Model registry").filter(visible=True).first.click()
    expect(page.get_by_role("heading", name="Lineage")).to_be_visible(timeout=60_000)
    if width < 1000:
        page.get_by_test_id("stSidebarCollapseButton").get_by_role("button").click()
    graph = page.frame_locator('iframe[title="streamlit_agraph.agraph"]').locator("canvas")
    expect(graph).to_be_visible(timeout=60_000)  # vis-network drew into its canvas
    detail = page.get_by_text("Trained by run 1")
    expect(detail).to_be_visible(timeout=30_000)  # the champion, detailed
    # Wide, the details sit beside the graph (it used about 300 px of the page, the rest left blank); on a
    # phone, under it.
    frame, text = page.locator('iframe[title="streamlit_agraph.agraph"]').bounding_box(), detail.bounding_box()
    if width >= 1000:
        assert text["x"] >= frame["x"] + frame["width"] and text["y"] < frame["y"] + frame["height"], (frame, text)
    else:
        assert text["y"] >= frame["y"] + frame["height"], (frame, text)
    assert_healthy(page)


@pytest.mark.e2e
def test_a_pages_address_opened_directly_draws_it_with_no_404(server, browser):
    """Opened cold at /drift, Streamlit's frontend asked /drift/_stcore/health and /drift/_stcore/host-config
    before the root's: two 404s in the console on every page but the dashboard (api/page_root.py)."""
    from playwright.sync_api import expect
    page = open_page(browser, f"{server}drift")
    expect(page.get_by_role("heading", name="Drift and scoring")).to_be_visible(timeout=60_000)
    assert page.url == f"{server}drift" and page.refused == []
    assert_healthy(page)


@pytest.fixture(scope="module")
def lineage_server(tmp_path_factory, mlflow_template):
    """tests/e2e/lineage_page.py served by Streamlit: the lineage graph over synthetic versions."""
    import signal

    from tests.conftest import free_port, kill_group, python_module, wait_serving
    tmp = tmp_path_factory.mktemp("lineage")
    port, log = free_port(), tmp / "streamlit.log"
    env = cli_env(make_settings(tmp / "lab", None, mlflow_template))
    proc = python_module("streamlit", ["run", str(ROOT / "tests" / "e2e" / "lineage_page.py"), "--server.port",
                                       str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                         env, log)
    try:
        wait_serving(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        kill_group(proc, signal.SIGTERM, timeout=15)


MIN_DRAWN_PX, MIN_ROW_PX = 300, 70  # the lineage graph's readable size (see the test below)


def drawn_box(png: bytes) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of what is drawn (not white) in a screenshot."""
    import io

    from PIL import Image, ImageChops
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()


@pytest.mark.e2e
@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
@pytest.mark.parametrize("count", [2, 7, 20])
def test_the_lineage_graph_is_drawn_at_a_readable_size_whatever_the_versions_and_the_width(
        lineage_server, browser, count, width, height, tmp_path):
    from playwright.sync_api import expect

    from ui import lineage
    page = open_page(browser, f"{lineage_server}?versions={count}", width=width, height=height)
    frame = page.locator('iframe[title="streamlit_agraph.agraph"]')
    canvas = page.frame_locator('iframe[title="streamlit_agraph.agraph"]').locator("canvas")
    expect(canvas).to_be_visible(timeout=60_000)
    expect(page.get_by_text("picked")).to_be_visible(timeout=60_000)
    # The whole drawing, measured: the layout depends on the width only, so a taller window shows all of it.
    page.set_viewport_size({"width": width, "height": 4000})
    frame.scroll_into_view_if_needed()
    wait_until(lambda: drawn_box(frame.screenshot()) is not None, timeout=60, what="the graph to be drawn")
    left, top, right, bottom = drawn_box(frame.screenshot(path=tmp_path / f"lineage-{count}-{width}.png"))
    # Two columns of boxes with 15 px labels (run or alias, then version) need about 370 px; vis-network shrinks
    # a drawing to fit its frame, and below 300 px wide the labels fall under 12 px. Each version's row needs
    # its box (four lines or more): under 70 px a row, boxes and labels run into each other. Two versions used
    # to be drawn 262 px wide; seven on a phone were shrunk further, their edge labels piled up.
    rows = min(count, lineage.NEWEST)
    assert right - left >= MIN_DRAWN_PX and (bottom - top) / rows >= MIN_ROW_PX, (right - left, bottom - top)
    box = frame.bounding_box()  # and nothing cut off at the frame's edges (edge labels were, on the right)
    assert left > 2 and top > 2 and right < box["width"] - 3 and bottom < box["height"] - 3, \
        ((left, top, right, bottom), box)
    assert frame.bounding_box()["width"] <= width  # the page never scrolls sideways
    assert_healthy(page)


@pytest.mark.e2e
@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_pages_title_starts_just_below_the_top_bar(server, browser, width, height):
    from playwright.sync_api import expect
    page = open_page(browser, server, width=width, height=height)
    title = page.get_by_role("heading", name="Claim ML CI/CD Lab")
    expect(title).to_be_visible(timeout=60_000)
    bar = page.get_by_test_id("stHeader").bounding_box()
    gap = title.bounding_box()["y"] - (bar["y"] + bar["height"])
    assert 0 <= gap <= 32, f"{gap:.0f} px of blank above the title"  # it was about 100 px
    assert_healthy(page)

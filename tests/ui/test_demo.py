"""Demo autopilot page: play, narration, stop, and links to the runs it made."""
from __future__ import annotations

from engine import autopilot
from tests.conftest import wait_until
from tests.ui.conftest import open_page, texts


def _button(at, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def _links(at) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def test_empty_lab_offers_play_only(empty_lab):
    at = open_page("demo")
    assert not at.exception
    assert "Nothing played yet" in texts(at)
    assert not _button(at, "Play").disabled and _button(at, "Stop").disabled


def test_play_narrates_and_stop_ends_it(empty_lab, started_labs):
    at = open_page("demo")
    _button(at, "Play").click().run()
    assert not at.exception
    lab = started_labs[0]
    session = autopilot.latest_session(lab)
    assert autopilot.is_active(session) and "Playing the lifecycle" in texts(at)
    assert _button(at, "Play").disabled and not _button(at, "Stop").disabled
    wait_until(lambda: autopilot.session_runs(lab, session["id"]), what="the autopilot's first run")

    _button(at, "Stop").click().run()
    wait_until(lambda: autopilot.latest_session(lab)["outcome"] == "stopped", what="the autopilot to stop")
    at.run()
    text = texts(at)
    assert "Stopped on request" in text and "**stopped**" in text
    run_id = autopilot.session_runs(lab, session["id"])[0]
    assert f"Open run {run_id} in the dashboard" in _links(at)
    assert not _button(at, "Play").disabled


def test_a_played_lifecycle_shows_its_narration_and_runs(lifecycle_lab):
    at = open_page("demo")
    assert not at.exception
    text = texts(at)
    assert "Lifecycle complete" in text and "**done**" in text
    assert {"Open run 1 in the dashboard", "Open run 2 in the dashboard"} <= set(_links(at))

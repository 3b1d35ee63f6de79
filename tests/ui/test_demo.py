"""Demo autopilot page: play, narration, stop, and links to the runs it made."""
from __future__ import annotations

import pytest

from engine import autopilot
from engine.guard import OPERATOR_TRIES
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


def test_play_asks_the_autopilot_for_its_retrain_on_production_data_act(empty_lab, monkeypatch):
    # The page played without it (retrain defaults to False): the act ran only in the closed-loop tests.
    played = []

    class Recorded(autopilot.Autopilot):
        def start(self) -> int:
            played.append(self)
            return 1

    monkeypatch.setattr(autopilot, "Autopilot", Recorded)
    at = open_page("demo")
    _button(at, "Play").click().run()
    assert not at.exception and [pilot.retrain for pilot in played] == [True]
    assert "retrains on production data" in texts(at).replace("**", "")


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


def _reset(at, **fields):
    for key, value in fields.items():
        at.text_input(key=key).input(value)
    return _button(at, "Reset the lab").click().run()


def _enter_key(at, key: str):
    at.text_input(key="demo_operator_key").input(key)
    return _button(at, "Enter operator mode").click().run()


KEY = "test-operator-key"


@pytest.fixture
def public_demo(monkeypatch):
    """The app runs as the public demo, with an operator key set on the server."""
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_OPERATOR_KEY", KEY)


def test_demo_reset_needs_operator_mode_which_refuses_a_wrong_key(seeded_dir, make_lab, public_demo):
    _, runs = seeded_dir
    at = open_page("demo")
    assert "needs the operator key" in texts(at) and not [b for b in at.button if b.label == "Reset the lab"]
    _enter_key(at, "not-the-key")
    assert not at.exception
    assert any("that is not the operator key, so nothing changed" in e.value for e in at.error)
    assert sorted(r.id for r in make_lab().runs()) == sorted(runs.values())  # nothing changed

    _enter_key(at, KEY)
    assert not at.exception and not at.error
    assert "Operator mode is on for this browser session" in texts(at)
    _reset(at, demo_reset_confirm="reset")
    assert not at.exception and not at.error
    assert make_lab().runs() == []
    assert f"Removed: {len(runs)} runs" in texts(at)
    assert [(a.action, a.actor) for a in make_lab().audit()] == [("reset", "operator")]


def test_operator_key_guesses_are_limited_on_the_page_too(data_dir, public_demo):
    at = open_page("demo")
    for n in range(OPERATOR_TRIES):
        _enter_key(at, f"guess-{n}")
    _enter_key(at, KEY)  # the right key, after five wrong ones within the minute
    assert not at.exception
    assert any("too many wrong operator keys: this demo allows 5 a minute per visitor" in e.value for e in at.error)
    assert "Operator mode is on" not in texts(at)


def test_demo_operator_mode_without_a_key_on_the_server_is_disabled_and_says_how_to_enable_it(data_dir, monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.delenv("LAB_OPERATOR_KEY", raising=False)
    at = open_page("demo")
    assert not at.exception
    assert "operator's controls are disabled on this deployment" in texts(at) and "LAB_OPERATOR_KEY" in texts(at)
    assert not [b for b in at.button if b.label in ("Reset the lab", "Enter operator mode")]


def test_in_the_demo_a_visitor_cannot_stop_someone_elses_autopilot(data_dir, make_lab, public_demo):
    lab = make_lab()
    theirs = autopilot.Autopilot(lab, visitor="ip:someone-else")
    theirs.open()  # playing (fresh heartbeat), no thread: nothing moves while the page looks
    at = open_page("demo")
    stop = _button(at, "Stop")
    assert stop.disabled and "Another visitor started this session" in stop.help
    _enter_key(at, KEY)
    _button(at, "Stop").click().run()
    assert not at.exception and not at.error
    assert f"Asked demo session {theirs.session} to stop: it turns off the live stream if it started it" in texts(at)
    assert autopilot.latest_session(lab)["stop_requested"] is True


def test_outside_demo_mode_the_reset_needs_the_typed_word_and_a_name(seeded_dir, make_lab, monkeypatch):
    _, runs = seeded_dir
    monkeypatch.delenv("LAB_DEMO", raising=False)
    at = open_page("demo")
    _reset(at, demo_reset_by="Dana", demo_reset_confirm="yes")
    assert any("Type the word reset" in e.value for e in at.error)
    _reset(at, demo_reset_by="", demo_reset_confirm="reset")
    assert any("needs the name of who does it" in e.value for e in at.error)
    assert len(make_lab().runs()) == len(runs)  # both refusals changed nothing

    _reset(at, demo_reset_by="Dana", demo_reset_confirm="reset")
    assert not at.exception and not at.error
    assert make_lab().runs() == [] and f"Removed: {len(runs)} runs" in texts(at)

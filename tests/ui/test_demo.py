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


def _reset(at, **fields):
    for key, value in fields.items():
        at.text_input(key=key).input(value)
    return _button(at, "Reset the lab").click().run()


def test_demo_reset_refuses_a_wrong_operator_key_and_resets_with_the_right_one(seeded_dir, make_lab, monkeypatch):
    _, runs = seeded_dir
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_OPERATOR_KEY", "test-operator-key")
    at = open_page("demo")
    _reset(at, demo_reset_key="not-the-key")
    assert not at.exception
    assert any("not the operator key: nothing was reset" in e.value for e in at.error)
    assert sorted(r["id"] for r in make_lab().runs()) == sorted(runs.values())  # nothing changed

    _reset(at, demo_reset_key="test-operator-key")
    assert not at.exception and not at.error
    assert make_lab().runs() == []
    assert f"Removed: {len(runs)} runs" in texts(at)
    assert [(a["action"], a["actor"]) for a in make_lab().audit()] == [("reset", "operator")]


def test_demo_reset_without_an_operator_key_is_disabled_and_says_how_to_enable_it(data_dir, monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.delenv("LAB_OPERATOR_KEY", raising=False)
    at = open_page("demo")
    assert not at.exception
    assert "reset is disabled on this deployment" in texts(at) and "LAB_OPERATOR_KEY" in texts(at)
    assert not [b for b in at.button if b.label == "Reset the lab"]


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

"""The demo autopilot drives a real Lab through the lifecycle, narrates it, fails cleanly and stops on request."""
from __future__ import annotations

import pytest

from engine import Refused
from engine.autopilot import Autopilot, active_session, is_active, latest_session, narration, request_stop, session_runs
from engine.lab import Lab
from tests.conftest import make_settings, wait_until


def _messages(lab, session) -> str:
    return "\n".join(line["message"] for line in narration(lab, session))


@pytest.fixture
def ticking_lab(tmp_path, mlflow_template):
    """A Lab over SQLite in tmp_path with its runner ticking (the autopilot waits on it like the app does)."""
    lab = Lab(make_settings(tmp_path, None, mlflow_template)).start()
    yield lab
    lab.close()


@pytest.fixture
def played(played_lifecycle, lifecycle_copy):
    """A Lab over a copy of the session's played lifecycle (tests/conftest.py); its runner is not started."""
    lab = Lab(lifecycle_copy(played_lifecycle))
    yield lab
    lab.close()


def test_plays_the_whole_lifecycle_and_leaves_an_ordinary_history(played):
    lab = played
    session = latest_session(lab)
    assert session["outcome"] == "done" and not is_active(session), _messages(lab, session["id"])

    first, second = session_runs(lab, session["id"])
    assert [lab.run(r)["status"] for r in (first, second)] == ["promoted", "promoted"]
    history = lab.champion_history()
    assert [(h["action"], h["moved_by"]) for h in history][-1] == ("rollback", "demo")
    assert history[-1]["version"] == history[0]["version"]
    actions = {(a["actor"], a["action"].split(":")[0]) for a in lab.audit()}  # alias moves are "action:alias"
    assert {("demo", "commit"), ("demo", "continue"), ("demo", "approve"), ("demo", "rollback")} <= actions
    text = _messages(lab, session["id"])
    assert "Quick train succeeded" in text and "Rolled production back" in text
    closing = narration(lab, session["id"])[-1]["message"]  # it claims a drift alarm only when it saw one
    assert closing.startswith("Lifecycle complete")
    assert ("Drift is major" in text) == ("a drift alarm" in closing) == ("no alarm yet" not in closing), closing


def test_the_drift_act_reports_no_alarm_when_no_producer_streams(played):
    # It used to end "... and a drift alarm" even after saying "No major drift yet" (a saturated demo server).
    # Here nothing produces claims (the lab's runner is not started), so no alarm can be seen.
    assert Autopilot(played, poll=0.1)._show_drift() is False


def test_a_failing_run_is_narrated_and_the_demo_stops_cleanly(ticking_lab):
    lab = ticking_lab
    lab.set_failure_mode("schema_validation", True, by="test")
    pilot = Autopilot(lab, seeds=(3, 4), poll=0.1)
    assert pilot.run() == "failed"
    (run_id,) = session_runs(lab, pilot.session)
    assert lab.run(run_id)["status"] == "failed"
    text = _messages(lab, pilot.session)
    assert "Failure modes are on" in text
    assert f"Run {run_id} ended failed at Data validation" in text and "diagnosis_group" in text
    assert latest_session(lab)["outcome"] == "failed"


def test_stop_from_another_lab_ends_it_promptly(lab, settings):
    # No runner ticks here, so the run waits in queued and the autopilot waits on it until stopped.
    pilot = Autopilot(lab, poll=0.05)
    session = pilot.start()
    wait_until(lambda: session_runs(lab, session), what="the autopilot's first commit")
    assert active_session(lab)["id"] == session

    other = Lab(settings)  # stands for another process sharing the database
    try:
        assert request_stop(other) == 1
        # It would wait 900 s for the run if it read the flag only between actions: it reads it while waiting.
        pilot.join(timeout=120)
        assert not pilot.running
    finally:
        other.store.dispose()
    assert pilot.outcome == "stopped" and latest_session(lab)["outcome"] == "stopped"
    assert active_session(lab) is None
    assert "Stopped on request" in _messages(lab, session)


def test_a_session_is_never_seen_without_its_opening_line(lab):
    # Regression: the Play button reruns the page at once; the opening line used to come later, from the thread.
    lab.set_failure_mode("schema_validation", True, by="test")
    pilot = Autopilot(lab)
    session = pilot.open()  # no thread plays it
    assert [line["level"] for line in narration(lab, session)] == ["info", "warning"]
    assert "Playing the lifecycle as 'demo'" in _messages(lab, session)
    assert "Failure modes are on (" in _messages(lab, session)


def test_only_one_session_plays_at_a_time(lab):
    first = Autopilot(lab)
    first.open()
    with pytest.raises(Refused, match="already playing"):
        Autopilot(lab).open()
    request_stop(lab, first.session)
    first.run()  # sees the stop flag before doing anything
    assert first.outcome == "stopped"
    assert Autopilot(lab).open()


def test_without_a_worker_it_times_out_and_says_why(lab):
    pilot = Autopilot(lab, poll=0.05, wait_timeout=0.3)
    assert pilot.run() == "failed"
    assert "is a worker running" in _messages(lab, pilot.session)

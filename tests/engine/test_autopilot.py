"""The demo autopilot drives a real Lab through the lifecycle, narrates it, fails cleanly and stops on request."""
from __future__ import annotations

from dataclasses import replace

import pytest

from engine import Refused
from engine.autopilot import (
    Autopilot,
    active_session,
    closing,
    is_active,
    latest_session,
    narration,
    prune_sessions,
    request_stop,
    session_runs,
    stop_session,
)
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
    assert [lab.run(r).status for r in (first, second)] == ["promoted", "promoted"]
    history = lab.champion_history()
    assert [(h["action"], h["moved_by"]) for h in history][-1] == ("rollback", "demo")
    assert history[-1]["version"] == history[0]["version"]
    actions = {(a.actor, a.action.split(":")[0]) for a in lab.audit()}  # alias moves are "action:alias"
    assert {("demo", "commit"), ("demo", "continue"), ("demo", "approve"), ("demo", "rollback")} <= actions
    text = _messages(lab, session["id"])
    assert "Quick train succeeded" in text and "Rolled production back" in text
    last = narration(lab, session["id"])[-1]["message"]  # it claims an alert only when it saw one
    assert last.startswith("Lifecycle complete")
    assert ("Performance alert (snapshot" in text) == ("caught by the performance alert" in last) \
        == ("no performance alert yet" not in last), last
    assert "concept_drift" in text and "retrain" not in last  # the played demo does not retrain (retrain=False)


def test_the_drift_act_reports_no_alarm_when_no_producer_streams(played):
    # It used to end "... and a drift alarm" even after saying "No major drift yet" (a saturated demo server).
    # Here nothing produces claims (the lab's runner is not started), so no alarm can be seen.
    seen = Autopilot(played, poll=0.1)._show_drift()
    assert seen["alert"] is None and seen["retrain"] is None and seen["cost"] is None
    assert "no performance alert yet" in closing(seen) and "caught" not in closing(seen)


def test_the_last_line_says_what_the_drift_act_really_saw():
    quiet = {"alert": None, "max_psi": 0.02, "retrain": None, "cost": None}
    assert closing(quiet) == ("Lifecycle complete: two promotions, live traffic and a rollback and a concept-drift "
                              "watch with no performance alert yet (max input PSI 0.020); all in the run history, "
                              "the registry, the stream's snapshots and the audit trail.")
    full = {"alert": {"id": 7}, "max_psi": 0.031, "retrain": 5, "cost": (0.6007, 0.2433)}
    said = closing(full)
    assert "concept drift caught by the performance alert on arriving labels while max input PSI 0.031" in said
    assert "a retrain on production claims (run 5) judged and promoted on production claims" in said
    assert "cost per claim 0.601 before and 0.243 after its promotion" in said
    assert "retrain" not in closing({**full, "retrain": None, "cost": None})


def test_with_retrain_the_drift_act_takes_the_closed_loops_retrain_to_production(played_lifecycle, lifecycle_copy):
    """The act the Demo page plays (retrain=True) and the played lifecycle leaves out: after the performance alert,
    the closed loop's retrain on production claims goes through its gate, approval and promotion, and cost per
    claim is compared on the drifted claims."""
    lab = Lab(lifecycle_copy(played_lifecycle)).start()  # its runner produces the stream and runs the steps
    try:
        pilot = Autopilot(lab, poll=0.1, retrain=True)
        pilot.open()
        champion = lab.alias_version("champion")
        lab.stream.start(rate=20, scenario="none", by="test")  # the production traffic the act follows
        wait_until(lambda: lab.stream.status()["producer"]["alive"], what="the stream's producer")
        seen = pilot._show_drift()
        assert seen["alert"] is not None and seen["retrain"] is not None, _messages(lab, pilot.session)
        run = lab.run(seen["retrain"])
        assert (run.status, run.trigger) == ("promoted", "drift") and "production" in run.origin
        assert lab.alias_version("champion") == run.outputs_of("promote_prod")["version"] != champion
        assert seen["cost"] is not None and all(c >= 0 for c in seen["cost"])
        text = _messages(lab, pilot.session)
        assert f"The closed loop committed run {run.id}" in text and "Cost per claim on the drifted claims" in text
        assert f"a retrain on production claims (run {run.id}) judged and promoted" in closing(seen)
        state = lab.stream.state()
        assert not state["enabled"] and not state["closed_loop"]  # it stops the stream; the loop was off before
    finally:
        lab.close()


def test_a_failing_run_is_narrated_and_the_demo_stops_cleanly(ticking_lab):
    lab = ticking_lab
    lab.set_failure_mode("schema_validation", True, by="test")
    pilot = Autopilot(lab, seeds=(3, 4), poll=0.1)
    assert pilot.run() == "failed"
    (run_id,) = session_runs(lab, pilot.session)
    assert lab.run(run_id).status == "failed"
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


# ---- the public demo's guard ----------------------------------------------------------------------------------
KEY = "the-operator-key"


@pytest.fixture
def started_played(played_lifecycle, lifecycle_copy):
    """A Lab over a copy of the played lifecycle with its runner started: the stream's producer answers at once."""
    lab = Lab(lifecycle_copy(played_lifecycle)).start()
    yield lab
    lab.close()


def _stopped_after_the_stream_started(lab) -> Autopilot:
    pilot = Autopilot(lab, poll=0.05)
    pilot.open()
    pilot._start_stream()  # the act that turns production traffic on
    assert lab.stream.state()["enabled"]
    request_stop(lab, pilot.session)
    assert pilot.run() == "stopped"
    return pilot


def test_stop_turns_off_the_stream_the_autopilot_started_and_says_so(started_played):
    # Stop used to end the narration and leave the stream running, with nothing on the page saying so.
    pilot = _stopped_after_the_stream_started(started_played)
    assert started_played.stream.state()["enabled"] is False
    assert "It turned off the live stream it had started." in _messages(started_played, pilot.session)
    assert ("stream_stop", "demo") in {(a.action, a.actor) for a in started_played.audit()}


def test_stop_leaves_on_a_stream_that_was_on_before_the_autopilot(started_played):
    started_played.stream.start(rate=5, by="operator")
    pilot = _stopped_after_the_stream_started(started_played)
    assert started_played.stream.state()["enabled"] is True
    assert "It left the live stream on: it was on before the demo started." in _messages(started_played,
                                                                                         pilot.session)


def test_in_the_demo_a_visitor_stops_only_the_autopilot_they_started(settings):
    lab = Lab(replace(settings, demo=True, operator_key=KEY))
    try:
        mine = Autopilot(lab, visitor="ip:a")
        mine.open()
        with pytest.raises(Refused, match="stopping an autopilot another visitor started changes the lab for every "
                                          "visitor, so it needs the operator key"):
            stop_session(lab, mine.session, visitor="ip:b")
        assert latest_session(lab)["stop_requested"] is False
        assert stop_session(lab, mine.session, visitor="ip:a").startswith(f"Asked demo session {mine.session} to "
                                                                         "stop: it turns off the live stream")
        assert mine.run() == "stopped"
        with pytest.raises(Refused, match="one autopilot start every 30 s per visitor"):
            Autopilot(lab, visitor="ip:a").open()  # Play is paced per visitor like a commit
        theirs = Autopilot(lab, visitor="ip:c")
        theirs.open()
        stop_session(lab, theirs.session, visitor="ip:b", operator_key=KEY)  # the operator may stop anyone's
        assert latest_session(lab)["stop_requested"] is True
        with pytest.raises(Refused, match=f"demo session {mine.session} is not playing"):
            stop_session(lab, mine.session, visitor="ip:a")
    finally:
        lab.close()


def test_the_autopilot_meets_the_demos_cap_on_active_runs(settings):
    lab = Lab(replace(settings, demo=True, demo_max_active_runs=1))
    try:
        pilot = Autopilot(lab, poll=0.05)
        pilot.open()  # room for its first commit now...
        lab.commit()  # ...taken by someone else before it commits
        assert pilot.run() == "failed"
        assert "The lab refused the autopilot's next action: this demo runs at most 1 queued or running pipeline " \
               "runs at once" in _messages(lab, pilot.session)
        with pytest.raises(Refused, match="at most 1 queued or running"):
            Autopilot(lab).open()  # refused at Play, before a session exists
        assert latest_session(lab)["id"] == pilot.session
    finally:
        lab.close()


def test_retention_keeps_the_newest_finished_sessions_with_their_narration(lab):
    for _ in range(3):
        pilot = Autopilot(lab)
        pilot.open()
        request_stop(lab, pilot.session)
        pilot.run()
    playing = Autopilot(lab)
    playing.open()
    assert prune_sessions(lab, keep=1) == 3  # the one still playing is never pruned
    assert narration(lab, pilot.session) == [] and narration(lab, playing.session) != []


"""The header's actions and dialogs in AppTest, in each run status the stores below reach: every button is
enabled exactly when the lab allows the action (its help says why not), the phone row offers the same actions,
each allowed action's dialog opens and does what it says, and the MLflow button never links to a dead address.
"""
from __future__ import annotations

import pytest

from engine.config import LIMITS
from engine.failures import MODES
from tests.conftest import make_run, wait_until
from tests.ui.conftest import APP, WAITING, arrive, errors_besides_the_drift_alert, step_picker
from ui import common, dialogs, header, icons

ACTIONS = [name for name, _, _ in header.ACTIONS]


def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success", "toast")
                     for e in getattr(at, kind))


def _labelled(elements, label: str):
    return next(e for e in elements if e.label == label)


def _check_buttons(app, lab, run) -> None:
    app.session_state[header.MENU_KEY] = True  # the phone menu open, so its entries are drawn
    app.run()
    allowed = {**lab.allowed_actions(run), "commit": None}
    allowed["rollback"] = allowed["rollback"] and common.rollback_blocked(lab)  # said truly after a rollback
    primary = header.NEXT_ACTION.get(run.status) if run else None
    primary = primary if primary and allowed[primary] is None else "commit"
    for name in ACTIONS:
        wide = app.button(key=f"act_{name}")
        assert wide.disabled == (allowed[name] is not None), name
        assert wide.help == (allowed[name] or dialogs.HELP[name]), name
        assert (wide.proto.type == "primary") == (name == primary), name
        phone = app.button(key=f"phone_{name}")  # the phone row: the primary action, the rest in the menu
        assert (phone.disabled, phone.help) == (wide.disabled, wide.help), name


@pytest.mark.parametrize("store", ["data_dir", "seeded_dir", "awaiting_dir"])
def test_every_action_is_enabled_exactly_when_the_lab_allows_it(app, make_lab, store, request):
    request.getfixturevalue(store)
    lab = make_lab()
    for run_id in [None, *sorted(r.id for r in lab.runs())]:  # every run the store holds, in each status
        if run_id is None:
            app.run()
        else:
            arrive(app, "pages/dashboard.py", run=str(run_id))
        assert not app.exception
        latest = lab.runs(1)
        shown = run_id if run_id is not None else (latest[0].id if latest else None)  # the default: newest
        _check_buttons(app, lab, lab.run(shown) if shown else None)


def test_retry_from_the_phone_menu_requeues_the_failed_step_and_focuses_it(app, seeded_dir, make_lab):
    _, runs = seeded_dir
    app.query_params["run"] = str(runs["failed"])
    app.run()
    app.button(key="phone_retry").click().run()  # same dialog as the wide row's button
    assert _labelled(app.selectbox, "Retry from").value == "data_validation"
    _labelled(app.button, f"Retry run {runs['failed']}").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert make_lab().run(runs["failed"]).status == "queued"
    assert [(t.value, t.icon) for t in app.toast] == [(f"Run {runs['failed']} retrying from data_validation",
                                                       icons.RETRY)]
    assert step_picker(app).value == "data_validation"  # the requeued step is followed
    assert f"**run {runs['failed']}: queued**" in _texts(app)


def test_reject_dialog_puts_the_form_first_and_draws_the_rejection_as_rejected(app, awaiting_dir, make_lab):
    app.query_params["run"] = str(WAITING)
    app.run()
    app.button(key="act_reject").click().run()
    assert not app.exception
    assert "Gate verdict: **PASS**" in _texts(app)  # the evidence is in the dialog, below the form
    _labelled(app.text_input, "Reviewer (required)").input("Dana")
    _labelled(app.text_area, "Comment").input("false denials too high")
    _labelled(app.button, f"Reject run {WAITING}").click().run()
    lab = make_lab()
    assert not app.exception and errors_besides_the_drift_alert(app, lab) == []
    assert lab.run(WAITING).status == "rejected"
    assert step_picker(app).value == "manual_approval"
    assert "`rejected`" in _texts(app)  # the inspector's status, not "failed"
    assert "manual_approval rejected:" in [w.value.strip("*") for w in app.warning]
    assert not any("failed" in e.value for e in app.error)


def test_approve_dialog_shows_the_reviewer_form_and_the_evidence(app, awaiting_dir, make_lab):
    app.query_params["run"] = str(WAITING)
    app.run()
    app.button(key="act_approve").click().run()
    assert not app.exception
    assert _labelled(app.text_input, "Reviewer (required)").value == ""  # the form first (absent: StopIteration)
    assert "Gate verdict: **PASS**" in _texts(app)
    # The check against champion v1 reads as a sentence, not "ROC-AUC change vs champion is -0.0040".
    gate = make_lab().run(WAITING).outputs_of("evaluate_vs_champion")["gate"]
    auc = next(c["value"] for c in gate["checks"] if c["name"] == "ROC-AUC change vs champion")
    said = f"ROC-AUC {'rose' if auc > 0 else 'fell'} by {abs(auc):.4f} vs champion;"
    assert any(m.value.startswith(f"{icons.DONE} {said}") for m in app.markdown), said
    _labelled(app.text_input, "Reviewer (required)").input("Dana")
    _labelled(app.button, f"Approve run {WAITING}").click().run()
    lab = make_lab()
    assert not app.exception and errors_besides_the_drift_alert(app, lab) == []
    assert lab.run(WAITING).status == "queued"


def test_mlflow_button_shows_the_command_for_the_embedded_store(app, data_dir):
    app.run()
    assert not app.link_button  # nothing to link to: no MLflow server runs
    command = next(c.value for c in app.code if c.value.startswith("mlflow ui"))
    assert f"--backend-store-uri sqlite:///{data_dir / 'mlflow.db'}" in command
    assert f"--default-artifact-root {(data_dir / 'mlartifacts').as_uri()}" in command


def test_mlflow_button_links_to_a_configured_tracking_server(app, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens: the page still loads
    monkeypatch.setenv("MLFLOW_UI_URL", "http://mlflow.example:5000")
    app.run()
    assert not app.exception
    assert [(b.label, b.url) for b in app.link_button] == [("MLflow UI", "http://mlflow.example:5000")]



def test_an_interrupted_run_offers_retry_first_and_retries_the_interrupted_step(app, make_lab):
    import sqlalchemy as sa

    from engine import store as S
    lab = make_lab()
    run_id = lab.commit(message="the worker dies", author="test")
    step = lab.store.claim_step("worker-that-dies")  # commit_received starts on a worker...
    stale = S.timestamp() - lab.settings.stale_seconds - 60  # ...whose last heartbeat is past the stale window
    with lab.store.tx() as c:
        c.execute(sa.update(S.steps).where(S.steps.c.id == step.id).values(heartbeat_at=stale))
    assert lab.runner.reap_stale() == 1 and lab.run(run_id).status == "interrupted"
    app.run()
    assert not app.exception
    _check_buttons(app, lab, lab.run(run_id))
    assert app.button(key="act_retry").proto.type == "primary"
    assert step_picker(app).value == "commit_received"  # the interrupted step is shown
    app.button(key="act_retry").click().run()
    _labelled(app.button, f"Retry run {run_id}").click().run()
    assert not app.exception and not app.error
    assert lab.run(run_id).status == "queued" and lab.store.step(run_id, "commit_received").status == "queued"


def test_a_rolled_back_promotion_is_marked_in_the_header_and_on_its_promote_step(lifecycle_lab):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    at = AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=90)
    at.query_params.update(run="2", step="promote_prod", tab="Outputs")  # run 2's v2 was rolled back to v1
    at.run()
    assert not at.exception
    text = _texts(at)
    assert "**run 2: promoted, then rolled back**" in text
    assert "This run's model is no longer champion: rolled back by demo at" in text
    assert "`rolled_back`" in text and "This promotion was undone" in text
    assert at.selectbox(key="run_pick").value == 2
    picker = {o.split(" · ")[0]: o.split(" · ")[1] for o in at.selectbox(key="run_pick").options}
    assert picker == {"run 3": "failed", "run 2": "promoted, rolled back", "run 1": "promoted"}
    assert "A rollback took this model out of production; @champion serves version 1." in text
    assert "(or was)" not in text
    arrive(at, "pages/dashboard.py", run="1", step="promote_prod")  # run 1's v1 is champion again: nothing to mark
    assert "rolled back" not in _texts(at).replace("Rollback", "").replace("promoted, rolled back", "")
    assert "This model is the champion. Rollback needs an earlier champion" in _texts(at)


def test_a_picker_label_the_browser_kept_from_an_earlier_status_keeps_the_run_without_a_warning(
        app, seeded_dir, make_lab, monkeypatch):
    # The browser sends the picked option's label. When the run's status changed since it drew the picker, that
    # label matches none of the options drawn last, and Streamlit hands the label itself back instead of the run.
    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.testing.v1.element_tree import Selectbox
    _, runs = seeded_dir
    app.query_params["run"] = str(runs["ok"])
    app.run()
    kept = app.selectbox(key="run_pick").options[1]  # what the browser shows: "run 1 · ci_complete · ..."
    assert kept.startswith(f"run {runs['ok']} · ci_complete")
    make_lab().continue_run(runs["ok"], by="someone else")  # queued now: the next page run labels it in progress
    app.run()
    drawn = Selectbox._widget_state.fget
    monkeypatch.setattr(Selectbox, "_widget_state", property(
        lambda sb: WidgetState(id=sb.id, string_value=kept) if sb.key == "run_pick" else drawn(sb)))
    app.run()
    assert not app.exception and not app.warning, [w.value for w in app.warning]
    assert app.selectbox(key="run_pick").value == runs["ok"]
    assert f"**run {runs['ok']}: queued**" in _texts(app)


def test_the_commit_dialog_says_what_a_bad_sha_is_in_the_forms_words_and_starts_nothing(app, make_lab):
    app.run()
    app.button(key="act_commit").click().run()
    _labelled(app.text_input, "Real commit SHA (optional)").input("not-a-sha")
    _labelled(app.button, "Start CI").click().run()
    said = " ".join(e.value for e in app.error)
    assert "**Real commit SHA** not\\-a\\-sha is not a git commit SHA" in said, said
    assert "--sha" not in said and "$(" not in said
    assert make_lab().runs() == []


def test_approving_without_a_reviewer_names_the_field_not_a_command_line_flag(app, awaiting_dir, make_lab):
    app.query_params["run"] = str(WAITING)
    app.run()
    app.button(key="act_approve").click().run()
    _labelled(app.button, f"Approve run {WAITING}").click().run()
    said = " ".join(e.value for e in app.error)
    assert "Fill in **Reviewer**" in said and "--by" not in said and "pass" not in said
    assert make_lab().run(WAITING).status == "awaiting_approval"


def _fake_commit(app, message: str) -> None:
    app.button(key="act_commit").click().run()
    _labelled(app.text_input, "Commit message").input(message)
    _labelled(app.button, "Start CI").click().run()


def test_the_commit_message_input_cannot_exceed_what_the_lab_accepts(app):
    app.run()
    app.button(key="act_commit").click().run()
    assert _labelled(app.text_input, "Commit message").proto.max_chars == LIMITS["message"]


def test_a_second_commit_within_the_demo_pacing_interval_is_refused_saying_the_limit(app, make_lab, monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_DEMO_COMMIT_INTERVAL", "600")  # far longer than the test: the second commit is early
    app.run()
    _fake_commit(app, "first")
    assert not app.exception and not app.error
    _fake_commit(app, "second, too soon")
    assert not app.exception
    assert any("one commit every 600 s per visitor" in e.value for e in app.error), _texts(app)
    assert [r.message for r in make_lab().runs()] == ["first"]  # the refused commit changed nothing


def test_a_reload_does_not_start_the_demo_pacing_over(app, make_lab, monkeypatch):
    # Pacing was per browser session, and a reload is a new session: a visitor could commit as fast as they reload.
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_DEMO_COMMIT_INTERVAL", "600")
    monkeypatch.setattr(type(st.context), "ip_address", property(lambda _self: "203.0.113.7"))  # one visitor
    app.run()
    _fake_commit(app, "first")
    reloaded = AppTest.from_file(APP, default_timeout=180).run()  # a new session from the same address
    _fake_commit(reloaded, "second, after a reload")
    assert not reloaded.exception
    assert any("one commit every 600 s per visitor" in e.value for e in reloaded.error), _texts(reloaded)
    assert [r.message for r in make_lab().runs()] == ["first"]


def test_in_the_demo_failure_modes_are_locked_until_the_operator_key_is_entered(app, make_lab, monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_OPERATOR_KEY", "the-key")
    app.session_state[header.MODES_KEY] = True  # the person opened the popover
    app.run()
    toggle = app.toggle(key="fm_training_error")
    assert toggle.disabled and "needs the operator key (Demo autopilot page, Operator)" in toggle.help
    assert "Turning a failure mode on or off changes the lab for every visitor" in _texts(app)
    app.session_state[common.OPERATOR_KEY] = "the-key"  # what the Demo page keeps once the lab accepted it
    app.run()
    assert not app.toggle(key="fm_training_error").disabled
    app.toggle(key="fm_training_error").set_value(True).run()
    assert not app.exception and not app.error
    assert make_lab().store.failure_modes() == {"training_error": True}


def test_the_header_says_how_many_runners_are_alive(app, make_lab):
    app.run()
    assert f"{icons.WORKERS} No runner alive" in _texts(app)  # the page's process runs none: a worker does
    worker = make_lab().start()
    wait_until(lambda: any(w["alive"] for w in worker.workers()), what="the worker's heartbeat")
    app.run()
    assert f"{icons.WORKERS} 1 runner alive" in _texts(app)


def test_queued_to_running_keeps_the_header_and_its_picker_label():
    """A moving run's status line lives in the live panels; the header (actions, run picker) is redrawn, and the
    whole page with it, only when a status changes what it offers. Queued and running offer the same."""
    fields = dict(id=7, sha="abcdef1234", message="fix: round amounts")
    run, running, done = (make_run(status, **fields) for status in ("queued", "running", "ci_complete"))
    assert header.drawn_for(run) == header.drawn_for(running) == (7, "in progress")
    assert header.drawn_for(done) == (7, "ci_complete") and header.drawn_for(None) is None
    assert header.drawn_for(make_run("running", **{**fields, "id": 8})) != header.drawn_for(running)
    assert common.run_label(run) == common.run_label(running) == "run 7 · in progress · abcdef1 · fix: round amounts"
    assert common.run_label(done) == "run 7 · ci_complete · abcdef1 · fix: round amounts"


def test_an_action_chosen_in_the_phone_menu_closes_the_menu_before_its_dialog_opens(app, seeded_dir):
    _, runs = seeded_dir
    app.query_params["run"] = str(runs["failed"])  # Retry is the phone row's first button; Fake commit is in More
    app.run()
    app.session_state[header.MENU_KEY] = True  # the person opened the menu
    app.run()
    app.button(key="phone_commit").click().run()
    assert not app.exception
    assert app.session_state[header.MENU_KEY] is False  # drawn closed: it covered the dialog's title and first field
    assert _labelled(app.text_input, "Commit message").value == ""  # the dialog is open, its form empty


def test_closed_popovers_draw_nothing_inside_and_opening_one_draws_its_entries(app, seeded_dir):
    """Every full page run of a visitor watching a run costs the server what it draws: a closed menu's buttons and
    a closed popover's toggles were drawn (and sent) on every one of them. Opening either reruns the page."""
    _, runs = seeded_dir
    app.query_params["run"] = str(runs["failed"])  # Retry is the phone row's button; the rest are in More
    app.run()
    assert not app.exception
    keys = {w.key for w in [*app.toggle, *app.button]}
    assert not {k for k in keys if k.startswith(("fm_", "phone_"))} - {"phone_retry"}, sorted(keys)
    assert app.session_state[header.MODES_KEY] is False and app.session_state[header.MENU_KEY] is False
    app.session_state[header.MODES_KEY] = True  # the person opens Failure modes on the wide row
    app.run()
    assert {w.key for w in app.toggle if w.key.startswith("fm_")} == {f"fm_{m.name}" for m in MODES}
    app.session_state[header.MENU_KEY] = True  # and the phone menu
    app.run()
    phone = {b.key for b in app.button if b.key.startswith("phone_")}
    assert phone == {f"phone_{name}" for name, _, _ in header.ACTIONS}
    assert any(t.key.startswith("fm_phone_") for t in app.toggle)

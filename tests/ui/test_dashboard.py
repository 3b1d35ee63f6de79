"""AppTest tests of the dashboard: empty store, seeded store, actions and dialogs, refusals, URL selection, tabs,
the log console, failure modes, the CD/deploy renderers on a promoted run, and the DAG's drawing.

AppTest cannot click inside the DAG component, so steps are chosen with the inspector's selector (the same state a
DAG click sets), and it does not run the fragments' timers, so tests drive the runner and rerun.
"""
from __future__ import annotations

import base64
import re

import pytest

from engine import pipeline
from tests.conftest import make_run, make_step
from tests.ui.conftest import WAITING, arrive, errors_besides_the_drift_alert, step_picker, view_picker
from ui import dag, explorer, header

CI_STEPS = [s.name for s in pipeline.STEPS if s.stage == "CI"]
TABS = ("Code", "Config", "Logs", "Outputs")


def shown(at) -> str:
    """Every piece of text the page shows, joined, for 'is it on the page' checks."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "code", "text", "toast", "html"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def status_line(at) -> str:
    return next((m.value for m in at.markdown if m.value.startswith("**run ")), "")


def console(at) -> str:
    """The log console's HTML (the inspector's Logs view)."""
    return next(h.value for h in at.html if "lab-console" in h.value)


def console_messages(at) -> list[str]:
    """The message of every line the console shows, unescaped."""
    from html import unescape
    return [unescape(m) for m in re.findall(r'<span class="m">(.*?)</span></div>', console(at), flags=re.S)]


def labelled(elements, label: str):
    """The element of a list (at.button, at.text_input, ...) with this label."""
    return next(e for e in elements if e.label == label)


def button(at, label: str):
    return labelled(at.button, label)


def thresholds_caption(at) -> str:
    """The gate's line of each model's decision threshold."""
    return next(c.value for c in at.caption if c.value.startswith("Decision thresholds"))


def select(at, step: str, tab: str):
    step_picker(at).set_value(step)
    view_picker(at).set_value(tab)
    return at.run()


def test_empty_store_loads_and_says_what_to_click_first(app):
    app.run()
    assert not app.exception
    assert "No runs yet: click Fake commit" in shown(app)
    assert not app.button(key="act_commit").disabled
    for action in ("continue", "approve", "reject", "retry", "rollback"):
        assert app.button(key=f"act_{action}").disabled, action
    assert "no run is selected" in app.button(key="act_continue").help
    # Code and config are readable before any run exists.
    select(app, "ci_tests", "Code")
    assert "def run(ctx)" in shown(app)


def test_an_older_address_the_browser_sends_back_does_not_undo_a_pick(app, seeded_dir):
    # The browser sends its address with every rerun it asks for. A click made while the page's newer address was on
    # its way carries the older one: it is no link, and the pick (and the page's own address) stand.
    app.run()
    select(app, "ci_tests", "Config")
    assert (app.query_params["step"], app.query_params["tab"]) == ("ci_tests", "Config")
    app.query_params.update(step="commit_received", tab="Outputs")  # the address before the pick
    app.run()
    assert not app.exception
    assert (step_picker(app).value, view_picker(app).value) == ("ci_tests", "Config")
    assert (app.query_params["step"], app.query_params["tab"]) == ("ci_tests", "Config")
    # A link from another page still chooses.
    arrive(app, "pages/dashboard.py", run=str(seeded_dir[1]["ok"]), step="data_validation", tab="Logs")
    assert (step_picker(app).value, view_picker(app).value) == ("data_validation", "Logs")


def test_store_with_runs_opens_on_the_latest_run(app, seeded_dir, make_lab):
    _, runs = seeded_dir
    app.run()
    assert not app.exception
    assert status_line(app).startswith(f"**run {runs['failed']}: failed**")
    assert app.selectbox(key="run_pick").value == runs["failed"]
    # Nobody chose a step: the inspector follows the one that stopped the run, and shows its error.
    assert step_picker(app).value == "data_validation"
    assert "**data_validation failed:**" in [e.value for e in app.error]
    error = make_lab().run(runs["failed"]).steps[2].error
    assert error.startswith("data contract violated") and "diagnosis_group" in error
    assert error in [c.value for c in app.code]
    assert app.query_params["run"] == str(runs["failed"])


def test_the_dag_also_goes_out_as_a_plain_first_paint_of_the_same_picture(app, seeded_dir, make_lab):
    # The browser paints plain HTML with the page's first elements; the component comes later (ui/dag.py).
    _, runs = seeded_dir
    app.run()
    first = next(h.value for h in app.html if "lab-dag-first" in h.value)
    picture = base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', first).group(1)).decode()
    assert picture == dag.svg(make_lab().run(runs["failed"]), "data_validation")
    assert 'font-family="' in picture  # an image sees no page CSS: the SVG names its own font


def test_fake_commit_runs_ci_and_enables_continue(app, make_lab):
    app.run()
    app.button(key="act_commit").click().run()
    labelled(app.text_input, "Commit message").input("tune the forest")
    labelled(app.number_input, "Seed (optional)").set_value(5)
    button(app, "Start CI").click().run()
    assert not app.exception and not app.error
    lab = make_lab()
    [run] = lab.runs()
    assert (run.message, run.seed) == ("tune the forest", 5)
    assert status_line(app).startswith(f"**run {run.id}:")
    assert app.button(key="act_continue").disabled  # CI still to run

    lab.runner.run_until_idle()
    app.run()
    assert status_line(app).startswith(f"**run {run.id}: ci_complete**")
    assert not app.button(key="act_continue").disabled
    assert app.button(key="act_approve").disabled and "awaiting_approval" in app.button(key="act_approve").help

    app.button(key="act_continue").click().run()
    assert not app.exception and not app.error
    assert lab.run(run.id).status == "queued"
    assert status_line(app).startswith(f"**run {run.id}: queued**")


def test_a_failed_run_disables_continue_with_the_reason(app, seeded_dir):
    _, runs = seeded_dir
    app.run()
    cont = app.button(key="act_continue")
    assert cont.disabled
    assert cont.help == f"Continue to CD needs a run in ci_complete; run {runs['failed']} is failed"
    assert not app.button(key="act_retry").disabled
    assert app.button(key="act_rollback").help.startswith("there is no champion yet")


def test_a_refused_action_shows_its_message_and_changes_nothing(app, seeded_dir, make_lab):
    _, runs = seeded_dir
    app.run()
    app.button(key="act_retry").click().run()
    assert labelled(app.selectbox, "Retry from").value == "data_validation"  # the step that stopped the run
    lab = make_lab()
    lab.retry(runs["failed"], by="someone else")  # the run moves while the dialog is open
    button(app, f"Retry run {runs['failed']}").click().run()
    assert not app.exception
    assert any("Retry is for failed, held or interrupted runs" in e.value for e in app.error)
    assert [a.action for a in lab.audit(run_id=runs["failed"])].count("retry") == 1


def test_query_params_restore_run_step_and_tab(app, seeded_dir):
    _, runs = seeded_dir
    app.query_params.update(run=str(runs["ok"]), step="ci_quick_train", tab="Logs")
    app.run()
    assert not app.exception
    assert status_line(app).startswith(f"**run {runs['ok']}: ci_complete**")
    assert step_picker(app).value == "ci_quick_train"
    assert view_picker(app).value == "Logs"
    assert any(m.value.startswith("#### Quick train") for m in app.markdown)
    assert "started ci_quick_train" in console(app)


def test_an_unknown_run_in_the_url_falls_back_to_the_latest(app, seeded_dir):
    _, runs = seeded_dir
    app.query_params["run"] = "999"
    app.run()
    assert not app.exception
    assert any("There is no run 999" in w.value for w in app.warning)
    assert status_line(app).startswith(f"**run {runs['failed']}:")


@pytest.mark.parametrize("step", CI_STEPS)
def test_every_tab_renders_for_a_succeeded_ci_step(app, seeded_dir, make_lab, served, step):
    _, runs = seeded_dir
    app.query_params["run"] = str(runs["ok"])
    app.run()
    for tab in TABS:
        select(app, step, tab)
        assert not app.exception, (step, tab)
        text = shown(app)
        if tab == "Code":
            assert pipeline.spec(step).source_path.read_text()[:40] in text
        elif tab == "Config":
            assert "yaml" in [c.language for c in app.code]
        elif tab == "Logs":
            button = app.download_button(key=f"log_dl_{step}")
            log = served(button).decode().splitlines()  # the file the button serves: every line of the step
            assert button.label == "Download the full log"
            assert [line.split(" ", 3)[3].strip() for line in log] == \
                [r["message"] for r in make_lab().logs(runs["ok"], step, limit=100_000)]
        else:
            assert "Raw outputs (JSON)" in [e.label for e in app.expander]
    if step == "ci_quick_train":
        assert {"Accuracy", "F1", "ROC-AUC"} <= {m.label for m in app.metric}


def test_log_filter_narrows_the_console_lines(app, seeded_dir, make_lab):
    _, runs = seeded_dir
    app.query_params.update(run=str(runs["ok"]), step="ci_tests", tab="Logs")
    app.run()
    stored = [line["message"] for line in make_lab().logs(runs["ok"], "ci_tests")]
    assert console_messages(app) == stored  # every stored line, in order
    app.text_input(key="log_filter").input("ruff").run()
    narrowed = console_messages(app)
    assert narrowed == [m for m in stored if "ruff" in m.lower()] and 0 < len(narrowed) < len(stored)
    assert f"{len(narrowed)} of {len(stored)} lines" in console(app)


def test_failure_mode_toggle_persists(app, make_lab):
    from streamlit.testing.v1 import AppTest
    app.session_state[header.MODES_KEY] = True  # the person opened the popover
    app.run()
    app.toggle(key="fm_schema_validation").set_value(True).run()
    assert not app.exception
    modes = {m["name"]: m["enabled"] for m in make_lab().failure_modes()}
    assert modes["schema_validation"] and not modes["training_error"]
    fresh = AppTest.from_file(app._script_path, default_timeout=180)  # a new browser session
    fresh.session_state[header.MODES_KEY] = True
    fresh.run()
    assert fresh.toggle(key="fm_schema_validation").value is True
    assert fresh.toggle(key="fm_training_error").value is False


def test_cd_and_deploy_outputs_render_through_approval_and_promotion(app, awaiting_dir, make_lab):
    lab = make_lab()
    assert lab.run(WAITING).status == "awaiting_approval"
    app.query_params["run"] = str(WAITING)
    app.run()
    app.button(key="act_approve").click().run()
    assert not app.exception
    assert "Gate verdict: **PASS**" in shown(app)  # the evidence is in the dialog
    button(app, f"Approve run {WAITING}").click().run()  # no reviewer name: refused, nothing changes
    assert any("Fill in **Reviewer**" in e.value for e in app.error) and "--by" not in shown(app)
    assert lab.run(WAITING).status == "awaiting_approval"
    labelled(app.text_input, "Reviewer (required)").input("Dana")
    labelled(app.text_area, "Comment").input("metrics hold up")
    button(app, f"Approve run {WAITING}").click().run()
    assert not app.exception and errors_besides_the_drift_alert(app, lab) == []
    lab.runner.run_until_idle()
    app.run()
    assert status_line(app).startswith(f"**run {WAITING}: promoted**")
    for step in [s.name for s in pipeline.STEPS if s.stage != "CI"]:
        for tab in ("Outputs", "Logs"):
            select(app, step, tab)
            assert not app.exception, (step, tab)
    steps = {s.name: s.outputs for s in lab.run(WAITING).steps}
    select(app, "evaluate_vs_champion", "Outputs")
    assert "Gate verdict: **PASS**" in shown(app)
    evaluated = steps["evaluate_vs_champion"]
    table = app.dataframe[0].value
    assert table["95% interval"].tolist() == [f"[{c['interval'][0]:+.4f}, {c['interval'][1]:+.4f}]"
                                              for c in evaluated["gate"]["checks"]]
    new, old = evaluated["challenger"]["threshold"], evaluated["champion"]["threshold"]  # each model's own
    assert thresholds_caption(app).endswith(f"challenger {new:.4f}, champion {old:.4f}")
    assert table["check"].tolist() == ["ROC-AUC change vs champion", "F1 change vs champion"]  # against v1
    select(app, "cd_full_train", "Outputs")
    assert "**SHAP**" in shown(app) and "Could not load" not in shown(app)
    select(app, "shadow_monitor", "Outputs")
    assert "Gate verdict: **PASS**" in shown(app)
    both = steps["shadow_monitor"]["gate"]["thresholds"]  # staging and champion, each at its own threshold
    assert thresholds_caption(app).endswith(f"staging {both['staging']:.4f}, champion {both['champion']:.4f}")
    assert {m.label: m.value for m in app.metric}["Drift level"] == "none"
    select(app, "manual_approval", "Outputs")
    assert "Dana" in shown(app)
    app.session_state[explorer.OPEN] = True  # the explorer's registry, below
    app.run()
    assert "Champion: **claims-settlement-rf v3**" in [s.value for s in app.success]


def test_reject_dialog_needs_a_name_then_stops_the_run_at_the_gate(app, awaiting_dir, make_lab):
    lab = make_lab()
    app.query_params["run"] = str(WAITING)
    app.run()
    app.button(key="act_reject").click().run()
    assert not app.exception
    assert "Gate verdict: **PASS**" in shown(app)  # the same evidence as for approving
    button(app, f"Reject run {WAITING}").click().run()
    assert any("Fill in **Reviewer**" in e.value for e in app.error) and "--by" not in shown(app)
    assert lab.run(WAITING).status == "awaiting_approval"
    labelled(app.text_input, "Reviewer (required)").input("Rui")
    labelled(app.text_area, "Comment").input("wait for the audit")
    button(app, f"Reject run {WAITING}").click().run()
    assert not app.exception
    run = lab.run(WAITING)
    assert run.status == "rejected"
    gate = {s.name: s for s in run.steps}["manual_approval"]
    assert (gate.status, gate.error) == ("failed", "rejected by Rui: wait for the audit")
    assert [(a.action, a.actor, a.comment) for a in lab.audit(run_id=WAITING)][0] == (
        "reject", "Rui", "wait for the audit")
    assert status_line(app).startswith(f"**run {WAITING}: rejected**")
    assert lab.tracking.alias_version("champion") == 1  # nothing was deployed


def test_retry_dialog_requeues_the_failed_run_from_the_step_that_stopped_it(app, seeded_dir, make_lab):
    _, runs = seeded_dir
    app.run()
    app.button(key="act_retry").click().run()
    assert labelled(app.selectbox, "Retry from").value == "data_validation"
    labelled(app.text_input, "Your name (optional)").input("Ola")
    button(app, f"Retry run {runs['failed']}").click().run()
    assert not app.exception
    lab = make_lab()
    run = lab.run(runs["failed"])
    assert run.status == "queued" and run.failure_modes == []  # the mode is off now
    steps = {s.name: s for s in run.steps}
    assert steps["data_validation"].status == "queued" and steps["ci_tests"].status == "succeeded"
    assert [(a.action, a.actor, a.comment) for a in lab.audit(run_id=runs["failed"])][0] == (
        "retry", "Ola", "from data_validation")
    assert status_line(app).startswith(f"**run {runs['failed']}: queued**")
    lab.runner.run_until_idle()
    app.run()
    assert status_line(app).startswith(f"**run {runs['failed']}: ci_complete**")


def test_rollback_dialog_names_the_version_that_becomes_champion(app, awaiting_dir, make_lab):
    lab = make_lab()
    app.run()
    rollback = app.button(key="act_rollback")
    assert rollback.disabled and "nothing earlier to roll back to" in rollback.help  # v1, after the demo's rollback
    lab.approve(WAITING, by="Dana")  # a second real promotion: version 3
    lab.runner.run_until_idle()
    assert lab.tracking.alias_version("champion") == 3
    app.run()
    app.button(key="act_rollback").click().run()
    assert not app.exception
    assert "moves from version **3** back to version **1**" in shown(app)
    labelled(app.text_input, "Your name (required)").input("Sam")
    labelled(app.text_area, "Reason").input("bad canary")
    button(app, "Roll back to version 1").click().run()
    assert not app.exception
    assert "Champion rolled back: v3 → v1" in shown(app)
    assert lab.tracking.alias_version("champion") == 1
    last = lab.champion_history()[-1]
    assert (last["version"], last["action"], last["moved_by"], last["reason"]) == (1, "rollback", "Sam", "bad canary")


def test_an_unreachable_mlflow_is_a_message_not_a_traceback(app, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    app.session_state[explorer.OPEN] = True  # the section that reads MLflow
    app.run()
    assert not app.exception
    assert any("MLflow at http://127.0.0.1:9 is not answering" in w.value for w in app.warning)
    assert "No runs yet: click Fake commit" in shown(app)  # the rest of the dashboard still works


def test_the_retry_dialog_offers_the_runs_own_steps_whatever_their_stored_positions():
    # A run made before a step was added, its positions shifted: the choices come from its own rows, in order,
    # up to the step that stopped it (slicing by stored position picked the wrong steps).
    from ui.dialogs import retry_choices
    steps = [make_step(n, s, position=100 + i) for i, (n, s) in enumerate(
        [("commit_received", "succeeded"), ("data_validation", "failed"), ("ci_quick_train", "skipped")])]
    assert retry_choices(make_run("failed", steps)) == (["commit_received", "data_validation"], "data_validation")
    rested = [make_step(s.name, "succeeded", position=s.position) for s in steps]
    assert retry_choices(make_run("failed", rested)) == (["commit_received", "data_validation", "ci_quick_train"],
                                                "commit_received")

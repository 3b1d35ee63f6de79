"""Statuses as a person should read them, which promotions a rollback undid, and when a run still moves."""
from __future__ import annotations

import dataclasses

import pytest

from engine import StepStatus
from tests.conftest import make_run, make_step
from ui import common


def _run(status: str, **steps: str):
    return make_run(status, [make_step(n, s, outputs={}) for n, s in steps.items()])


def test_a_failed_gate_reads_as_what_stopped_the_run():
    for run_status, expected in (("failed", "failed"), ("held", "held"), ("rejected", "rejected")):
        run = _run(run_status, manual_approval="failed")
        assert common.shown_status(run, run.steps[0]) == expected


def test_the_promotion_a_rollback_undid_reads_as_rolled_back():
    step = make_step("promote_prod", "succeeded", outputs={"alias": "champion", "version": 2})
    run = make_run("promoted", [step], rolled_back={"moved_by": "Sam"})
    assert common.shown_status(run, step) == "rolled_back"
    staging = make_step("deploy_staging", "succeeded", outputs={"alias": "staging", "version": 2})
    assert common.shown_status(run, staging) == "succeeded"
    assert common.shown_status(dataclasses.replace(run, rolled_back=None), step) == "succeeded"


def test_a_run_is_live_while_any_step_is_queued_or_running_whatever_its_status():
    assert common.live(_run("failed", ci_tests="running", data_validation="failed"))
    assert common.live(_run("queued", commit_received="succeeded"))
    assert not common.live(_run("failed", ci_tests="succeeded", data_validation="failed"))
    assert not common.live(None)


def test_iso_timestamps_are_utc_to_the_second():
    assert common.iso_ts(0) == "1970-01-01T00:00:00Z"
    assert common.iso_ts(1_764_320_462.9) == "2025-11-28T09:01:02Z"


def test_a_relative_embedded_store_is_named_by_its_real_path(tmp_path, monkeypatch):
    from types import SimpleNamespace
    monkeypatch.chdir(tmp_path)
    settings = SimpleNamespace(tracking_uri="sqlite:///data/mlflow.db", artifact_root="file:///srv/a",
                               mlflow_ui_url="http://127.0.0.1:5000")
    url, command = common.mlflow_ui(settings)
    assert url is None
    assert command.startswith(f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'data' / 'mlflow.db'} ")


# A URL is typed by strangers: "²" passes str.isdigit() and then fails int(); 5,000 digits are more than int()
# reads; other scripts' digits, signs, spaces and exponents are not a run id either.
BAD_RUN_IDS = ["²", "1" * 5000, "١٢", "-1", "0", " 1", "1e3", "1_0", str(2**63)]


@pytest.mark.parametrize("value", BAD_RUN_IDS, ids=lambda v: repr(v[:12]))
def test_a_run_in_the_url_that_is_not_a_run_id_is_ignored(app, seeded_dir, value):
    _, runs = seeded_dir
    app.query_params["run"] = value
    app.run()
    assert not app.exception
    assert app.query_params["run"] in (str(runs["failed"]), [str(runs["failed"])])  # the latest run, as without


def test_a_manual_approval_took_until_the_decision_and_waits_while_nobody_decided():
    gathered = make_step("manual_approval", "awaiting_approval", started_at=100.0, finished_at=100.02,
                         outputs={"evidence": {}})
    assert common.duration(gathered) is None and common.waiting(gathered, now=400.0) == 300.0
    decided = dataclasses.replace(gathered, status=StepStatus.SUCCEEDED,
                                  outputs={"evidence": {}, "decision": "approved", "at": 460.0})
    assert common.duration(decided) == 360.0 and common.waiting(decided) is None
    # Any other step took from its start to its finish.
    assert common.duration(dataclasses.replace(decided, name="deploy_staging", finished_at=101.5)) == 1.5


def test_following_a_run_opens_a_running_step_on_its_log_and_a_resting_one_on_its_outputs(monkeypatch):
    import streamlit as st
    state: dict = {}
    monkeypatch.setattr(st, "session_state", state)
    common.follow(_run("running", commit_received="succeeded", ci_tests="running"))
    assert (state["step_pick"], state["tab_pick"]) == ("ci_tests", "Logs")
    common.follow(_run("failed", commit_received="succeeded", ci_tests="failed"))
    assert (state["step_pick"], state["tab_pick"]) == ("ci_tests", "Outputs")
    state.update(_tab_chosen=True, tab_pick="Code")  # a view the person picked stays
    common.follow(_run("running", commit_received="running"))
    assert (state["step_pick"], state["tab_pick"]) == ("commit_received", "Code")
    state.update(_step_chosen=True)  # so does a step
    common.follow(_run("running", commit_received="succeeded", ci_tests="running"))
    assert state["step_pick"] == "commit_received"

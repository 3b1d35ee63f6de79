"""Statuses as a person should read them, which promotions a rollback undid, and when a run still moves."""
from __future__ import annotations

import pytest

from ui import common


def _run(status: str, **steps: str) -> dict:
    return {"status": status, "steps": [{"name": n, "status": s, "outputs": {}} for n, s in steps.items()]}


def test_a_failed_gate_reads_as_what_stopped_the_run():
    for run_status, expected in (("failed", "failed"), ("held", "held"), ("rejected", "rejected")):
        run = _run(run_status, manual_approval="failed")
        assert common.shown_status(run, run["steps"][0]) == expected


def test_the_promotion_a_rollback_undid_reads_as_rolled_back():
    step = {"name": "promote_prod", "status": "succeeded", "outputs": {"alias": "champion", "version": 2}}
    run = {"status": "promoted", "steps": [step], "rolled_back": {"moved_by": "Sam"}}
    assert common.shown_status(run, step) == "rolled_back"
    staging = {"name": "deploy_staging", "status": "succeeded", "outputs": {"alias": "staging", "version": 2}}
    assert common.shown_status(run, staging) == "succeeded"
    assert common.shown_status({**run, "rolled_back": None}, step) == "succeeded"


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

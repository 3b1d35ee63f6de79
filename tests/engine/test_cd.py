"""CD end to end on SQLite and PostgreSQL with a real MLflow SQLite store: continue, evaluate, approve, deploy.

A lifecycle costs seconds, so each backend gets one lab for the module and one story told in order by chained
fixtures: two commits run CI together; run A goes through CD, is approved and promoted (version 1); run B then
goes through CD (version 2) and is rejected. At each resting point the fixtures snapshot the runs and try the
actions the state must refuse (in the Lab and through the CLI), recording the error and the state before and
after. The tests read those records, so they do not depend on the order they run in.
"""
from __future__ import annotations

import copy
import json
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from engine import Run, Step, pipeline
from engine.config import CHALLENGER, CHAMPION, MODEL_NAME, RUN_TAGS, STAGING
from engine.errors import BadInput, Refused
from engine.lab import Lab
from engine.states import IllegalTransition, RunStatus
from tests.conftest import cli_env, engine_cli

SEED_A, SEED_B = 31, 32
SHA_A = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
DEPLOY = [s.name for s in pipeline.STEPS if s.stage == "Deploy"]
CD_AND_DEPLOY = [s.name for s in pipeline.STEPS if s.stage != "CI"]
ALIASES = (CHALLENGER, STAGING, CHAMPION)


# ---- helpers --------------------------------------------------------------------------------------------------
def state(lab: Lab) -> dict:
    """Everything an action could change: runs with steps, row counts of every table, aliases, version tags."""
    runs = lab.runs(limit=100)
    return {"runs": runs, "steps": {r.id: lab.store.steps_of(r.id) for r in runs},
            "rows": lab.store.row_counts(),
            "aliases": {a: lab.tracking.alias_version(a) for a in ALIASES},
            "versions": [(v["version"], sorted(v["aliases"]), v["tags"]) for v in lab.tracking.versions()]}


def attempt(lab: Lab, action) -> dict:
    """Call `action`; record the refusal it raised (or None) and the state before and after."""
    before = state(lab)
    try:
        action()
        error = None
    except (BadInput, Refused, IllegalTransition) as exc:
        error = exc
    return {"error": error, "before": before, "after": state(lab)}


def cli_attempt(lab: Lab, *args: str) -> dict:
    """Run `python -m engine ARGS` against this lab; record the process and the state before and after."""
    before = state(lab)
    proc = engine_cli(cli_env(lab.settings), *args)
    return {"proc": proc, "before": before, "after": state(lab)}


def snap(lab: Lab, run_id: int) -> dict:
    return copy.deepcopy(lab.run(run_id))


def by_name(run: Run) -> dict[str, Step]:
    return {s.name: s for s in run.steps}


# ---- the story, one chapter per fixture ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ci(mlab):
    """Two commits through CI; while B rests in ci_complete, approving it is refused (Lab and CLI)."""
    tried = {"rollback_no_champion": attempt(mlab, lambda: mlab.rollback("dora", "too early"))}
    a = mlab.commit(sha=SHA_A, message="feat: full model", seed=SEED_A, author="alice")
    b = mlab.commit(message="chore: retrain", seed=SEED_B, author="bob")
    mlab.runner.run_until_idle()
    tried["approve_ci_complete"] = attempt(mlab, lambda: mlab.approve(b, by="mallory"))
    tried["cli_approve_ci_complete"] = cli_attempt(mlab, "approve", str(b), "--by", "mallory")
    return {"a": a, "b": b, "a_run": snap(mlab, a), "b_run": snap(mlab, b), "tried": tried}


@pytest.fixture(scope="module")
def awaiting(mlab, ci):
    """A continued to CD and resting at the manual gate; continuing it again is refused."""
    a = ci["a"]
    mlab.continue_run(a, by="alice")
    mlab.runner.run_until_idle()
    faults = {}
    for point in FAULT_POINTS:  # an approval failing at each of its side effects, before the real one
        before = state(mlab)
        with failing_at(mlab, point), pytest.raises(RuntimeError, match="broke") as raised:
            mlab.approve(a, by="alice", comment="looks good")
        faults[point] = {"error": raised.value, "before": before, "after": state(mlab)}
    return {"run": snap(mlab, a), "tried": {"continue_awaiting": attempt(mlab, lambda: mlab.continue_run(a))},
            "faults": faults}


@pytest.fixture(scope="module")
def promoted(mlab, ci, awaiting):
    """A approved (a second approval is refused) and deployed; then rolling back is refused (one champion)."""
    a = ci["a"]
    mlab.approve(a, by="alice", comment="beats the baseline; SHAP looks sane")
    tried = {"approve_twice": attempt(mlab, lambda: mlab.approve(a, by="bob", comment="me too"))}
    mlab.runner.run_until_idle()
    tried["rollback_one_champion"] = attempt(mlab, lambda: mlab.rollback("dora", "just because"))
    tried["cli_rollback_one_champion"] = cli_attempt(mlab, "rollback", "--by", "dora")
    return {"run": snap(mlab, a), "tried": tried, "aliases": {al: mlab.tracking.alias_version(al) for al in ALIASES},
            "champion_history": mlab.champion_history()}


@pytest.fixture(scope="module")
def rejected(mlab, ci, promoted):
    """B continued to CD (version 2, evaluated against champion v1); a nameless reject is refused; then rejected."""
    b = ci["b"]
    mlab.continue_run(b, by="bob")
    mlab.runner.run_until_idle()
    waiting = snap(mlab, b)
    tried = {"reject_nameless": attempt(mlab, lambda: mlab.reject(b, by="   ", comment="no")),
             "reject_empty_name": attempt(mlab, lambda: mlab.reject(b, by="")),
             "cli_approve_without_by": cli_attempt(mlab, "approve", str(b))}
    mlab.reject(b, by="carol", comment="not before the audit")
    tried["approve_after_reject"] = attempt(mlab, lambda: mlab.approve(b, by="carol"))
    return {"waiting": waiting, "run": snap(mlab, b), "tried": tried}


@pytest.fixture(scope="module")
def story(ci, awaiting, promoted, rejected):
    """Every chapter by name (for the tables of refusals below)."""
    return {"ci": ci, "awaiting": awaiting, "promoted": promoted, "rejected": rejected}


# ---- CI then CD: the statuses on the way ----------------------------------------------------------------------
def test_ci_rests_in_ci_complete_with_cd_untouched(ci):
    for run in (ci["a_run"], ci["b_run"]):
        assert run.status == RunStatus.CI_COMPLETE.value
        steps = by_name(run)
        assert all(steps[n].status == "pending" and steps[n].attempt == 0 for n in CD_AND_DEPLOY)


def test_continue_runs_cd_to_the_manual_gate(awaiting):
    run = awaiting["run"]
    assert run.status == RunStatus.AWAITING_APPROVAL.value
    steps = by_name(run)
    assert [steps[n].status for n in ("cd_full_train", "evaluate_vs_champion", "manual_approval")] == [
        "succeeded", "succeeded", "awaiting_approval"]
    assert all(steps[n].status == "pending" for n in DEPLOY)
    evidence = steps["manual_approval"].outputs["evidence"]
    assert evidence["model_version"] == 1 and evidence["gate"]["verdict"] == "pass"
    assert evidence["top_features"] and evidence["reference"]["policy"] == "approve every claim"


FAULT_POINTS = ("set_run_status", "set_step_status", "queue_step", "add_audit", "set_version_tags", "commit")


@contextmanager
def failing_at(lab, point: str):
    """One side effect of an action fails: a store write, an MLflow tag (after the first one lands), the commit."""
    boom = RuntimeError(f"{point} broke")

    def fail(*_args, **_kwargs):
        raise boom
    with pytest.MonkeyPatch.context() as mp:
        if point == "set_version_tags":
            real = lab.tracking.set_version_tags

            def half(version, tags):
                first = next(iter(tags))
                real(version, {first: tags[first]})
                raise boom
            mp.setattr(lab.tracking, "set_version_tags", half)
        elif point == "commit":
            event.listen(lab.store.engine, "commit", fail)
        else:
            mp.setattr(lab.store, point, fail)
        try:
            yield
        finally:
            if point == "commit":
                event.remove(lab.store.engine, "commit", fail)


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_an_approval_that_fails_at_any_side_effect_changes_nothing(awaiting, point):
    fault = awaiting["faults"][point]
    assert str(fault["error"]) == f"{point} broke"
    assert fault["after"] == fault["before"]
    assert {r.id: r.status for r in fault["after"]["runs"]}[awaiting["run"].id] == "awaiting_approval"


def test_approve_deploys_and_promotes(promoted):
    run = promoted["run"]
    assert run.status == RunStatus.PROMOTED.value
    assert all(s.status == "succeeded" and s.attempt == 1 for s in run.steps), [
        (s.name, s.status, s.attempt) for s in run.steps]
    steps = by_name(run)
    gate = steps["manual_approval"].outputs
    assert (gate["decision"], gate["by"], gate["comment"]) == (
        "approved", "alice", "beats the baseline; SHAP looks sane")
    assert gate["evidence"]["model_version"] == 1
    assert steps["deploy_staging"].outputs == {"alias": STAGING, "version": 1, "previous": None}
    shadow = steps["shadow_monitor"].outputs
    assert shadow["gate"]["verdict"] == "pass" and shadow["champion_version"] is None
    assert [c["name"] for c in shadow["gate"]["checks"]] == ["accuracy change vs approve-every-claim", "max input PSI"]
    assert steps["promote_prod"].outputs == {"alias": CHAMPION, "version": 1, "previous_champion": None,
                                                "shadow_tested_version": 1}


def test_promotion_moves_every_alias_to_version_1(promoted):
    assert promoted["aliases"] == {CHALLENGER: 1, STAGING: 1, CHAMPION: 1}
    history = promoted["champion_history"]
    assert [(h["version"], h["action"], h["moved_by"]) for h in history] == [(1, "promote", "alice")]
    assert history[0]["until"] is None and history[0]["run_id"] == promoted["run"].id


def test_approval_is_tagged_on_the_model_version(mlab, promoted):
    tags = mlab.tracking.client.get_model_version(MODEL_NAME, "1").tags
    assert tags["approval"] == "approved"
    assert tags["approval_by"] == "alice"
    assert tags["approval_comment"] == "beats the baseline; SHAP looks sane"
    assert tags["approval_pipeline_run_id"] == str(promoted["run"].id)
    assert tags["commit_sha"] == SHA_A and tags["seed"] == str(SEED_A)
    assert tags["promoted_by_run"] == str(promoted["run"].id) and tags["previous_champion"] == ""


# ---- what the CD steps really produced ------------------------------------------------------------------------
def test_cd_mlflow_run_carries_tags_dataset_and_shap_artifacts(mlab, promoted):
    run = promoted["run"]
    full = by_name(run)["cd_full_train"].outputs
    detail = mlab.tracking.run_detail(full["mlflow_run_id"])
    assert detail["status"] == "FINISHED"
    assert {k: detail["tags"].get(k) for k in RUN_TAGS} == {
        "commit_sha": SHA_A, "stage": "CD", "dataset_window": run.dataset_window, "seed": str(SEED_A),
        "model_version": "1", "pipeline_run_id": str(run.id)}
    # Exactly the rows of each part, identified by the lab's whole-frame digest.
    assert {d["context"]: (json.loads(d["profile"])["num_rows"], d["digest"]) for d in detail["inputs"]} == {
        context: (part["rows"], part["digest"]) for context, part in full["datasets"].items()}
    assert full["datasets"]["training"]["digest"] == full["dataset_digest"]
    assert detail["params"]["decision_threshold"] == str(full["decision_threshold"])
    assert {"shap/beeswarm.png", "shap/importance.csv", "eval/confusion_matrix.json"} <= set(detail["artifacts"])
    assert mlab.tracking.artifact_bytes(full["mlflow_run_id"], "shap/beeswarm.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert detail["metrics"]["roc_auc"] == pytest.approx(full["metrics"]["roc_auc"])
    version = mlab.tracking.client.get_model_version(MODEL_NAME, "1")
    assert version.run_id == full["mlflow_run_id"]
    assert version.tags["training_digest"] == full["datasets"]["training"]["digest"]


def test_cd_full_train_outputs(promoted):
    full = by_name(promoted["run"])["cd_full_train"].outputs
    params = pipeline.spec("cd_full_train").params()
    assert full["model_version"] == 1
    assert 0 < full["artifact_mb"] <= 10
    assert 0.85 <= full["metrics"]["roc_auc"] <= 1.0
    assert full["validation_rows"] == round(params["rows"] * params["validation_share"])
    assert full["train_rows"] + full["validation_rows"] == params["rows"]
    assert full["holdout_rows"] == params["holdout_rows"]
    assert {k: v["rows"] for k, v in full["datasets"].items()} == {
        "training": full["train_rows"], "validation": full["validation_rows"], "evaluation": full["holdout_rows"]}
    assert 0 < full["decision_threshold"] < 1 and full["threshold_choice"]["costs"] == params["costs"]
    shap = full["shap"]
    assert "TreeExplainer" in shap["method"]
    assert shap["sample_size"] == params["shap_sample_size"]
    assert shap["artifact"] == "shap/beeswarm.png"
    importance = [row["mean_abs_shap"] for row in shap["importance"]]
    assert len(importance) == 6 and importance == sorted(importance, reverse=True) and importance[0] > 0


def test_cd_calibrates_on_the_validation_split_and_logs_the_ece_and_reliability_table(promoted, mlab):
    full = by_name(promoted["run"])["cd_full_train"].outputs
    calibration = full["calibration"]
    assert calibration["method"] == pipeline.spec("cd_full_train").params()["calibration"] == "isotonic"
    assert calibration["fitted_on"] == "validation"
    assert calibration["ece"] < calibration["ece_uncalibrated"]  # the forest alone is under-confident
    assert sum(b["n"] for b in calibration["reliability"]) == full["holdout_rows"]
    detail = mlab.tracking.run_detail(full["mlflow_run_id"])
    assert detail["metrics"]["ece"] == pytest.approx(calibration["ece"])
    assert detail["metrics"]["ece_uncalibrated"] == pytest.approx(calibration["ece_uncalibrated"])
    table = json.loads(mlab.tracking.artifact_bytes(full["mlflow_run_id"], "eval/reliability.json"))
    assert table["calibrated"]["bins"] == calibration["reliability"]
    # What the version serves is the calibrated P(Approved): on the same holdout its ECE is the one CD logged.
    from engine.ml.claims import derived_seed, generate_claims, label_array
    from engine.ml.monitor import calibration as reliability
    run = promoted["run"]
    holdout = generate_claims(full["holdout_rows"], derived_seed(run.seed, 1), run.dataset_window)
    served = mlab.tracking.load_model(full["model_version"])
    assert reliability(served.p_approved(holdout), label_array(holdout) == 1)["ece"] == pytest.approx(
        calibration["ece"], abs=1e-12)


def test_evaluate_vs_champion_without_champion_uses_what_needs_no_model(promoted):
    out = by_name(promoted["run"])["evaluate_vs_champion"].outputs
    params = pipeline.spec("evaluate_vs_champion").params()
    gate = out["gate"]
    assert gate["verdict"] == "pass" and "no champion yet" in gate["rule"]
    feature = out["baseline"]["single_feature"]["feature"]
    assert [c["name"] for c in gate["checks"]] == [
        f"ROC-AUC gain over best single feature ({feature})", "F1 gain over approve-every-claim",
        "cost saving per claim over approve-every-claim"]
    assert [c["threshold"] for c in gate["checks"]] == [
        params["min_auc_gain_over_single_feature"], params["min_f1_gain_over_baseline"],
        params["min_cost_saving_over_baseline"]]
    for c in gate["checks"]:
        assert {"value", "op", "threshold", "margin", "passed", "interval"} <= set(c)
        assert c["passed"] is True and c["margin"] >= 0 and c["interval"][0] <= c["value"] <= c["interval"][1]
    challenger, baseline = out["challenger"]["metrics"], out["baseline"]["metrics"]
    auc, f1_gain, saving = gate["checks"]
    assert auc["value"] == pytest.approx(challenger["roc_auc"] - out["baseline"]["single_feature"]["roc_auc"],
                                         abs=1e-4)
    assert f1_gain["value"] == pytest.approx(challenger["f1"] - baseline["f1"], abs=1e-4)
    assert saving["value"] == pytest.approx(baseline["cost_per_claim"] - challenger["cost_per_claim"], abs=1e-4)
    # A saving is the baseline's cost minus the challenger's: stored as a fall, the others as rises.
    assert [c["direction"] for c in gate["checks"]] == ["rise", "rise", "fall"]
    # Decided on the interval's lower bound ("at least"): the margin is measured from it.
    assert f1_gain["decided_on"].startswith("lower bound")
    assert f1_gain["margin"] == pytest.approx(f1_gain["interval"][0] - f1_gain["threshold"], abs=1e-6)
    assert out["champion"] is None and gate["thresholds"] == {"challenger": out["challenger"]["threshold"],
                                                              "champion": None}
    assert out["baseline"]["policy"] == "approve every claim" and out["baseline"]["version"] is None
    assert (baseline["recall"], baseline["roc_auc"], baseline["false_denial_rate"]) == (1.0, 0.5, 0.0)
    assert out["challenger"]["version"] == 1 and out["holdout_rows"] == params["holdout_rows"]


def test_audit_trail_records_who_did_what(mlab, promoted):
    run_id = promoted["run"].id
    rows = list(reversed(mlab.audit(run_id=run_id)))  # oldest first
    actions = [(r.action, r.actor) for r in rows]
    assert actions == [("commit", "alice"), ("continue", "alice"), ("deploy:challenger", "pipeline"),
                       ("approve", "alice"), ("deploy:staging", "alice"), ("promote:champion", "alice")]
    commit, approve = rows[0], rows[3]
    assert commit.comment == "feat: full model"
    assert commit.detail["sha"] == SHA_A and commit.detail["seed"] == SEED_A
    assert approve.comment == "beats the baseline; SHAP looks sane"
    assert rows[-1].detail == {"from": None, "to": 1}


# ---- reject stops at the gate ---------------------------------------------------------------------------------
def test_second_model_is_evaluated_against_the_champion(rejected):
    waiting = rejected["waiting"]
    assert waiting.status == RunStatus.AWAITING_APPROVAL.value
    out = by_name(waiting)["evaluate_vs_champion"].outputs
    assert out["baseline"] is None and out["champion"]["version"] == 1 and out["challenger"]["version"] == 2
    assert "champion v1" in out["gate"]["rule"] and out["gate"]["verdict"] == "pass"
    params = pipeline.spec("evaluate_vs_champion").params()
    assert [(c["name"], c["threshold"]) for c in out["gate"]["checks"]] == [
        ("ROC-AUC change vs champion", params["min_auc_delta"]), ("F1 change vs champion", params["min_f1_delta"])]


def test_reject_stops_the_run_at_the_gate(mlab, rejected):
    run = rejected["run"]
    assert run.status == RunStatus.REJECTED.value
    steps = by_name(run)
    gate = steps["manual_approval"]
    assert gate.status == "failed"
    assert (gate.outputs["decision"], gate.outputs["by"], gate.outputs["comment"]) == (
        "rejected", "carol", "not before the audit")
    assert "evidence" in gate.outputs
    assert gate.error == "rejected by carol: not before the audit"
    assert [steps[n].status for n in DEPLOY] == ["skipped"] * len(DEPLOY)
    assert all(steps[n].attempt == 0 for n in DEPLOY)
    tags = mlab.tracking.client.get_model_version(MODEL_NAME, "2").tags
    assert (tags["approval"], tags["approval_by"], tags["approval_comment"]) == (
        "rejected", "carol", "not before the audit")
    assert {a: mlab.tracking.alias_version(a) for a in ALIASES} == {CHALLENGER: 2, STAGING: 1, CHAMPION: 1}
    assert [h["version"] for h in mlab.champion_history()] == [1]
    reject = mlab.audit(run_id=run.id)[0]
    assert (reject.action, reject.actor, reject.comment) == ("reject", "carol", "not before the audit")


def test_a_rejected_run_cannot_be_approved(rejected):
    tried = rejected["tried"]["approve_after_reject"]
    assert isinstance(tried["error"], Refused) and "is rejected" in str(tried["error"])
    assert tried["after"] == tried["before"]


# ---- refusals change nothing ----------------------------------------------------------------------------------
REFUSALS = {  # name: (chapter it was tried in, error, words the message must contain)
    "rollback_no_champion": ("ci", Refused, "no champion yet"),
    "approve_ci_complete": ("ci", Refused, "Approve needs a run in awaiting_approval"),
    "continue_awaiting": ("awaiting", Refused, "Continue to CD needs a run in ci_complete"),
    "approve_twice": ("promoted", (Refused, IllegalTransition), "awaiting_approval"),
    "rollback_one_champion": ("promoted", Refused, "only model that has been champion"),
    "reject_nameless": ("rejected", BadInput, "--by NAME"),
    "reject_empty_name": ("rejected", BadInput, "--by NAME"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_refused_actions_change_nothing(story, name):
    chapter, error, words = REFUSALS[name]
    tried = story[chapter]["tried"][name]
    assert isinstance(tried["error"], error), tried["error"]
    assert words in str(tried["error"])
    assert tried["after"] == tried["before"]


def test_approving_twice_leaves_the_first_decision(promoted):
    tried = promoted["tried"]["approve_twice"]
    assert "queued" in str(tried["error"])  # the first approval queued the run for deployment
    gate = by_name(promoted["run"])["manual_approval"].outputs
    assert gate["by"] == "alice"
    approvals = [r for r in tried["after"]["runs"] if r.id == promoted["run"].id]
    assert approvals[0].status == RunStatus.QUEUED.value


def test_rollback_refusal_names_the_only_champion(promoted):
    message = str(promoted["tried"]["rollback_one_champion"]["error"])
    assert "version 1" in message and "nothing earlier to roll back to" in message


# ---- the CLI maps refusals to exit codes ----------------------------------------------------------------------
CLI_REFUSALS = {  # name: (chapter it was tried in, exit code, words stderr must contain)
    "cli_approve_ci_complete": ("ci", 3, "Approve needs a run in awaiting_approval"),
    "cli_rollback_one_champion": ("promoted", 3, "nothing earlier to roll back to"),
    "cli_approve_without_by": ("rejected", 2, "--by"),
}


@pytest.mark.parametrize("name", CLI_REFUSALS)
def test_cli_exit_codes_for_refusals(story, name):
    chapter, code, words = CLI_REFUSALS[name]
    tried = story[chapter]["tried"][name]
    proc = tried["proc"]
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    assert proc.stdout == ""
    if code == 3:
        assert proc.stderr.startswith("refused:") and "(nothing was changed)" in proc.stderr
    assert tried["after"] == tried["before"]

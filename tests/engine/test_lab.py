"""The Lab facade beyond the pipeline story: input limits, the public-demo guard, reset, pruning, workers."""
from __future__ import annotations

import dataclasses
import hmac
import threading

import pytest
import sqlalchemy as sa
from mlflow.entities import ViewType

from engine import store
from engine.config import LIMITS
from engine.errors import BadInput, Refused
from engine.guard import OPERATOR_TRIES
from engine.lab import Lab, champion_line, check_run_id, check_text, claim_errors
from tests.conftest import wait_until


def _demo(settings, **changes) -> Lab:
    return Lab(dataclasses.replace(settings, demo=True, **changes))


def _everything(lab: Lab) -> dict:
    return {"rows": lab.store.row_counts(), "runs": lab.runs(limit=100), "audit": lab.audit()}


# ---- limits -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", sorted(LIMITS))
def test_every_free_text_limit_is_inclusive_and_named(field):
    limit = LIMITS[field]
    assert check_text("x" * limit + "  ", field, f"--{field}") == "x" * limit  # stripped, then measured
    with pytest.raises(BadInput, match=f"--{field} is {limit + 1:,} characters long; the limit is {limit:,}"):
        check_text("x" * (limit + 1), field, f"--{field}")


def test_run_ids_outside_1_to_2_63_are_bad_input():
    assert check_run_id("7") == 7 and check_run_id(2**63 - 1) == 2**63 - 1
    for bad in (0, -1, 2**63, 2**64):
        with pytest.raises(BadInput, match=f"there is no run {bad}: run ids are whole numbers from 1"):
            check_run_id(bad)
    with pytest.raises(BadInput, match="is not a whole number"):
        check_run_id("seven")


@pytest.mark.parametrize("typed", ["١", "٣٢", "７", "1_000", "1.0", "", " ", True, 1.0, None])
def test_a_run_id_is_written_with_the_digits_0_to_9(typed):
    """int() reads "١" (Arabic-Indic one) as run 1: a typo must never act on another run."""
    with pytest.raises(BadInput, match="is not a whole number written with the digits 0-9; list runs with"):
        check_run_id(typed)


def test_a_huge_run_id_is_quoted_cut_short():
    with pytest.raises(BadInput) as err:
        check_run_id("x" * 10_000_000)
    assert "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (10,000,002 characters)" in str(err.value)
    assert len(str(err.value)) < 200


# ---- the public demo ----------------------------------------------------------------------------------------
KEY = "the-operator-key"


def _rest(lab: Lab, run_id: int, status: str, step: str | None = None, step_status: str | None = None) -> None:
    """Put a run at rest in `status` (its queued first step done) without running anything: the guard reads only
    statuses, and running CI and CD for each would take minutes."""
    with lab.store.tx() as c:
        c.execute(sa.update(store.steps).where(store.steps.c.run_id == run_id, store.steps.c.status == "queued")
                  .values(status="succeeded"))
        if step:
            c.execute(sa.update(store.steps).where(store.steps.c.run_id == run_id, store.steps.c.name == step)
                      .values(status=step_status))
        c.execute(sa.update(store.runs).where(store.runs.c.id == run_id).values(status=status))


def _resting(lab: Lab) -> dict[str, int]:
    """One run resting in each status that an action moves back into the queue: continue, approve, retry."""
    rests = {"continue": ("ci_complete",), "approve": ("awaiting_approval", "manual_approval", "awaiting_approval"),
             "retry": ("failed", "ci_tests", "failed")}
    waiting = {}
    for action, rest in rests.items():
        waiting[action] = lab.commit()
        _rest(lab, waiting[action], *rest)
    return waiting


def _act(lab: Lab, action: str, run_id: int | None = None):
    return {"commit": lambda: lab.commit(), "continue": lambda: lab.continue_run(run_id, by="Dana"),
            "approve": lambda: lab.approve(run_id, by="Dana"), "retry": lambda: lab.retry(run_id, by="Dana")}[action]()


def test_every_action_that_queues_work_meets_the_one_cap_and_a_refusal_changes_nothing(settings):
    # Only commit used to count: with the cap reached, continue, approve and retry still queued work.
    lab = _demo(settings, demo_max_active_runs=2)
    try:
        waiting = _resting(lab)
        full = [lab.commit(), lab.commit()]
        before = _everything(lab)
        for action in ("commit", "continue", "approve", "retry"):
            with pytest.raises(Refused, match="at most 2 queued or running pipeline runs at once and 2 are in "
                                              "progress; wait for one to finish, then try again"):
                _act(lab, action, waiting.get(action))
        assert _everything(lab) == before
        _rest(lab, full[0], "ci_complete")  # a slot frees: the same count lets the next action in
        _act(lab, "approve", waiting["approve"])
        with pytest.raises(Refused, match="at most 2 queued or running"):
            _act(lab, "retry", waiting["retry"])
    finally:
        lab.close()


def test_runs_continued_at_once_never_exceed_the_cap(settings):
    # The finding: ten runs in ci_complete continued at once gave ten full trainings with a cap of three.
    lab = _demo(settings, demo_max_active_runs=3)
    try:
        ids = []
        for _ in range(8):
            ids.append(lab.commit())
            _rest(lab, ids[-1], "ci_complete")
        barrier, outcomes = threading.Barrier(len(ids)), []

        def go(run_id: int) -> None:
            barrier.wait()
            try:
                lab.continue_run(run_id, by="visitor")
                outcomes.append("queued")
            except Refused as exc:
                outcomes.append(str(exc).split(";")[0])

        threads = [threading.Thread(target=go, args=(r,)) for r in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(outcomes) == ["queued"] * 3 + [
            "this demo runs at most 3 queued or running pipeline runs at once and 3 are in progress"] * 5
        assert [r.status for r in lab.runs()].count("queued") == 3
    finally:
        lab.close()


def test_demo_pacing_is_per_visitor_and_holds_across_app_processes(settings):
    # It was a dict per process keyed by browser session: a reload (a new session) or another app process reset it.
    first = _demo(settings, demo_commit_interval=3600, demo_toggle_interval=3600, operator_key=KEY)
    second = _demo(settings, demo_commit_interval=3600, demo_toggle_interval=3600, operator_key=KEY)
    try:
        first.commit(visitor="ip:a")
        with pytest.raises(Refused, match="one commit every 3600 s per visitor; try again in 3600 s"):
            second.commit(visitor="ip:a")
        second.commit(visitor="ip:b")  # another visitor is not held back
        first.set_failure_mode("training_error", True, visitor="ip:a", operator_key=KEY)
        with pytest.raises(Refused, match="one failure toggle every 3600 s per visitor"):
            second.set_failure_mode("training_error", False, visitor="ip:a", operator_key=KEY)
        assert first.store.failure_modes() == {"training_error": True}
    finally:
        first.close()
        second.close()


def test_a_commit_refused_at_the_cap_does_not_use_up_the_visitors_pace(settings):
    lab = _demo(settings, demo_max_active_runs=1, demo_commit_interval=3600)
    try:
        full = lab.commit(visitor="ip:a")
        with pytest.raises(Refused, match="at most 1 queued or running"):
            lab.commit(visitor="ip:b")
        _rest(lab, full, "ci_complete")
        lab.commit(visitor="ip:b")  # refused before, so not paced now
    finally:
        lab.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_in_the_demo_shared_controls_need_the_operator_key_and_say_where_it_goes(settings):
    lab = _demo(settings, operator_key=KEY)
    try:
        stream = lab.stream.state()
        before = _everything(lab)
        needs = "changes the lab for every visitor, so it needs the operator key: enter it under Operator on the Demo"
        for act in (lambda: lab.set_failure_mode("training_error", True, visitor="ip:a"),
                    lambda: lab.rollback("Dana", "bad model", visitor="ip:a"),
                    lambda: lab.stream.start(rate=5, visitor="ip:a"),
                    lambda: lab.stream.stop(visitor="ip:a"),
                    lambda: lab.stream.set_closed_loop(True, visitor="ip:a"),
                    lambda: lab.reset("Dana", visitor="ip:a")):
            with pytest.raises(Refused, match=needs):
                act()
        assert _everything(lab) == before and lab.stream.state() == stream
        lab.set_failure_mode("training_error", True, visitor="ip:a", operator_key=KEY)
        with pytest.raises(Refused, match="there is no champion yet"):  # past the key, the usual checks
            lab.rollback("Dana", visitor="ip:a", operator_key=KEY)
        lab.set_failure_mode("training_error", False, by="cli")  # the CLI acts for no visitor: no key
        assert lab.store.failure_modes() == {"training_error": False}
    finally:
        lab.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_an_operator_key_on_the_server_nobody_can_change_shared_controls(settings):
    lab = _demo(settings, operator_key="")
    try:
        with pytest.raises(Refused, match=r"only the operator may do it, and this deployment has no operator key "
                                          r"\(LAB_OPERATOR_KEY\)"):
            lab.set_failure_mode("training_error", True, visitor="ip:a", operator_key="anything")
        assert lab.store.failure_modes() == {}
    finally:
        lab.close()


def test_operator_key_guesses_are_limited_per_visitor_and_compared_in_constant_time(settings, monkeypatch):
    lab = _demo(settings, operator_key=KEY)
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    try:
        for n in range(OPERATOR_TRIES):
            with pytest.raises(Refused, match="that is not the operator key, so nothing changed; this demo allows 5 "
                                              "wrong keys a minute per visitor"):
                lab.set_failure_mode("training_error", True, visitor="ip:a", operator_key=f"guess-{n}")
        with pytest.raises(Refused, match=r"too many wrong operator keys: this demo allows 5 a minute per visitor; "
                                          r"try again in \d+ s"):
            lab.set_failure_mode("training_error", True, visitor="ip:a", operator_key=KEY)  # even the right one
        assert lab.store.failure_modes() == {}
        assert len(compared) == OPERATOR_TRIES  # the locked-out attempt was not even compared
        lab.set_failure_mode("training_error", True, visitor="ip:b", operator_key=KEY)  # others are not locked out
        assert lab.store.failure_modes() == {"training_error": True}
        with pytest.raises(BadInput, match="give the operator key as text of 1 to 512 characters"):
            lab.guard.check_key("ip:c", "k" * 513)
    finally:
        lab.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_outside_demo_mode_nothing_is_capped_or_locked(lab):
    assert lab.settings.demo is False
    ids = [lab.commit(visitor="a") for _ in range(5)]
    assert len(ids) == 5 and lab.store.count_runs() == 5
    lab.set_failure_mode("training_error", True, visitor="a")
    assert lab.store.failure_modes() == {"training_error": True}


def _mlflow_run(lab: Lab, pipeline_run_id: int) -> str:
    return lab.tracking.start_run(f"run-{pipeline_run_id}", {"pipeline_run_id": str(pipeline_run_id)})


def _live_mlflow_runs(lab: Lab) -> set[str]:
    return {r["pipeline_run_id"] for r in lab.tracking.search_runs(max_results=100)[0]}


def test_prune_keeps_the_newest_runs_and_deletes_the_rest_with_their_mlflow_runs_for_real(lab):
    ids = [lab.commit(message=f"run {i}") for i in range(5)]
    for run_id in ids:
        _rest(lab, run_id, "ci_complete")
        _mlflow_run(lab, run_id)
        lab.store.add_log(run_id, "commit_received", 1, "INFO", "a line")
    _mlflow_run(lab, ids[-1] + 1)  # a run committed while the prune sweeps: its steps may be logging right now
    assert lab.prune(2) == {"runs": 3, "mlflow_runs": 3, "model_versions": 0, "logged_models": 0, "run_folders": 0}
    assert [r.id for r in lab.runs()] == ids[:2:-1]  # the newest two, newest first
    assert {a.run_id for a in lab.audit()} == set(ids[3:])
    assert all(lab.logs(r) == [] and lab.store.steps_of(r) == [] for r in ids[:3])
    kept = {str(r) for r in ids[3:] + [ids[-1] + 1]}
    assert _live_mlflow_runs(lab) == kept
    everything = lab.tracking.client.search_runs([lab.tracking.experiment_id()], run_view_type=ViewType.ALL)
    assert {r.data.tags["pipeline_run_id"] for r in everything} == kept  # the others are gone, not just marked
    assert lab.prune(2) == {"runs": 0, "mlflow_runs": 0, "model_versions": 0, "logged_models": 0, "run_folders": 0}


def test_prune_spares_the_runs_behind_the_newest_champions_and_any_run_still_moving(settings):
    lab = Lab(dataclasses.replace(settings, keep_champions=2))
    try:
        ids = [lab.commit() for _ in range(6)]
        for run_id in ids[1:]:
            _rest(lab, run_id, "promoted")
        with lab.store.tx() as c:  # champion: v1 (run 2), v2 (run 3), v3 (run 4); rolled back to v2
            for version, run_id in ((1, ids[1]), (2, ids[2]), (3, ids[3])):
                lab.store.record_alias(c, "champion", version, run_id, "Dana", "", "promote")
            lab.store.record_alias(c, "champion", 2, None, "Dana", "bad v3", "rollback")
        assert lab.protected_runs() == {"versions": {1, 2}, "runs": {ids[1], ids[2]}}
        assert lab.prune(1)["runs"] == 2  # runs 4 and 5: run 1 is queued, runs 2 and 3 made the kept champions
        assert sorted(r.id for r in lab.runs()) == [ids[0], ids[1], ids[2], ids[5]]
        assert lab.rollback_target() == (2, 1)
    finally:
        lab.close()


def test_a_rollback_to_a_champion_pruned_with_its_run_is_refused_saying_why(lab):
    ids = [lab.commit() for _ in range(3)]
    for run_id in ids:
        _rest(lab, run_id, "promoted")
    with lab.store.tx() as c:
        for version, run_id in ((1, ids[0]), (2, ids[1])):
            lab.store.record_alias(c, "champion", version, run_id, "Dana", "", "promote")
        c.execute(sa.delete(store.steps).where(store.steps.c.run_id == ids[0]))
        c.execute(sa.delete(store.runs).where(store.runs.c.id == ids[0]))  # as an older prune did
    current, target = lab.rollback_target()
    assert target is None and current.startswith("version 1, the champion before version 2, was pruned with its "
                                                 "run (a prune keeps the newest 5 champions, LAB_KEEP_CHAMPIONS)")
    assert lab.allowed_actions(None)["rollback"] == current
    with pytest.raises(Refused, match="was pruned with its run"):
        lab.rollback("Dana", "try anyway")


def test_a_demo_prunes_old_runs_when_it_starts(settings):
    lab = Lab(settings)
    ids = [lab.commit() for _ in range(4)]
    for run_id in ids:
        _rest(lab, run_id, "ci_complete")
    lab.close()
    demo = _demo(settings, demo_keep_runs=3, tick_seconds=3600)
    try:
        demo.start()  # the retention job's first pass runs at once, in the runner's scheduler
        wait_until(lambda: [r.id for r in demo.runs()] == ids[:0:-1], timeout=120, what="the start's prune")
    finally:
        demo.close()


def test_tidy_applies_retention_in_every_mode(settings):
    lab = Lab(dataclasses.replace(settings, keep_log_runs=1, keep_audit=2))
    try:
        ids = [lab.commit() for _ in range(2)]
        for run_id in ids:
            lab.store.add_log(run_id, "commit_received", 1, "INFO", "a line")
        for on in (True, False, True):
            lab.set_failure_mode("training_error", on)
        removed = lab.tidy()
        assert (removed["logs"], removed["audit"], removed.get("runs")) == (1, 1, None)  # no pruning outside a demo
        assert lab.logs(ids[0]) == [] and len(lab.logs(ids[1])) == 1
        assert [a.comment for a in lab.audit() if a.run_id is None] == ["training_error on", "training_error off"]
    finally:
        lab.close()


def test_reset_brings_the_lab_back_to_a_clean_state(lab):
    run_id = lab.commit(message="before the reset")
    _mlflow_run(lab, run_id)
    lab.set_failure_mode("schema_validation", True, by="visitor")
    with lab.store.tx() as c:
        lab.store.record_alias(c, "champion", 1, run_id, "visitor", "", "promote")
    removed = lab.reset(by="operator")
    assert removed["runs"] == 1 and removed["steps"] == 11 and removed["mlflow_runs"] == 1
    counts = lab.store.row_counts()
    assert {t: n for t, n in counts.items() if n} == {"audit": 1}
    assert [(a.action, a.actor) for a in lab.audit()] == [("reset", "operator")]
    assert _live_mlflow_runs(lab) == set() and lab.failure_modes()[0]["enabled"] is False
    with pytest.raises(BadInput, match="reset needs the name of who does it"):
        lab.reset(by=" ")


# ---- workers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_started_runner_registers_as_a_live_worker_and_leaves_when_stopped(settings):
    lab = Lab(settings)
    assert lab.workers() == []
    lab.start()
    try:
        rows = wait_until(lab.workers, timeout=60, what="the runner to register")
        assert [(w["id"], w["alive"], w["pid"]) for w in rows] == [(lab.runner.worker_id, True, lab.runner.pid)]
    finally:
        lab.close()
    assert lab.workers() == []


def test_the_champion_line_pops_each_promotion_a_rollback_undoes():
    history = [{"action": "promote", "version": 1, "run_id": 1}, {"action": "promote", "version": 2, "run_id": 2},
               {"action": "promote", "version": 3, "run_id": 3},
               {"action": "rollback", "version": 2, "run_id": None, "moved_by": "Sam"},
               {"action": "rollback", "version": 1, "run_id": None, "moved_by": "Ana"},
               {"action": "promote", "version": 4, "run_id": 4}]
    line, undone = champion_line(history)
    assert {run: row["moved_by"] for run, row in undone.items()} == {3: "Sam", 2: "Ana"}
    assert [row["version"] for row in line] == [1, 4]


# ---- a claim's numbers ------------------------------------------------------------------------------------------
CLAIM = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Renal", "billed_amount": "4200",
         "allowed_amount": "3100", "patient_age": "45"}


@pytest.mark.parametrize("value, says", [
    ("1e39", "'1e39' is beyond what the model can read (at most 3.403e+38)"),  # the forest reads float32
    (1e39, "1e+39 is beyond what the model can read"),
    ("-3.5e38", "is beyond what the model can read"),
    (10**400, "... (401 characters) is not a finite number"),  # float() overflows
    (10**5000, "(a whole number of about 5,000 digits) is not a finite number"),  # more than repr() prints
    ("1" * 5000, "... (5,002 characters) is not a number"),
    ("nan", "'nan' is not a number"), (float("nan"), "nan is not a finite number"),
    ("inf", "'inf' is not a number"), ("²", "'²' is not a number"), ("١٢٠٠", "is not a number"),
    ("1_200", "'1_200' is not a number"), ("0x10", "is not a number"), ("1e99999", "is not a number"),
    (True, "True is not a number"), ([1200], "[1200] is not a number"),
], ids=lambda v: repr(v)[:16] if not isinstance(v, int) or v < 10**4000 else "int past repr's limit")
def test_a_claims_numbers_are_ascii_decimals_the_model_can_read(value, says):
    row, errors = claim_errors({**CLAIM, "billed_amount": value})
    assert list(errors) == ["billed_amount"] and says in errors["billed_amount"], errors
    assert "billed_amount" not in row


@pytest.mark.parametrize("value, expected", [(" 4200 ", 4200.0), ("4.2e3", 4200.0), ("+4200.", 4200.0),
                                             (".5e4", 5000.0), (4200, 4200.0), ("3.4e38", 3.4e38)])
def test_what_a_person_types_as_a_number_still_reads(value, expected):
    row, errors = claim_errors({**CLAIM, "billed_amount": value})
    assert not errors and row["billed_amount"] == expected


@pytest.mark.parametrize("age, says", [("110.0000001", "patient_age 110.0000001 is outside 0..110"),
                                       (-0.5, "patient_age -0.5 is outside 0..110"),
                                       ("1e3", "patient_age 1000 is outside 0..110")])
def test_an_age_out_of_range_is_reported_with_its_real_value(age, says):
    _, errors = claim_errors({**CLAIM, "patient_age": age})
    assert list(errors) == ["patient_age"] and errors["patient_age"].startswith(says), errors


def test_a_huge_category_is_quoted_cut_short():
    _, errors = claim_errors({**CLAIM, "cpt_bucket": "S" * 10_000_000})
    assert errors["cpt_bucket"].startswith("cpt_bucket 'SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS... (10,000,002 "
                                           "characters) is not a known category")
    assert len(errors["cpt_bucket"]) < 400


def test_a_claims_messages_name_each_field_as_the_caller_shows_it():
    _, errors = claim_errors({**CLAIM, "allowed_amount": "5000", "patient_age": "x" * 100, "cpt_bucket": None},
                             names={"allowed_amount": "Allowed amount ($)", "billed_amount": "Billed amount ($)"})
    assert errors["allowed_amount"].startswith("Allowed amount ($) 5000 is more than Billed amount ($) 4200")
    assert errors["patient_age"].startswith("patient_age 'xxxx") and "(102 characters)" in errors["patient_age"]
    assert errors["cpt_bucket"].startswith("cpt_bucket is missing")


# ---- runs stored by an older pipeline ---------------------------------------------------------------------------
def as_older_pipeline(lab: Lab, run_id: int, without: str | None = None, shift: int = 0) -> None:
    """Make run `run_id` read as one an older pipeline stored: no row for the step `without` (added since), the
    later positions closed up over it, and every position moved by `shift` (not today's pipeline.NAMES index)."""
    s = store.steps
    with lab.store.tx() as c:
        if without:
            gone = c.execute(sa.select(s.c.position).where(s.c.run_id == run_id, s.c.name == without)).scalar_one()
            c.execute(sa.delete(s).where(s.c.run_id == run_id, s.c.name == without))
            c.execute(sa.update(s).where(s.c.run_id == run_id, s.c.position > gone).values(position=s.c.position - 1))
        c.execute(sa.update(s).where(s.c.run_id == run_id).values(position=s.c.position + shift))


def failed_in_data_validation(lab: Lab, seed: int, **older) -> int:
    """A run of an older pipeline (see as_older_pipeline) that failed in data_validation (schema_validation)."""
    lab.set_failure_mode("schema_validation", True, by="test")
    run_id = lab.commit(seed=seed)
    as_older_pipeline(lab, run_id, **older)
    lab.runner.run_until_idle()
    lab.set_failure_mode("schema_validation", False, by="test")
    return run_id


def test_a_step_the_run_has_no_row_for_is_not_part_of_it():
    from engine import pipeline
    older = {"commit_received": "succeeded", "data_validation": "pending", "ci_quick_train": "pending",
             "mlflow_log_ci": "pending"}  # stored before ci_tests existed
    assert pipeline.ready("CI", older) == ["data_validation"]
    assert not pipeline.stage_done("CI", older)
    assert pipeline.stage_done("CI", dict.fromkeys(older, "succeeded"))


@pytest.mark.parametrize("older", [{"without": "ci_tests"}, {"shift": 100}], ids=["predates-ci_tests", "positions"])
def test_a_run_from_an_older_pipeline_is_listed_shown_and_retried(lab, older):
    run_id = failed_in_data_validation(lab, 31, **older)
    run = lab.run(run_id)
    names = [s.name for s in run.steps]
    assert run.status == "failed" and ("ci_tests" in names) == ("without" not in older)
    assert {s.name: s.status for s in run.steps}["data_validation"] == "failed"
    assert [r.id for r in lab.runs()] == [run_id]
    if "without" in older:
        with pytest.raises(BadInput, match=f"run {run_id} has no step ci_tests .* retry from data_validation"):
            lab.retry(run_id, from_step="ci_tests")
    assert lab.retry(run_id, by="ops") == "data_validation"
    lab.runner.run_until_idle()
    run = lab.run(run_id)
    assert run.status == "ci_complete", [(s.name, s.status, s.error) for s in run.steps]
    assert [s.name for s in run.steps] == names  # nothing added, nothing reordered
    assert {s.name: s.attempt for s in run.steps}["data_validation"] == 2

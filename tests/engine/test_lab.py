"""The Lab facade beyond the pipeline story: input limits, the public-demo guard, reset, pruning, workers."""
from __future__ import annotations

import dataclasses

import pytest

from engine.config import LIMITS
from engine.errors import BadInput, Refused
from engine.lab import Lab, champion_line, check_run_id, check_text
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


# ---- the public demo ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_caps_queued_and_running_runs_and_says_the_limit(settings):
    lab = _demo(settings, demo_max_active_runs=2)
    try:
        lab.commit(session="a")
        lab.commit(session="b")
        before = _everything(lab)
        with pytest.raises(Refused, match="at most 2 queued or running pipeline runs at once and 2 are in"):
            lab.commit(session="c")
        with pytest.raises(Refused, match="at most 2 queued or running"):
            lab.commit()  # the CLI (no browser session) is capped too
        assert _everything(lab) == before
    finally:
        lab.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_paces_commits_and_toggles_per_browser_session(settings):
    lab = _demo(settings, demo_commit_interval=3600, demo_toggle_interval=3600)
    try:
        lab.commit(session="a")
        with pytest.raises(Refused, match="one commit every 3600 s per visitor; try again in 3600 s"):
            lab.commit(session="a")
        lab.commit(session="b")  # another visitor is not held back
        lab.set_failure_mode("training_error", True, session="a")
        with pytest.raises(Refused, match="one failure toggle every 3600 s per visitor"):
            lab.set_failure_mode("training_error", False, session="a")
        assert lab.store.failure_modes() == {"training_error": True}
    finally:
        lab.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_outside_demo_mode_nothing_is_capped(lab):
    assert lab.settings.demo is False
    ids = [lab.commit(session="a") for _ in range(5)]
    assert len(ids) == 5 and lab.store.count_runs() == 5


def _mlflow_run(lab: Lab, pipeline_run_id: int) -> str:
    return lab.tracking.start_run(f"run-{pipeline_run_id}", {"pipeline_run_id": str(pipeline_run_id)})


def _live_mlflow_runs(lab: Lab) -> set[str]:
    return {r["pipeline_run_id"] for r in lab.tracking.search_runs(max_results=100)[0]}


def test_prune_keeps_the_newest_runs_and_deletes_the_rest_with_their_mlflow_runs(lab):
    ids = [lab.commit(message=f"run {i}") for i in range(5)]
    for run_id in ids:
        _mlflow_run(lab, run_id)
        lab.store.add_log(run_id, "commit_received", 1, "INFO", "a line")
    assert lab.prune(2) == {"runs": 3, "mlflow_runs": 3}
    assert [r["id"] for r in lab.runs()] == ids[:2:-1]  # the newest two, newest first
    assert {a["run_id"] for a in lab.audit()} == set(ids[3:])
    assert all(lab.logs(r) == [] and lab.store.steps_of(r) == [] for r in ids[:3])
    assert _live_mlflow_runs(lab) == {str(r) for r in ids[3:]}
    assert lab.prune(2) == {"runs": 0, "mlflow_runs": 0}


def test_a_demo_prunes_old_runs_when_it_starts(settings):
    lab = Lab(settings)
    ids = [lab.commit() for _ in range(4)]
    lab.close()
    demo = _demo(settings, demo_keep_runs=3, tick_seconds=3600)
    try:
        demo.start()
        assert [r["id"] for r in demo.runs()] == ids[:0:-1]
    finally:
        demo.close()


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
    assert [(a["action"], a["actor"]) for a in lab.audit()] == [("reset", "operator")]
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

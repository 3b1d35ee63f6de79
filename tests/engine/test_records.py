"""The store's records: typed statuses, frozen, and one dict form that is the row as it was stored (the CLI, the API
and the CSV downloads print it), on both backends."""
from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from engine.output import runs_csv, to_json
from engine.records import AuditEntry, Run, Step
from engine.states import RunStatus, StepStatus
from engine.store import audit, runs, steps


@pytest.fixture
def stored(store):
    run_id = store.create_run("abc123", "a commit", "ann", 42, "2025-01-01..2025-01-31", ["training_error"])
    with store.tx() as c:
        store.add_audit(c, "ann", "commit", run_id, "first", {"sha": "abc123"})
    return run_id


def test_statuses_are_the_enums_and_the_records_cannot_be_changed(store, stored):
    run, step = store.get_run(stored), store.step(stored, "commit_received")
    assert run.status is RunStatus.QUEUED and step.status is StepStatus.QUEUED
    assert all(s.status is StepStatus.PENDING for s in store.steps_of(stored)[1:])
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = RunStatus.FAILED


def test_the_dict_form_is_the_row_with_its_columns_in_order(store, stored):
    run, step, entry = store.get_run(stored), store.step(stored, "commit_received"), store.audit_trail()[0]
    assert list(run.as_dict()) == [c.name for c in runs.columns] + ["trigger", "shift", "origin"]
    assert list(step.as_dict()) == [c.name for c in steps.columns]
    assert list(entry.as_dict()) == [c.name for c in audit.columns]
    assert run.as_dict()["status"] == "queued" and type(run.as_dict()["status"]) is str
    assert (entry.detail, entry.comment, entry.run_id) == ({"sha": "abc123"}, "first", stored)
    with_steps = dataclasses.replace(run, steps=tuple(store.steps_of(stored)))
    assert list(with_steps.as_dict())[-1] == "steps"
    assert with_steps.as_dict()["steps"] == [s.as_dict() for s in store.steps_of(stored)]


def test_json_and_csv_print_a_record_as_its_row(store, stored):
    run = store.get_run(stored)
    assert to_json(run) == to_json(run.as_dict())
    assert json.loads(to_json([run]))[0]["failure_modes"] == ["training_error"]
    assert runs_csv([run]) == runs_csv([run.as_dict()])
    assert runs_csv([run]).splitlines()[1].split(",")[6] == "queued"  # the status column holds the stored value


def test_records_pickle_for_the_pages_caches(store, stored):
    run = dataclasses.replace(store.get_run(stored), steps=tuple(store.steps_of(stored)))
    again = pickle.loads(pickle.dumps(run))
    assert again == run and again.status is RunStatus.QUEUED and again.steps[0].status is StepStatus.QUEUED
    entry = store.audit_trail()[0]
    assert pickle.loads(pickle.dumps(entry)) == entry


def test_a_run_finds_its_steps_and_their_outputs_by_name():
    step = Step.from_row(dict(id=1, run_id=1, name="commit_received", position=0, stage="CI", status="succeeded",
                              attempt=1, queued_at=1.0, started_at=1.0, finished_at=2.0, heartbeat_at=1.5,
                              worker="w", outputs={"sha": "abc"}, error=None))
    run = Run.from_row(dict(id=1, sha="abc", message="", author="", seed=1, dataset_window="w", failure_modes=[],
                            status="running", created_at=1.0, updated_at=1.0, finished_at=None))
    assert run.step("commit_received") is None and run.outputs_of("commit_received") == {}
    run = dataclasses.replace(run, steps=(step,))
    assert run.step("commit_received") is step and run.outputs_of("commit_received") == {"sha": "abc"}
    assert run.outputs_of("ci_tests") == {} and "rolled_back" not in run.as_dict()
    assert AuditEntry.from_row(dict(id=1, ts=1.0, actor="a", action="x", run_id=None, comment="",
                                    detail=None)).as_dict()["detail"] is None

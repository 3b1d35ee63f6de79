"""The store's rows as records: a run, a step, an audit entry.

Frozen, with statuses typed as the enums of engine/states.py, so a caller reads `run.status is RunStatus.FAILED`
instead of comparing raw strings. `as_dict()` is each record's one JSON form, used where a record leaves the
program (the CLI's JSON, the API, CSV downloads): the same keys, in the same order, with the same values as the
rows had when the store returned dicts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from engine.states import RunStatus, StepStatus


def _fields(record) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a run: where it is, which attempt, who runs it, what it produced or why it failed."""

    id: int
    run_id: int
    name: str
    position: int
    stage: str
    status: StepStatus
    attempt: int
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker: str | None
    outputs: dict | None
    error: str | None
    silent_for: float | None = None  # seconds since its last heartbeat; only read by Store.stale_steps

    @classmethod
    def from_row(cls, row: Mapping) -> Step:
        """A step from a row of the steps table (with `silent_for` when the query adds it)."""
        return cls(**{**row, "status": StepStatus(row["status"])})

    def as_dict(self) -> dict:
        """The step's JSON form, as its row."""
        out = _fields(self)
        out["status"] = self.status.value
        if self.silent_for is None:
            del out["silent_for"]
        return out


@dataclass(frozen=True, slots=True)
class Run:
    """One pipeline run: the commit it is for, its seed and data window, where it is, and where it came from
    (`trigger` "commit" with no shift or origin when nothing else was recorded). `steps` is set only when the run
    was read with its steps (Lab.run), `rolled_back` only by the pages (ui/common.py with_rollback)."""

    id: int
    sha: str
    message: str
    author: str
    seed: int
    dataset_window: str
    failure_modes: list[str]
    status: RunStatus
    created_at: float
    updated_at: float
    finished_at: float | None
    trigger: str = "commit"
    shift: dict | None = None
    origin: dict | None = None
    steps: tuple[Step, ...] | None = None
    rolled_back: dict | None = None  # the rollback that undid its promotion, when a page asked (not stored)

    @classmethod
    def from_row(cls, row: Mapping) -> Run:
        """A run from a row of the runs table joined with its origin."""
        return cls(**{**row, "status": RunStatus(row["status"])})

    def step(self, name: str) -> Step | None:
        """Its step `name` (the run must have been read with its steps), or None."""
        return next((s for s in self.steps or () if s.name == name), None)

    def outputs_of(self, name: str) -> dict:
        """The outputs of its step `name`; {} when that step has none (yet) or the run has no such step."""
        step = self.step(name)
        return (step.outputs if step else None) or {}

    def as_dict(self) -> dict:
        """The run's JSON form, as its row (with "steps" when it was read with them)."""
        out = _fields(self)
        out["status"] = self.status.value
        if self.steps is None:
            del out["steps"]
        else:
            out["steps"] = [s.as_dict() for s in self.steps]
        if self.rolled_back is None:
            del out["rolled_back"]
        return out


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to the lab, when, and why."""

    id: int
    ts: float
    actor: str
    action: str
    run_id: int | None
    comment: str
    detail: dict | None

    @classmethod
    def from_row(cls, row: Mapping) -> AuditEntry:
        """An entry from a row of the audit table."""
        return cls(**row)

    def as_dict(self) -> dict:
        """The entry's JSON form, as its row."""
        return _fields(self)

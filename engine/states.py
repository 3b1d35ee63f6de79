"""Run and step statuses, the table of legal moves between them, and the one function that checks a move.

Stored values are the enum values; they never change once released. Every status change in the engine goes
through `transition()`, and the store applies it as a conditional update (`WHERE status = <from>`), so a move
that lost a race is refused the same way as an illegal one: nothing changes.
"""
from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a pipeline run is (a string: formatted, it is its stored value)."""

    QUEUED = "queued"                        # created or resumed; its next step waits for a worker
    RUNNING = "running"                      # a step of it is running
    CI_COMPLETE = "ci_complete"              # CI passed; waits for someone to continue to CD
    AWAITING_APPROVAL = "awaiting_approval"  # CD passed its gate; waits for a reviewer
    PROMOTED = "promoted"                    # the model is champion (or was, until a later promotion)
    FAILED = "failed"                        # a step failed; retry re-runs it
    REJECTED = "rejected"                    # a reviewer said no; final
    HELD = "held"                            # a deploy gate stopped promotion; retry re-runs it
    INTERRUPTED = "interrupted"              # the process running a step died; retry re-runs it


class StepStatus(StrEnum):
    """Where one step of a run is (a string: formatted, it is its stored value)."""

    PENDING = "pending"                      # not reached yet
    QUEUED = "queued"                        # ready; the next free worker claims it
    RUNNING = "running"                      # a worker runs it and heartbeats
    SUCCEEDED = "succeeded"                  # done; its outputs feed later steps
    FAILED = "failed"                        # raised, or its gate said no (outputs say why)
    SKIPPED = "skipped"                      # not run because the run stopped before it
    AWAITING_APPROVAL = "awaiting_approval"  # the manual gate, waiting for approve/reject
    INTERRUPTED = "interrupted"              # its worker stopped heartbeating


# A run rests in these until a person acts; `--wait` returns when a run reaches one.
RESTING = frozenset({RunStatus.CI_COMPLETE, RunStatus.AWAITING_APPROVAL, RunStatus.PROMOTED, RunStatus.FAILED,
                     RunStatus.REJECTED, RunStatus.HELD, RunStatus.INTERRUPTED})
# No action on the run itself can move it out of these.
TERMINAL = frozenset({RunStatus.PROMOTED, RunStatus.REJECTED})
# Retry is offered from these.
RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.HELD, RunStatus.INTERRUPTED})
# The run ended badly: the CLI exits 1.
UNSUCCESSFUL = frozenset({RunStatus.FAILED, RunStatus.HELD, RunStatus.INTERRUPTED})
# Steps that are finished for this attempt.
STEP_DONE = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.INTERRUPTED})

R, S = RunStatus, StepStatus
RUN_MOVES: dict[RunStatus, frozenset[RunStatus]] = {
    R.QUEUED: frozenset({R.RUNNING, R.INTERRUPTED}),
    R.RUNNING: frozenset({R.CI_COMPLETE, R.AWAITING_APPROVAL, R.PROMOTED, R.FAILED, R.HELD,
                          R.INTERRUPTED}),
    R.CI_COMPLETE: frozenset({R.QUEUED}),            # continue to CD
    R.AWAITING_APPROVAL: frozenset({R.QUEUED, R.REJECTED}),  # approve / reject
    R.PROMOTED: frozenset(),
    R.FAILED: frozenset({R.QUEUED}),                 # retry
    R.REJECTED: frozenset(),
    R.HELD: frozenset({R.QUEUED}),                   # retry
    R.INTERRUPTED: frozenset({R.QUEUED}),            # retry
}
STEP_MOVES: dict[StepStatus, frozenset[StepStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.SKIPPED}),
    S.QUEUED: frozenset({S.RUNNING, S.PENDING, S.SKIPPED, S.INTERRUPTED}),  # interrupted with its run
    # back to queued: released by a worker shutting down before it could finish the step
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.AWAITING_APPROVAL, S.INTERRUPTED, S.QUEUED}),
    S.SUCCEEDED: frozenset({S.PENDING}),             # reset when a retry starts upstream of it
    S.FAILED: frozenset({S.PENDING}),
    S.SKIPPED: frozenset({S.PENDING}),
    S.AWAITING_APPROVAL: frozenset({S.SUCCEEDED, S.FAILED, S.PENDING}),  # approved / rejected / reset
    S.INTERRUPTED: frozenset({S.PENDING}),
}


class IllegalTransition(Exception):
    """A status change the table does not allow, or one that lost a race; nothing was changed."""

    def __init__(self, what: str, current: str, target: str, detail: str = ""):
        self.what, self.current, self.target = what, current, target
        msg = f"{what} cannot move from {current!r} to {target!r}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


def transition(current: RunStatus | StepStatus, target: RunStatus | StepStatus, what: str = "") -> None:
    """Check that `current` may move to `target`; raise IllegalTransition otherwise."""
    table = RUN_MOVES if isinstance(current, RunStatus) else STEP_MOVES
    kind = type(current)
    current, target = kind(current), kind(target)
    if target not in table[current]:
        allowed = ", ".join(sorted(s.value for s in table[current])) or "nothing (it is final)"
        raise IllegalTransition(what or kind.__name__, current.value, target.value,
                                f"from there it may go to {allowed}")

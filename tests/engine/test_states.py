"""The transition table: every listed move passes, every other move is refused by name, the named sets."""
from __future__ import annotations

import itertools

import pytest

from engine.states import (
    RESTING,
    RETRYABLE,
    RUN_MOVES,
    STEP_MOVES,
    TERMINAL,
    IllegalTransition,
    RunStatus,
    StepStatus,
    transition,
)

R, S = RunStatus, StepStatus

# Every legal move, written out from the lifecycle in shared/design.md (statuses, pipeline, CLI), not read from
# the engine's table: the tests below compare the two, so a wrong entry on either side turns them red.
RUN_PAIRS = {
    ("queued", "running"),                # a worker claims the run's next step
    ("queued", "interrupted"),            # its worker died before the step started
    ("running", "ci_complete"),           # every CI step succeeded
    ("running", "awaiting_approval"),     # CD reached the manual gate
    ("running", "promoted"),              # promote_prod moved champion
    ("running", "failed"),                # a step failed or a CI/CD gate said no
    ("running", "held"),                  # a deploy gate (shadow_monitor) stopped promotion
    ("running", "interrupted"),           # its worker stopped heartbeating
    ("ci_complete", "queued"),            # continue
    ("awaiting_approval", "queued"),      # approve
    ("awaiting_approval", "rejected"),    # reject
    ("failed", "queued"),                 # retry
    ("held", "queued"),                   # retry
    ("interrupted", "queued"),            # retry
}
STEP_PAIRS = {
    ("pending", "queued"),                # its upstream steps succeeded (or an action queued it)
    ("pending", "skipped"),               # the run stopped before reaching it
    ("queued", "running"),                # a worker claimed it
    ("queued", "pending"),                # a retry from an earlier step resets it
    ("queued", "skipped"),                # the run stopped before a worker claimed it
    ("queued", "interrupted"),            # its run was interrupted (a sibling's worker died) before a claim
    ("running", "queued"),                # its worker shut down (SIGTERM) and gave it back to the queue
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "awaiting_approval"),     # the manual gate waits for a reviewer
    ("running", "interrupted"),           # its worker stopped heartbeating
    ("succeeded", "pending"),             # a retry from an earlier step resets it
    ("failed", "pending"),                # retry
    ("skipped", "pending"),               # retry
    ("awaiting_approval", "succeeded"),   # approved
    ("awaiting_approval", "failed"),      # rejected
    ("awaiting_approval", "pending"),     # a retry from an earlier step resets it
    ("interrupted", "pending"),           # retry
}
ALLOWED = [(R(a), R(b)) for a, b in sorted(RUN_PAIRS)] + [(S(a), S(b)) for a, b in sorted(STEP_PAIRS)]
REFUSED = [(a, b) for enum, pairs in ((RunStatus, RUN_PAIRS), (StepStatus, STEP_PAIRS))
           for a, b in itertools.product(enum, enum) if (a.value, b.value) not in pairs]


def _table_pairs(table) -> set[tuple[str, str]]:
    return {(a.value, b.value) for a, targets in table.items() for b in targets}


def _id(pair) -> str:
    a, b = pair
    return f"{type(a).__name__}:{a.value}->{b.value}"


def test_tables_cover_every_status():
    assert set(RUN_MOVES) == set(RunStatus)
    assert set(STEP_MOVES) == set(StepStatus)
    assert all(t <= set(RunStatus) for t in RUN_MOVES.values())
    assert all(t <= set(StepStatus) for t in STEP_MOVES.values())


def test_the_engine_tables_hold_exactly_the_designed_moves():
    assert _table_pairs(RUN_MOVES) == RUN_PAIRS
    assert _table_pairs(STEP_MOVES) == STEP_PAIRS


@pytest.mark.parametrize("pair", ALLOWED, ids=_id)
def test_allowed_move_passes(pair):
    current, target = pair
    assert transition(current, target) is None
    # stored values come back from the database as plain strings
    assert transition(type(current)(current.value), type(target)(target.value)) is None


@pytest.mark.parametrize("pair", REFUSED, ids=_id)
def test_move_not_in_table_raises(pair):
    current, target = pair
    with pytest.raises(IllegalTransition) as err:
        transition(current, target, "run 7" if isinstance(current, RunStatus) else "step ci_tests of run 7")
    exc = err.value
    assert (exc.current, exc.target) == (current.value, target.value)
    text = str(exc)
    assert f"{current.value!r}" in text and f"{target.value!r}" in text
    assert text.startswith("run 7" if isinstance(current, RunStatus) else "step ci_tests of run 7")


def test_message_names_from_to_and_what_is_allowed():
    with pytest.raises(IllegalTransition, match=r"run 3 cannot move from 'ci_complete' to 'promoted': "
                                                 r"from there it may go to queued"):
        transition(R.CI_COMPLETE, R.PROMOTED, "run 3")
    with pytest.raises(IllegalTransition, match=r"'promoted' to 'queued': from there it may go to nothing"):
        transition(R.PROMOTED, R.QUEUED)
    with pytest.raises(IllegalTransition, match=r"^StepStatus cannot move from 'pending' to 'running'"):
        transition(S.PENDING, S.RUNNING)


def test_self_moves_are_illegal():
    for status in [*RunStatus, *StepStatus]:
        with pytest.raises(IllegalTransition):
            transition(status, status)


def test_unknown_status_is_not_a_move():
    with pytest.raises(ValueError):
        transition(R.QUEUED, "finished")


def test_status_values_are_the_released_ones():
    assert [s.value for s in RunStatus] == ["queued", "running", "ci_complete", "awaiting_approval", "promoted",
                                           "failed", "rejected", "held", "interrupted"]
    assert [s.value for s in StepStatus] == ["pending", "queued", "running", "succeeded", "failed", "skipped",
                                            "awaiting_approval", "interrupted"]


def test_named_sets_match_the_design():
    assert RESTING == {R.CI_COMPLETE, R.AWAITING_APPROVAL, R.PROMOTED, R.FAILED, R.REJECTED, R.HELD,
                       R.INTERRUPTED}
    assert TERMINAL == {R.PROMOTED, R.REJECTED}
    assert RETRYABLE == {R.FAILED, R.HELD, R.INTERRUPTED}


def test_named_sets_agree_with_the_table():
    assert all(not RUN_MOVES[s] for s in TERMINAL)  # nothing leaves a terminal status
    assert all(R.QUEUED in RUN_MOVES[s] for s in RETRYABLE)  # retry re-queues
    assert TERMINAL <= RESTING and RETRYABLE <= RESTING
    assert R.QUEUED not in RESTING and R.RUNNING not in RESTING

"""Two processes approve the same waiting run at the same moment on PostgreSQL: exactly one wins, every time.

One real run is built to awaiting_approval once. Two long-lived approver processes (spawned, each with its own
Lab and connection pool) then race ROUNDS times. Before each round the test puts the run back at the gate
directly in the database and locks the run's rows in a transaction of its own; both approvers start approving
and block on those rows (the test waits until PostgreSQL shows both waiting), and only then does the test let
go. So every round is a true overlap, whatever the machine's load: both approvers are inside `approve` when
the rows free up. Each round must end with one approval, one refusal (Refused, or IllegalTransition when the
loser had passed the status check too and lost at the conditional update), one audit row, and deploy_staging
queued once. At the end the last approval is deployed for real, once.
"""
from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest
import sqlalchemy as sa

from engine.config import STAGING
from engine.lab import Lab
from engine.states import RunStatus, StepStatus
from engine.store import audit, runs, steps
from tests.conftest import fresh_pg_database, make_settings, wait_until

pytestmark = pytest.mark.postgres

ROUNDS = 20
DEPLOY = ("deploy_staging", "shadow_monitor", "promote_prod")
REPLY_TIMEOUT = 60


def approver(name: str, settings, conn, barrier) -> None:
    """Worker process: on each run id received, wait at the barrier with the other worker, then approve."""
    from engine.errors import BadInput, Refused
    from engine.lab import Lab
    from engine.states import IllegalTransition

    lab = Lab(settings)
    lab.store.get_run(0)  # open a pooled connection now, not inside the first race
    lab.tracking.client  # noqa: B018  (import MLflow now, too)
    conn.send("ready")
    try:
        while (run_id := conn.recv()) is not None:
            barrier.wait(REPLY_TIMEOUT)
            try:
                lab.approve(run_id, by=name, comment=f"{name} says go")
                conn.send(("approved", name, ""))
            except (Refused, IllegalTransition, BadInput) as exc:
                conn.send(("refused", type(exc).__name__, str(exc)))
            except Exception as exc:  # reported to the test, which fails on it
                conn.send(("error", type(exc).__name__, str(exc)))
    finally:
        lab.close()


@pytest.fixture(scope="module")
def waiting(pg_server, tmp_path_factory, mlflow_template):
    """(lab, run id, manual_approval outputs, audit id floor): a real run resting at the manual gate."""
    with fresh_pg_database(pg_server) as url:
        lab = Lab(make_settings(tmp_path_factory.mktemp("race"), url, mlflow_template))
        try:
            run_id = lab.commit(message="race me", seed=61, author="alice")
            lab.runner.run_until_idle()
            lab.continue_run(run_id, by="alice")
            lab.runner.run_until_idle()
            assert lab.run(run_id).status == RunStatus.AWAITING_APPROVAL.value
            gate = lab.store.step(run_id, "manual_approval").outputs
            with lab.store.engine.connect() as c:
                floor = c.execute(sa.select(sa.func.max(audit.c.id))).scalar_one()
            yield lab, run_id, gate, floor
        finally:
            lab.close()


@pytest.fixture(scope="module")
def approvers(waiting):
    """Two spawned approver processes and their pipe ends; stopped (and reaped) afterwards."""
    lab = waiting[0]
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs, pipes = [], []
    for i in range(2):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=approver, args=(f"p{i}", lab.settings, theirs, barrier), daemon=True)
        proc.start()
        theirs.close()
        procs.append(proc)
        pipes.append(mine)
    try:
        for pipe, proc in zip(pipes, procs):
            assert pipe.poll(120), f"{proc.name} did not start"
            assert pipe.recv() == "ready"
        yield pipes
    finally:
        for pipe in pipes:
            try:
                pipe.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def reset(lab: Lab, run_id: int, gate_outputs: dict, floor: int) -> None:
    """Put the run back at the manual gate as the runner left it, and forget the previous round's audit rows."""
    with lab.store.tx() as c:
        c.execute(sa.update(runs).where(runs.c.id == run_id).values(status=RunStatus.AWAITING_APPROVAL.value))
        c.execute(sa.update(steps).where(steps.c.run_id == run_id, steps.c.name == "manual_approval")
                  .values(status=StepStatus.AWAITING_APPROVAL.value, outputs=gate_outputs))
        c.execute(sa.update(steps).where(steps.c.run_id == run_id, steps.c.name.in_(DEPLOY))
                  .values(status=StepStatus.PENDING.value, queued_at=None))
        c.execute(sa.delete(audit).where(audit.c.run_id == run_id, audit.c.id > floor))


def waiting_on_locks(conn) -> int:
    """How many other sessions of this database wait for a lock right now."""
    return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar_one()


def test_two_simultaneous_approvals_exactly_one_wins(waiting, approvers):
    lab, run_id, gate_outputs, floor = waiting
    losers = Counter()
    winners = Counter()
    with lab.store.engine.connect() as watcher:
        watcher.execution_options(isolation_level="AUTOCOMMIT")
        for round_no in range(ROUNDS):
            reset(lab, run_id, gate_outputs, floor)
            with lab.store.engine.connect() as holder, holder.begin():
                holder.execute(sa.select(runs.c.id).where(runs.c.id == run_id).with_for_update())
                holder.execute(sa.select(steps.c.id).where(steps.c.run_id == run_id).with_for_update())
                for pipe in approvers:
                    pipe.send(run_id)
                wait_until(lambda: waiting_on_locks(watcher) == 2, timeout=REPLY_TIMEOUT, interval=0.01,
                           what=f"round {round_no}: both approvers to block on the run's rows")
            # the rows are free again: both approvers are inside approve, one of them goes first
            _check_round(lab, run_id, floor, approvers, round_no, winners, losers)
    print(f"winners {dict(winners)}; losers {dict(losers)}")  # for the record (-rA)
    # The barrier makes the approvals overlap; the run row is locked before its status is read, so the loser
    # waits for the winner's commit and is refused on the status it then reads (no check-then-act).
    assert losers["Refused"] == ROUNDS, losers

    # The last round's approval, deployed for real: staging moves once.
    lab.runner.run_until_idle()
    run = lab.run(run_id)
    assert run.status == RunStatus.PROMOTED.value
    assert all(s.attempt == 1 for s in run.steps if s.name in DEPLOY)
    staging_moves = [h for h in lab.store.alias_history_of(STAGING) if h["run_id"] == run_id]
    assert len(staging_moves) == 1 and staging_moves[0]["moved_by"] in winners


def _check_round(lab, run_id, floor, approvers, round_no, winners, losers) -> None:
    """Collect both replies of a round: one approval, one refusal, and the state only the winner made."""
    replies = []
    for pipe in approvers:
        assert pipe.poll(REPLY_TIMEOUT), f"round {round_no}: an approver did not answer"
        replies.append(pipe.recv())
    outcomes = sorted(r[0] for r in replies)
    assert outcomes == ["approved", "refused"], f"round {round_no}: {replies}"
    winner = next(r[1] for r in replies if r[0] == "approved")
    loser = next(r for r in replies if r[0] == "refused")
    assert loser[1] in ("Refused", "IllegalTransition"), f"round {round_no}: {loser}"
    winners[winner] += 1
    losers[loser[1]] += 1

    run = lab.run(run_id)
    by = {s.name: s for s in run.steps}
    assert run.status == RunStatus.QUEUED.value, round_no
    gate = by["manual_approval"]
    assert (gate.status, gate.outputs["by"], gate.outputs["comment"]) == (
        "succeeded", winner, f"{winner} says go"), round_no
    assert (by["deploy_staging"].status, by["deploy_staging"].attempt) == ("queued", 0), round_no
    assert [by[n].status for n in DEPLOY[1:]] == ["pending", "pending"], round_no
    rows = [r for r in lab.audit(run_id=run_id) if r.id > floor]
    assert [(r.action, r.actor) for r in rows] == [("approve", winner)], f"round {round_no}: {rows}"

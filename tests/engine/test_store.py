"""The state store on SQLite and PostgreSQL: runs, atomic claims, checked status moves, logs, audit, toggles."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from engine import pipeline
from engine.states import IllegalTransition, RunStatus, StepStatus
from engine.store import VISITOR_EVENTS_SECONDS, Store, stream_snapshots, visitor_events


def _run(store: Store, seed: int = 1, modes=()) -> int:
    return store.create_run("abc123", "a commit", "ann", seed, "2025-01-01..2025-06-30", list(modes))


def _status(store: Store, run_id: int, name: str | None = None) -> str:
    return store.step(run_id, name).status if name else store.get_run(run_id).status


# ---- runs and steps ---------------------------------------------------------------------------------------
def test_create_run_makes_every_step_with_only_the_first_queued(store):
    run_id = _run(store, seed=42, modes=["training_error", "mlflow_connection"])
    run = store.get_run(run_id)
    assert run.status == RunStatus.QUEUED.value
    assert (run.sha, run.message, run.author, run.seed) == ("abc123", "a commit", "ann", 42)
    assert run.failure_modes == ["mlflow_connection", "training_error"]  # stored sorted
    assert run.finished_at is None
    steps = store.steps_of(run_id)
    assert len(steps) == 11 == len(pipeline.STEPS)
    assert [s.name for s in steps] == list(pipeline.NAMES)
    assert [s.position for s in steps] == list(range(11))
    assert [s.stage for s in steps] == [s.stage for s in pipeline.STEPS]
    assert [s.status for s in steps] == ["queued"] + ["pending"] * 10
    assert all(s.attempt == 0 and s.started_at is None for s in steps)
    assert steps[0].queued_at is not None and all(s.queued_at is None for s in steps[1:])


def test_list_and_count_runs(store):
    ids = [_run(store, seed=i) for i in range(3)]
    assert store.count_runs() == 3
    assert [r.id for r in store.list_runs()] == ids[::-1]  # newest first
    assert [r.id for r in store.list_runs(limit=1, offset=1)] == [ids[1]]
    with store.tx() as c:
        store.set_run_status(c, ids[0], "queued", RunStatus.RUNNING)
    assert [r.id for r in store.list_runs(statuses=["running"])] == [ids[0]]
    assert store.get_run(9999) is None and store.step(9999, "ci_tests") is None


def test_schema_creation_is_idempotent(store, db_url):
    run_id = _run(store)
    again = Store(db_url)
    try:
        assert again.get_run(run_id).id == run_id
        assert again.row_counts()["steps"] == 11
    finally:
        again.dispose()


# ---- claims -----------------------------------------------------------------------------------------------
def test_claim_step_takes_the_queued_step_once_and_marks_the_run_running(store):
    run_id = _run(store)
    before = time.time()
    step = store.claim_step("w1")
    assert step is not None
    assert (step.run_id, step.name, step.status, step.worker) == (run_id, "commit_received",
                                                                             "running", "w1")
    assert step.attempt == 1 and step.started_at >= before - 1 and step.heartbeat_at is not None
    assert store.claim_step("w2") is None  # only one step was queued
    row = store.step(run_id, "commit_received")
    assert (row.status, row.worker, row.attempt) == ("running", "w1", 1)
    assert _status(store, run_id) == RunStatus.RUNNING.value


def test_claim_takes_the_oldest_queued_step_first(store):
    first, second = _run(store, 1), _run(store, 2)
    assert store.claim_step("w").run_id == first
    assert store.claim_step("w").run_id == second
    assert store.claim_step("w") is None


def test_claim_leaves_an_already_running_run_running(store):
    run_id = _run(store)
    store.claim_step("w")
    with store.tx() as c:
        store.queue_step(c, run_id, "ci_tests")
        store.queue_step(c, run_id, "data_validation")
    assert store.claim_step("w").name == "ci_tests"
    assert store.claim_step("w").name == "data_validation"
    assert _status(store, run_id) == "running"


def test_concurrent_claims_take_every_step_exactly_once(db_url):
    stores = [Store(db_url) for _ in range(4)]
    try:
        run_ids = [_run(stores[0], seed=i) for i in range(40)]
        claimed: list[list[dict]] = [[] for _ in stores]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(stores))

        def work(i: int) -> None:
            try:
                barrier.wait()
                while (step := stores[i].claim_step(f"w{i}")) is not None:
                    claimed[i].append(step)
            except BaseException as exc:  # reported below; a thread must not die silently
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        everything = [s for per_thread in claimed for s in per_thread]
        assert len(everything) == 40
        assert sorted(s.run_id for s in everything) == run_ids  # each run's first step, each once
        assert len({s.id for s in everything}) == 40
        for i, per_thread in enumerate(claimed):
            assert all(s.worker == f"w{i}" for s in per_thread)
        rows = [stores[0].step(r, "commit_received") for r in run_ids]
        assert all(r.status == "running" and r.attempt == 1 for r in rows)
        assert {r.worker for r in rows} <= {f"w{i}" for i in range(4)}
        assert all(_status(stores[0], r) == "running" for r in run_ids)
    finally:
        for s in stores:
            s.dispose()


# ---- checked status moves ---------------------------------------------------------------------------------
def test_set_run_status_refuses_an_illegal_move_and_changes_nothing(store):
    run_id = _run(store)
    before = store.get_run(run_id)
    with pytest.raises(IllegalTransition, match=r"run \d+ cannot move from 'queued' to 'ci_complete'"):
        with store.tx() as c:
            store.add_audit(c, "ann", "probe", run_id)  # same transaction: must roll back too
            store.set_run_status(c, run_id, "queued", RunStatus.CI_COMPLETE)
    assert store.get_run(run_id) == before
    assert store.audit_trail(run_id=run_id) == []


def test_set_run_status_refuses_a_lost_race_and_changes_nothing(store):
    run_id = _run(store)
    before = store.get_run(run_id)
    # the caller believes the run is running (a legal move from there), but it is still queued
    with pytest.raises(IllegalTransition, match="its status changed meanwhile"):
        with store.tx() as c:
            store.set_run_status(c, run_id, "running", RunStatus.FAILED)
    assert store.get_run(run_id) == before


def test_set_run_status_records_finish_time_of_resting_statuses(store):
    run_id = _run(store)
    with store.tx() as c:
        store.set_run_status(c, run_id, "queued", RunStatus.RUNNING)
    assert store.get_run(run_id).finished_at is None
    with store.tx() as c:
        store.set_run_status(c, run_id, "running", RunStatus.CI_COMPLETE)
    run = store.get_run(run_id)
    assert run.status == "ci_complete" and run.finished_at == run.updated_at


def test_set_step_status_refuses_an_illegal_move_and_changes_nothing(store):
    run_id = _run(store)
    step = store.step(run_id, "ci_tests")  # pending
    with pytest.raises(IllegalTransition, match=r"step ci_tests of run \d+ cannot move from 'pending' to "
                                                r"'succeeded'"):
        with store.tx() as c:
            store.set_step_status(c, step, StepStatus.SUCCEEDED, outputs={"x": 1})
    assert store.step(run_id, "ci_tests") == step


def test_set_step_status_refuses_a_lost_race_and_changes_nothing(store):
    run_id = _run(store)
    stale = store.step(run_id, "commit_received")  # read while queued
    store.claim_step("w1")  # meanwhile another worker took it
    now = store.step(run_id, "commit_received")
    with pytest.raises(IllegalTransition, match="its status changed meanwhile"):
        with store.tx() as c:
            store.set_step_status(c, stale, StepStatus.SKIPPED)  # queued -> skipped is legal, but stale
    assert store.step(run_id, "commit_received") == now
    assert now.status == "running"


def test_skip_pending_skips_only_steps_not_reached(store):
    run_id = _run(store)
    store.claim_step("w")
    with store.tx() as c:
        store.queue_step(c, run_id, "ci_tests")
        store.skip_pending(c, run_id)
    statuses = {s.name: s.status for s in store.steps_of(run_id)}
    assert statuses.pop("commit_received") == "running"
    assert set(statuses.values()) == {"skipped"}


def test_heartbeat_and_stale_steps(store):
    run_id = _run(store)
    step = store.claim_step("w")
    assert store.heartbeat([step.id]) == {step.id}
    assert store.stale_steps(60) == []
    assert [s.id for s in store.stale_steps(-1)] == [step.id]  # every heartbeat is older than "now + 1"
    with store.tx() as c:
        store.set_step_status(c, store.step(run_id, "commit_received"), StepStatus.INTERRUPTED)
    assert store.heartbeat([step.id]) == set()  # no longer running
    assert store.stale_steps(-1) == []


# ---- logs, audit, failure modes, alias history -------------------------------------------------------------
def test_logs_of_pages_after_an_id(store):
    run_id, other = _run(store, 1), _run(store, 2)
    for i in range(6):
        store.add_log(run_id, "ci_tests" if i % 2 else "commit_received", 1, "INFO", f"line {i}")
    store.add_log(other, "ci_tests", 1, "INFO", "someone else's")
    lines = store.logs_of(run_id)
    assert [x["message"] for x in lines] == [f"line {i}" for i in range(6)]
    ids = [x["id"] for x in lines]
    assert ids == sorted(ids)
    assert [x["message"] for x in store.logs_of(run_id, after_id=ids[3])] == ["line 4", "line 5"]
    assert store.logs_of(run_id, after_id=ids[-1]) == []
    assert [x["message"] for x in store.logs_of(run_id, limit=2)] == ["line 0", "line 1"]
    page = store.logs_of(run_id, step="ci_tests")
    assert [x["message"] for x in page] == ["line 1", "line 3", "line 5"]
    assert [x["message"] for x in store.logs_of(run_id, "ci_tests", after_id=page[0]["id"])] == ["line 3",
                                                                                                   "line 5"]
    assert (lines[0]["step"], lines[0]["attempt"], lines[0]["level"]) == ("commit_received", 1, "INFO")


def test_audit_trail_newest_first_and_per_run(store):
    run_id = _run(store)
    with store.tx() as c:
        store.add_audit(c, "ann", "commit", run_id, "first", {"sha": "abc123"})
        store.add_audit(c, "bob", "failure_mode", None, "training_error on")
    with store.tx() as c:
        store.add_audit(c, "cy", "approve", run_id, "looks good")
    trail = store.audit_trail()
    assert [(a.actor, a.action) for a in trail] == [("cy", "approve"), ("bob", "failure_mode"),
                                                          ("ann", "commit")]
    assert trail[-1].detail == {"sha": "abc123"} and trail[-1].comment == "first"
    assert trail[1].detail == {} and trail[1].run_id is None
    assert [a.action for a in store.audit_trail(run_id=run_id)] == ["approve", "commit"]
    assert len(store.audit_trail(limit=1)) == 1


def test_failure_modes_persist_across_store_instances(store, db_url):
    assert store.failure_modes() == {}
    store.set_failure_mode("training_error", True, "ann")
    store.set_failure_mode("schema_validation", True, "ann")
    store.set_failure_mode("schema_validation", False, "bob")  # updated in place, not duplicated
    store.dispose()
    again = Store(db_url)
    try:
        assert again.failure_modes() == {"training_error": True, "schema_validation": False}
        assert again.row_counts()["failure_modes"] == 2
        trail = again.audit_trail()
        assert [(a.actor, a.comment) for a in trail] == [("bob", "schema_validation off"),
                                                               ("ann", "schema_validation on"),
                                                               ("ann", "training_error on")]
        assert trail[0].detail == {"mode": "schema_validation", "enabled": False}
    finally:
        again.dispose()


def test_alias_history_records_and_closes(store):
    with store.tx() as c:
        store.record_alias(c, "champion", 1, 10, "ann", "first", action="promote")
        store.record_alias(c, "staging", 2, 11, "ann", "", action="deploy")
    with store.tx() as c:
        store.lock(c, "champion")
        store.record_alias(c, "champion", 2, 11, "bob", "better", action="promote")
    with store.tx() as c:
        store.record_alias(c, "champion", 1, None, "cy", "regression", action="rollback")
    hist = store.alias_history_of("champion")
    assert [(h["version"], h["action"], h["moved_by"], h["run_id"]) for h in hist] == [
        (1, "promote", "ann", 10), (2, "promote", "bob", 11), (1, "rollback", "cy", None)]
    assert [h["until"] is None for h in hist] == [False, False, True]  # only the current holder is open
    assert hist[0]["until"] == hist[1]["since"] and hist[1]["until"] == hist[2]["since"]
    assert hist[2]["reason"] == "regression"
    staging = store.alias_history_of("staging")
    assert [(h["version"], h["until"]) for h in staging] == [(2, None)]  # another alias is untouched
    assert store.alias_history_of("challenger") == []


# ---- indexes ----------------------------------------------------------------------------------------------
def _indexes(store: Store, table: str) -> list[list[str]]:
    return [list(ix["column_names"]) for ix in sa.inspect(store.engine).get_indexes(table)]


def test_indexes_for_the_hot_queries_exist(store):
    assert ["created_at"] in _indexes(store, "runs")                    # latest runs
    assert ["status"] in _indexes(store, "runs")                        # runs by status
    assert ["run_id", "position"] in _indexes(store, "steps")           # steps of a run, in order
    assert ["status", "queued_at"] in _indexes(store, "steps")          # the claim's oldest queued step
    assert ["run_id", "step", "id"] in _indexes(store, "logs")          # a step's log lines after an id
    unique = sa.inspect(store.engine).get_unique_constraints("steps")
    assert ["run_id", "name"] in [u["column_names"] for u in unique] or \
        ["run_id", "name"] in _indexes(store, "steps")  # SQLite may report it as a unique index


def test_stores_created_together_on_a_fresh_database_all_start(db_url):
    """Workers and replicas starting at once must not race to create the schema."""
    barrier, made, errors = threading.Barrier(4), [], []

    def start() -> None:
        try:
            barrier.wait()
            made.append(Store(db_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        assert len(made) == 4 and made[0].row_counts()["steps"] == 0
    finally:
        for s in made:
            s.dispose()


def test_heartbeats_are_written_and_judged_on_the_database_clock(store, monkeypatch):
    """A worker whose clock runs an hour behind does not make its live step look dead."""
    import engine.store
    run_id = _run(store)
    wrong = time.time() - 3600
    monkeypatch.setattr(engine.store, "time", type("Clock", (), {"time": staticmethod(lambda: wrong)}))
    step = store.claim_step("w")
    assert store.heartbeat([step.id]) == {step.id}
    assert store.stale_steps(60) == []
    assert store.step(run_id, "commit_received").started_at == wrong  # the worker's clock is used elsewhere


# ---- retention and the public demo's visitors -------------------------------------------------------------------
def _snapshot(store: Store, seq: int) -> None:
    with store.tx() as c:
        c.execute(sa.insert(stream_snapshots).values(ts=time.time(), seq=seq, scenario="none", status="ok",
                                                     detail={}))


def test_retention_keeps_the_newest_snapshots_logs_and_runless_audit_rows(store):
    ids = [_run(store, seed) for seed in range(3)]
    for run_id in ids:
        store.add_log(run_id, "commit_received", 1, "INFO", "a line")
    store.add_log(999, "commit_received", 1, "INFO", "a line of a run that is gone")
    for seq in range(5):
        _snapshot(store, seq)
    with store.tx() as c:
        for n in range(4):
            store.add_audit(c, "ann", "failure_mode", None, f"toggle {n}")
        store.add_audit(c, "ann", "approve", ids[0], "kept: its run is here")
        store.add_audit(c, "ann", "approve", 999, "its run is gone")
    assert store.apply_retention(keep_snapshots=2, keep_log_runs=2, keep_audit=3) == {
        "stream_snapshots": 3, "logs": 2, "audit": 2, "visitor_events": 0}
    with store.engine.connect() as c:
        assert [r.seq for r in c.execute(sa.select(stream_snapshots.c.seq).order_by(stream_snapshots.c.seq))] == [3, 4]
    assert [store.logs_of(r) != [] for r in ids] == [False, True, True] and store.logs_of(999) == []
    assert [a.comment for a in store.audit_trail()] == ["kept: its run is here", "toggle 3", "toggle 2", "toggle 1"]
    assert set(store.apply_retention(2, 2, 3).values()) == {0}  # a second pass finds nothing more


def test_visitor_limits_count_on_the_database_clock_per_visitor_and_action(store, monkeypatch):
    import engine.store
    with store.tx() as c:
        assert store.visitor_wait(c, "ip:a", "commit", 2, 60) == 0
        store.add_visitor_event(c, "ip:a", "commit")
        store.add_visitor_event(c, "ip:a", "commit")
        store.add_visitor_event(c, "ip:b", "toggle")
    # A process whose own clock is an hour off judges the same: only the database's clock is used.
    monkeypatch.setattr(engine.store, "time", type("Clock", (), {"time": staticmethod(lambda: 0.0)}))
    with store.tx() as c:
        assert 58 < store.visitor_wait(c, "ip:a", "commit", 2, 60) <= 60
        assert store.visitor_wait(c, "ip:a", "commit", 3, 60) == 0
        assert store.visitor_wait(c, "ip:b", "commit", 1, 60) == 0  # another action of another visitor
        assert store.visitor_wait(c, "ip:c", "toggle", 1, 60) == 0
        c.execute(sa.update(visitor_events).values(at=visitor_events.c.at - 2 * VISITOR_EVENTS_SECONDS))
    assert store.apply_retention(10, 10, 10)["visitor_events"] == 3


def test_prune_keeps_protected_and_moving_runs_and_deletes_the_rest_with_their_rows(store):
    ids = [_run(store, seed) for seed in range(5)]
    with store.tx() as c:
        for run_id in ids[1:]:
            store.set_run_status(c, run_id, "queued", RunStatus.INTERRUPTED)
        store.add_origin(c, ids[2], "drift", None, None)
        store.add_audit(c, "ann", "commit", ids[2])
    store.add_log(ids[2], "commit_received", 1, "INFO", "a line")
    assert store.prune_runs(1, protect={ids[1]}) == [ids[2], ids[3]]  # ids[0] is still queued
    assert sorted(store.run_ids()) == [ids[0], ids[1], ids[4]]
    counts = store.row_counts()
    left = (counts["run_origin"], counts["audit"], counts["logs"], counts["steps"])
    assert left == (0, 0, 0, 3 * len(pipeline.STEPS))


def test_a_webhook_delivery_finds_its_run_by_id_or_payload_once_and_goes_with_it(store):
    digest = "ab" * 32
    with store.tx() as c:
        run_id = store.create_run("0d1a26e6", "pushed", "dana", 1, "2025-01-01..2025-06-30", [], conn=c)
        store.add_origin(c, run_id, "webhook", None, {"repository": "octo-org/claims-model"})
        store.add_delivery(c, "72d3162e", digest, run_id)
    assert store.delivery_run("72d3162e", "cd" * 32) == run_id == store.delivery_run("another-id", digest)
    assert store.delivery_run("another-id", "cd" * 32) is None
    assert store.get_run(run_id).origin == {"repository": "octo-org/claims-model"}
    assert store.list_runs(1)[0].trigger == "webhook"
    for delivery, payload in (("72d3162e", "cd" * 32), ("another-id", digest)):  # the same delivery twice: one run
        with pytest.raises(sa.exc.IntegrityError), store.tx() as c:
            store.create_run("0d1a26e6", "pushed", "dana", 1, "2025-01-01..2025-06-30", [], conn=c)
            store.add_delivery(c, delivery, payload, run_id)
    assert store.run_ids() == {run_id}
    with store.tx() as c:  # a run that goes takes its deliveries along (foreign key, on both backends)
        store.set_run_status(c, run_id, "queued", RunStatus.INTERRUPTED)
    assert store.prune_runs(0) == [run_id] and store.row_counts()["webhook_deliveries"] == 0


def test_an_autopilot_beat_renews_its_lease_and_reads_a_stop_through_stop_asked(store, monkeypatch):
    """beat_autopilot answers what stop_asked answers, by calling it in the beat's own transaction (it repeated the
    query)."""
    from engine.store import AUTOPILOT
    with store.tx() as c:
        session = store.open_autopilot(c, "dana", None, "owner-1")
    asked, stop_asked = [], store.stop_asked
    monkeypatch.setattr(store, "stop_asked", lambda s, conn=None: asked.append((s, conn is not None)) or
                        stop_asked(s, conn=conn))
    assert store.beat_autopilot(session, "owner-1") is False
    assert store.ask_autopilot_to_stop(session) == 1
    assert store.beat_autopilot(session, "owner-1") is True and store.stop_asked(session) is True
    assert asked == [(session, True), (session, True), (session, False)]
    lease = store.leases(f"{AUTOPILOT}{session}", 60, exact=True)
    assert [(row["owner"], row["alive"]) for row in lease] == [("owner-1", True)]

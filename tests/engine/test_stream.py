"""The live claims stream on a promoted lab: scenarios, delayed labels, retention, leases, versions, restarts.

Claims are produced with `stream.produce(n)` (what each scheduler tick does), so nothing here waits on a timer
except the two tests that run real worker processes, which wait by condition.
"""
from __future__ import annotations

import signal
import threading

import pytest
import sqlalchemy as sa

from engine.config import CHAMPION, STAGING
from engine.errors import BadInput, Refused
from engine.lab import Lab
from engine.ml.claims import CATEGORIES, FEATURES
from engine.states import RunStatus
from engine.store import leases, stream_claims, timestamp
from engine.stream import (
    DEFAULT_LABEL_DELAY,
    DEFAULT_RAMP,
    LEASE_SECONDS,
    MAX_BACKLOG_SECONDS,
    MAX_BATCH_SECONDS,
    MIN_ROWS,
    PRODUCER,
    RETRAIN_MIN_ROWS,
    SNAPSHOT_EVERY,
    WINDOW,
    Stream,
    snapshot_rows,
)
from tests.conftest import BACKENDS, cli_env, engine_cli, kill_group, lab_on, start_worker, wait_until

RETENTION = 8000


def promote(lab: Lab, seed: int, by: str = "alice") -> int:
    """Commit, run CI and CD, approve: a promoted run of `seed`; its id."""
    run_id = lab.commit(message=f"model from seed {seed}", seed=seed, author=by)
    lab.runner.run_until_idle()
    lab.continue_run(run_id, by=by)
    lab.runner.run_until_idle()
    lab.approve(run_id, by=by, comment="ship it")
    lab.runner.run_until_idle()
    assert lab.run(run_id).status == RunStatus.PROMOTED.value, lab.run(run_id).steps
    return run_id


@pytest.fixture(scope="module", params=BACKENDS)
def slab(request, tmp_path_factory, mlflow_template):
    """A lab on one backend with version 1 promoted; its stream keeps at most RETENTION claims."""
    with lab_on(request, tmp_path_factory, mlflow_template, stream_retention=RETENTION) as lab:
        promote(lab, seed=21)
        yield lab


# Tests whose behaviour does not depend on the store run on the SQLite lab of the module only (same instance).
SQLITE_ONLY = pytest.mark.parametrize("slab", ["sqlite"], indirect=True)


def start(lab: Lab, scenario: str = "none", **kwargs) -> Stream:
    lab.stream.start(scenario=scenario, ramp=kwargs.pop("ramp", 0), by="test", **kwargs)
    return lab.stream


def stored(lab: Lab, *columns) -> list:
    with lab.store.engine.connect() as c:
        return c.execute(sa.select(*[stream_claims.c[n] for n in columns]).order_by(stream_claims.c.seq)).all()


def latest_features(lab: Lab) -> dict:
    snap = lab.stream.snapshots(limit=1)[0]
    assert snap["status"] == "ok"
    return {f["feature"]: f["psi"] for f in snap["detail"]["features"]}, snap


# ---- controls -------------------------------------------------------------------------------------------------
def test_starting_without_a_champion_is_refused_and_changes_nothing(settings):
    lab = Lab(settings)
    try:
        before = lab.stream.state()
        with pytest.raises(Refused, match="promote a model first"):
            lab.stream.start(rate=20, by="test")
        assert lab.stream.state() == before and not before["enabled"]
    finally:
        lab.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 0}, "rate 0 is out of range"),
    ({"rate": 1e9}, "at most 5000 claims per second"),
    ({"rate": "fast"}, "rate 'fast' is not a number"),
    ({"rate": float("nan")}, "rate nan is out of range"),
    ({"scenario": "meteor"}, "unknown scenario 'meteor'; use one of: none, inflation"),
    ({"ramp": -1}, "ramp -1 is out of range"),
    ({"ramp": 2.5}, "ramp 2.5 is not a whole number"),
    ({"label_delay": "soon"}, "label delay 'soon' is not a whole number"),
])
def test_bad_controls_are_refused_and_change_nothing(slab, kwargs, message):
    before = slab.stream.state()
    with pytest.raises(BadInput, match=message):
        slab.stream.start(by="test", **kwargs)
    assert slab.stream.state() == before


def test_the_public_demo_caps_the_rate_and_says_so(slab):
    from dataclasses import replace
    demo = Lab(replace(slab.settings, demo=True, demo_max_stream_rate=20.0))
    try:
        before = demo.stream.state()
        with pytest.raises(BadInput, match="at most 20 claims per second in this public demo"):
            demo.stream.start(rate=21, by="visitor")
        assert demo.stream.state() == before
        assert demo.stream.max_rate == 20.0 and slab.stream.max_rate == 5000.0
    finally:
        demo.close()


def test_controls_persist_for_another_process(slab):
    start(slab, "aging", rate=250, ramp=400, label_delay=123)
    other = Lab(slab.settings)  # a page refresh, a second browser, an app restart: a new reader
    try:
        state = other.stream.state()
        assert (state["enabled"], state["rate"], state["scenario"], state["ramp"], state["label_delay"]) == \
            (True, 250, "aging", 400, 123)
        slab.stream.stop(by="test")
        assert other.stream.state()["enabled"] is False
    finally:
        other.close()


# ---- what is stored --------------------------------------------------------------------------------------------
def test_each_claim_is_stored_with_its_decision_version_and_hidden_truth(slab):
    stream = start(slab, label_delay=300)
    first = stream.state()["next_seq"]
    assert stream.produce(1000) == 1000
    rows = slab.stream.claims(limit=1000)
    assert len(rows) == 1000 and rows["seq"].tolist() == list(range(first + 999, first - 1, -1))
    assert (rows["champion_version"] == 1).all()
    assert rows["p_approved"].between(0, 1).all()
    threshold = slab.tracking.load_model(1).threshold
    assert (rows["approved"] == (rows["p_approved"] >= threshold)).all()
    for col, allowed in CATEGORIES.items():
        assert set(rows[col]) <= set(allowed)
    assert "hidden_outcome" not in rows.columns  # the truth is not shown before it arrives


def test_labels_arrive_only_after_the_delay(slab):
    stream = start(slab, label_delay=300)
    stream.produce(700)
    end = stream.state()["next_seq"]
    rows = stored(slab, "seq", "outcome", "hidden_outcome")
    for seq, outcome, hidden in rows:
        if seq < end - 300:
            assert outcome == hidden, seq
        else:
            assert outcome is None, seq
    assert stream.state()["labelled_seq"] == end - 300


def test_a_batch_scored_after_stop_is_dropped(slab):
    stream = start(slab)
    stream.produce(100)
    before = stream.state()["next_seq"]
    slab.stream.stop(by="test")  # lands while the next batch would be scored
    assert stream.produce(100) == 0
    assert stream.state()["next_seq"] == before and len(stored(slab, "seq")) == len(set(stored(slab, "seq")))
    assert max(r[0] for r in stored(slab, "seq")) == before - 1


def test_retention_keeps_the_newest_claims(slab):
    stream = start(slab)
    for _ in range(5):
        stream.produce(2500)
    end = stream.state()["next_seq"]
    seqs = [r[0] for r in stored(slab, "seq")]
    assert len(seqs) == RETENTION and seqs == list(range(end - RETENTION, end))


def test_retention_holds_after_another_producer_kept_more(slab):
    # A producer forgets only the claims since its own last cut while the batch before was its own; after another
    # producer's batches (which may have kept more), it forgets every claim older than its retention.
    from dataclasses import replace
    stream = start(slab)
    stream.produce(2500)
    other = Lab(replace(slab.settings, stream_retention=3 * RETENTION))
    try:
        for _ in range(2):
            other.stream.produce(RETENTION)
        assert len(stored(slab, "seq")) > RETENTION
    finally:
        other.close()
    for _ in range(2):
        stream.produce(1000)
        end = stream.state()["next_seq"]
        assert [r[0] for r in stored(slab, "seq")] == list(range(end - RETENTION, end))


def test_labels_of_consecutive_batches_arrive_exactly_at_the_delay(slab):
    # A batch larger than the delay stores its own due claims labelled; the next batch labels the previous one's
    # tail. Either way a claim is labelled exactly when label_delay later claims exist, with its hidden truth.
    stream = start(slab, label_delay=300)
    stream.produce(300)  # an earlier, shorter delay may have labelled claims up to here already
    for size in (250, 700, 100, 1):
        stream.produce(size)
        end = stream.state()["next_seq"]
        for seq, outcome, hidden, labelled_at in stored(slab, "seq", "outcome", "hidden_outcome", "labelled_at"):
            assert (outcome, labelled_at is None) == ((hidden, False) if seq < end - 300 else (None, True)), seq
        assert stream.state()["labelled_seq"] == end - 300


def test_a_batch_costs_the_same_statements_whatever_its_size(slab, monkeypatch):
    # One INSERT for the whole batch (not one per row or per page of rows), one UPDATE for the labels that arrive,
    # one DELETE for retention: the round trips of a batch do not grow with it.
    monkeypatch.setattr("engine.stream.SNAPSHOT_EVERY", 10**12)  # snapshots are counted on their own
    stream = start(slab, label_delay=300)
    stream.produce(RETENTION)  # retention is reached: every batch below also forgets claims

    def statements(count: int) -> list[str]:
        seen, me = [], threading.get_ident()

        def record(conn, cursor, statement, parameters, context, executemany):
            if threading.get_ident() == me:  # not a background thread's heartbeat meanwhile
                seen.append(" ".join(statement.split()[:3]))
        sa.event.listen(slab.store.engine, "before_cursor_execute", record)
        try:
            assert stream.produce(count) == count
        finally:
            sa.event.remove(slab.store.engine, "before_cursor_execute", record)
        return seen

    small, large = statements(10), statements(3000)
    assert sorted(small) == sorted(large), (small, large)
    assert sum(s.startswith("INSERT INTO stream_claims") for s in large) == 1
    assert len(large) <= 10, large


def test_text_and_numbers_are_stored_exactly_as_given(store):
    # PostgreSQL receives a batch as array literals: quoting, NULLs and float precision must survive.
    names = ["plain", 'a "quoted" one', "back\\slash", "comma, {braces}", "NULL", "ünïcode", " padded "]
    floats = [0.1, 1e-300, 1.7976931348623157e308, -0.0, 123456789.12345679, 2.0 / 3.0, 5e-324]
    n = len(names)
    columns = {"seq": list(range(n)), "claim_id": [2**62 + i for i in range(n)], "ts": floats,
               "scenario": names, "intensity": floats[::-1], "cpt_bucket": names[::-1], "provider_type": names,
               "diagnosis_group": names, "billed_amount": floats, "allowed_amount": floats, "patient_age": floats,
               "champion_version": [3] * n, "p_approved": floats, "approved": [True, False] * 3 + [True],
               "shadow_version": [None, 2] * 3 + [None], "shadow_p_approved": [None, 0.25] * 3 + [None],
               "shadow_approved": [None, True] * 3 + [None], "hidden_outcome": [False, True] * 3 + [False]}
    with store.tx() as c:
        store.add_stream_claims(c, columns, label_until=3, labelled_from=0, keep_from=0)
    with store.engine.connect() as c:
        rows = c.execute(sa.select(stream_claims).order_by(stream_claims.c.seq)).mappings().all()
    for name, values in columns.items():
        assert [r[name] for r in rows] == values, name
    assert [r["outcome"] for r in rows] == columns["hidden_outcome"][:3] + [None] * (n - 3)
    assert [r["labelled_at"] is None for r in rows] == [False] * 3 + [True] * (n - 3)


def test_a_late_tick_catches_up_on_the_claims_it_owes(slab):
    # A slow batch or a busy machine delays the next tick: it produces what the elapsed time owes, in batches of
    # at most MAX_BATCH_SECONDS of claims; only a backlog older than MAX_BACKLOG_SECONDS is skipped.
    rate = 100
    stream = start(slab, rate=rate)
    with slab.store.tx() as c:
        c.execute(sa.delete(leases).where(leases.c.name == PRODUCER))  # whoever held it in an earlier test
    batches = []
    produce = stream.produce
    stream.produce = lambda count, produced_at=None: batches.append(count) or produce(count, produced_at)
    try:
        for behind, owed in ((5.0, 5.0 * rate), (60.0, MAX_BACKLOG_SECONDS * rate)):
            with slab.store.tx() as c:
                slab.store.set_stream(c, produced_at=timestamp() - behind)
            before, batches[:] = stream.state()["next_seq"], []
            stream.tick()
            made = stream.state()["next_seq"] - before
            assert owed <= made < owed + 3 * rate, (behind, made)  # plus the seconds the tick itself took
            assert sum(batches) == made and max(batches) <= MAX_BATCH_SECONDS * rate, batches
    finally:
        del stream.produce
        slab.stream.stop(by="test")
        stream.tick()  # gives the lease up


def test_no_claim_id_is_stored_twice_even_when_two_producers_race(slab):
    import threading
    stream = start(slab)
    other = Lab(slab.settings)
    try:
        barrier, errors = threading.Barrier(2), []

        def race(s):
            barrier.wait()
            try:
                s.produce(500)
            except Refused as exc:
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(s,)) for s in (stream, other.stream)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    ids = [r[0] for r in stored(slab, "claim_id")]
    assert len(ids) == len(set(ids))
    seqs = [r[0] for r in stored(slab, "seq")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap and no repeat
    assert len(errors) <= 1


def test_one_producer_holds_the_lease(slab):
    start(slab, rate=50)
    first, second = Lab(slab.settings), Lab(slab.settings)

    def take(lab) -> bool:
        return lab.store.take(PRODUCER, lab.stream.owner, LEASE_SECONDS)
    try:
        assert take(first) is True
        assert take(second) is False  # held and fresh
        before = second.stream.state()["next_seq"]
        second.stream.tick()  # a tick without the lease produces nothing
        assert second.stream.state()["next_seq"] == before
        with slab.store.tx() as c:  # the holder died: its lease ran out (on the database's clock)
            c.execute(sa.update(leases).where(leases.c.name == PRODUCER).values(renewed_at=0))
        assert take(second) is True
        assert take(first) is False
        second.stream.release()
        assert take(first) is True
        first.stream.tick()  # the holder's own tick: producing, holding
        assert first.stream.state()["producer"] == {"owner": first.stream.owner, "alive": True}

        # Stopped, the holder gives the lease up at its next tick; a tick of another runner leaves it alone.
        slab.stream.stop(by="test")
        second.stream.tick()
        assert second.stream.state()["producer"]["owner"] == first.stream.owner
        first.stream.tick()
        assert first.stream.state()["producer"] == {"owner": None, "alive": False}
    finally:
        first.close()
        second.close()


# ---- scenarios: each moves what it should and leaves the rest quiet --------------------------------------------
def test_no_drift_stays_quiet(slab):
    start(slab, "none").produce(WINDOW)
    psi, snap = latest_features(slab)
    assert max(psi.values()) < 0.1, psi
    assert snap["level"] == "none"


def test_inflation_moves_amounts_not_providers(slab):
    start(slab, "inflation").produce(WINDOW)
    psi, _ = latest_features(slab)
    assert psi["billed_amount"] >= 0.25 and psi["allowed_amount"] >= 0.25, psi
    assert psi["provider_type"] < 0.1 and psi["patient_age"] < 0.1, psi


def test_telehealth_surge_moves_providers_not_amounts(slab):
    start(slab, "telehealth_surge").produce(WINDOW)
    psi, _ = latest_features(slab)
    assert psi["provider_type"] >= 0.25, psi
    assert psi["billed_amount"] < 0.1 and psi["allowed_amount"] < 0.1, psi


def test_aging_and_case_mix_move_their_features(slab):
    start(slab, "aging").produce(WINDOW)
    psi, _ = latest_features(slab)
    assert psi["patient_age"] >= 0.25 and psi["provider_type"] < 0.1, psi
    start(slab, "case_mix").produce(WINDOW)
    psi, _ = latest_features(slab)
    assert psi["cpt_bucket"] >= 0.25 and psi["diagnosis_group"] >= 0.1 and psi["patient_age"] < 0.1, psi


def test_concept_drift_is_seen_only_in_realised_accuracy(slab):
    start(slab, "none", label_delay=300).produce(WINDOW)
    _, calm = latest_features(slab)
    start(slab, "concept_drift", label_delay=300).produce(WINDOW)
    psi, turned = latest_features(slab)
    assert max(psi.values()) < 0.1, psi  # the inputs did not move
    assert turned["realised_accuracy"] < calm["realised_accuracy"] - 0.15, (turned, calm)
    assert turned["estimated_accuracy"] > turned["realised_accuracy"] + 0.15  # the model is as sure as ever
    assert abs(turned["estimated_accuracy"] - calm["estimated_accuracy"]) < 0.05


# ---- performance monitoring: realised figures on arriving labels, and their level -------------------------------
def test_concept_drift_raises_a_performance_alert_within_a_few_thousand_claims_and_no_drift_never_does(slab):
    """Default ramp and label delay. No-drift windows stay "none"; concept drift, invisible to PSI, alerts on the
    labels that arrive, a few thousand claims after its onset, with the evidence the closed loop can read."""
    stream = start(slab, "none", ramp=DEFAULT_RAMP, label_delay=DEFAULT_LABEL_DELAY)
    for _ in range(2 * WINDOW // SNAPSHOT_EVERY):
        stream.produce(SNAPSHOT_EVERY)  # one snapshot a batch; the second half's see only no-drift claims
    calm = slab.stream.snapshots(limit=WINDOW // SNAPSHOT_EVERY)
    assert [s["performance_level"] for s in calm] == ["none"] * len(calm), [s["detail"]["performance"]["evidence"]
                                                                            for s in calm]
    onset = start(slab, "concept_drift", ramp=DEFAULT_RAMP, label_delay=DEFAULT_LABEL_DELAY).state()["next_seq"]
    alert = None
    while alert is None and slab.stream.state()["next_seq"] - onset < 3 * WINDOW:
        stream.produce(SNAPSHOT_EVERY)
        latest = slab.stream.snapshots(limit=1)[0]
        alert = latest if latest["performance_level"] == "alert" else None
    assert alert is not None, "no performance alert within 15,000 claims of concept drift"
    assert alert["seq"] + 1 - onset <= 4000, alert["seq"] + 1 - onset  # a few thousand claims after onset
    assert alert["level"] == "none"  # the inputs did not move
    evidence = alert["detail"]["performance"]["evidence"]
    assert evidence["level"] == "alert" and evidence["metric"] in ("accuracy", "cost_per_claim")
    assert evidence["interval"][0] <= evidence["value"] <= evidence["interval"][1]
    status = slab.stream.status()
    assert status["performance_level"] == "alert" and status["performance_evidence"] == evidence
    row = snapshot_rows([alert])[0]
    assert row["performance_level"] == "alert" and row["accuracy_low"] <= row["realised_accuracy"]
    assert row["holdout_accuracy"] > row["accuracy_high"] and row["live_ece"] > row["holdout_ece"]


def test_a_ramp_brings_the_scenario_in_gradually(slab):
    stream = start(slab, "none")
    stream = start(slab, "inflation", ramp=2000)  # a new scenario ramps from the next claim on
    for _ in range(5):
        stream.produce(500)
    rows = slab.stream.claims(limit=2500).sort_values("seq")
    # Each batch is drawn at the intensity of its middle claim: 250/2000, 750/2000, ... capped at 1.
    per_batch = rows.groupby((rows["seq"] - rows["seq"].min()) // 500)["intensity"].unique()
    assert [list(v) for v in per_batch] == [[0.125], [0.375], [0.625], [0.875], [1.0]]


def test_a_small_window_says_not_enough_data(slab):
    from engine.ml.monitor import snapshot
    window = slab.stream.claims(limit=MIN_ROWS - 1)[[*FEATURES, "p_approved", "approved", "outcome",
                                                     "shadow_approved"]]
    ref = slab.stream.reference(1)
    result = snapshot(ref["features"], ref["p_approved"], window, MIN_ROWS)
    assert result["status"] == "not_enough_data" and result["level"] is None and result["features"] == []


# ---- versions: promotion, shadow, rollback ------------------------------------------------------------------
def test_shadow_decisions_appear_only_while_a_different_staging_exists(slab):
    stream = start(slab)
    assert slab.tracking.alias_version(STAGING) == slab.tracking.alias_version(CHAMPION) == 1
    stream.produce(200)
    assert slab.stream.claims(limit=200)["shadow_version"].isna().all()


@SQLITE_ONLY  # a second promotion costs a full CD run; the code path does not depend on the store
def test_promotion_and_rollback_switch_the_scoring_version_and_reference(slab):
    stream = start(slab)
    promote(slab, seed=22, by="bob")
    stream.produce(600)
    assert set(slab.stream.claims(limit=600)["champion_version"]) == {2}
    assert slab.stream.snapshots(limit=1)[0]["detail"]["reference"]["version"] == 2
    slab.tracking.set_alias(STAGING, 1)  # an older staging scores as a shadow; it is never served
    stream.produce(300)
    rows = slab.stream.claims(limit=300)
    assert set(rows["shadow_version"]) == {1} and set(rows["champion_version"]) == {2}
    assert rows["shadow_p_approved"].between(0, 1).all()
    slab.tracking.set_alias(STAGING, 2)
    stream.produce(100)
    assert slab.stream.claims(limit=100)["shadow_version"].isna().all()  # staging is the champion again
    slab.rollback(by="carol", reason="v2 denies too much")
    stream.produce(500)
    rows = slab.stream.claims(limit=500)
    # Production went back to 1; staging still holds 2, which now scores as a shadow but is not served.
    assert set(rows["champion_version"]) == {1} and set(rows["shadow_version"]) == {2}
    assert slab.stream.snapshots(limit=1)[0]["detail"]["reference"]["version"] == 1


# ---- processes ---------------------------------------------------------------------------------------------------
@SQLITE_ONLY  # process handling is store-independent; two producers on PostgreSQL are tested above
def test_a_restarted_worker_resumes_the_stream(slab, tmp_path):
    start(slab, rate=200)
    env = {**cli_env(slab.settings), "LAB_STREAM_TICK_SECONDS": "0.5"}
    begin = slab.stream.state()["next_seq"]
    first = start_worker(env, tmp_path / "w1.log")
    try:
        wait_until(lambda: slab.stream.state()["next_seq"] > begin + 200, 120, what="the first worker to produce")
    finally:
        kill_group(first, signal.SIGTERM)  # a clean stop releases the lease
    assert slab.stream.state()["producer"]["owner"] is None and slab.stream.state()["enabled"]
    paused = slab.stream.state()["next_seq"]
    second = start_worker(env, tmp_path / "w2.log")
    try:
        wait_until(lambda: slab.stream.state()["next_seq"] > paused + 200, 120, what="the second worker to resume")
    finally:
        kill_group(second, signal.SIGTERM)
    ids = [r[0] for r in stored(slab, "claim_id")]
    assert len(ids) == len(set(ids))


def test_cli_stream_commands(slab):
    env = cli_env(slab.settings)
    bad = engine_cli(env, "stream", "start", "--scenario", "meteor")
    assert bad.returncode == 2 and "unknown scenario 'meteor'" in bad.stderr
    ok = engine_cli(env, "stream", "start", "--rate", "30", "--scenario", "aging", "--ramp", "0")
    assert ok.returncode == 0, ok.stderr
    import json
    status = json.loads(ok.stdout)
    assert status["enabled"] and status["rate"] == 30 and status["scenario"] == "aging"
    slab.stream.produce(600)
    snaps = engine_cli(env, "stream", "snapshots", "--csv", "--limit", "3")
    assert snaps.returncode == 0 and snaps.stdout.splitlines()[0].startswith("ts,id,seq,champion_version")
    assert "performance_level" in snaps.stdout.splitlines()[0].split(",")
    status = json.loads(engine_cli(env, "stream", "status").stdout)
    assert status["latest_snapshot"]["status"] == "ok" and status["champion_version"] is not None
    # Both levels side by side, the performance level with the evidence that decided it.
    assert status["drift_level"] == status["latest_snapshot"]["level"]
    assert status["performance_level"] == status["latest_snapshot"]["performance_level"]
    assert status["performance_level"] is None or status["performance_evidence"]["metric"]
    stop = engine_cli(env, "stream", "stop")
    assert stop.returncode == 0 and json.loads(stop.stdout)["enabled"] is False


@SQLITE_ONLY  # scoring reads MLflow, never the state store: store-independent
@pytest.mark.parametrize("args, field_message", [
    (["--json", "not json"], "--json is not valid JSON"),
    (["--json", "[1, 2]"], "--json must be a JSON object"),
    ([], "give the claim"),
    (["--cpt-bucket", "Dentistry"], "cpt_bucket 'Dentistry' is not a known category"),
    (["--billed-amount", "-5"], "billed_amount -5 must be more than 0"),
    (["--allowed-amount", "9000"], "allowed_amount 9000 is more than billed_amount 4200"),
    (["--patient-age", "old"], "patient_age 'old' is not a number"),
])
def test_cli_score_refuses_each_bad_input_with_its_own_message(slab, args, field_message):
    claim = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Renal",
             "billed_amount": 4200, "allowed_amount": 3100, "patient_age": 45}
    import json
    base = ["--json", json.dumps(claim)] if args[:1] != ["--json"] and args else []
    done = engine_cli(cli_env(slab.settings), "score", *base, *args)
    assert done.returncode == 2, done.stderr
    assert field_message in done.stderr


@SQLITE_ONLY  # store-independent, as above
def test_cli_score_by_fields_matches_lab_score(slab):
    import json
    done = engine_cli(cli_env(slab.settings), "score", "--cpt-bucket", "Surgery", "--provider-type", "Hospital",
                      "--diagnosis-group", "Renal", "--billed-amount", "4200", "--allowed-amount", "3100",
                      "--patient-age", "45", "--explain")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = slab.score({"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Renal",
                           "billed_amount": 4200, "allowed_amount": 3100, "patient_age": 45})
    assert out["p_approved"] == pytest.approx(expected["p_approved"], abs=1e-12)
    assert out["base_value"] + sum(c["shap"] for c in out["contributions"]) == pytest.approx(out["p_approved"])


# ---- the closed loop (last: it leaves a queued retraining run behind) -------------------------------------
@SQLITE_ONLY  # store-independent
def test_in_the_demo_the_closed_loop_meets_the_cap_and_the_stream_goes_on(slab):
    # Its retraining commit is an action that queues work: at the demo's cap it waits, and the batch that took the
    # snapshot must not fail (a Refused used to escape produce() and the tick logged an outage).
    from dataclasses import replace
    demo = Lab(replace(slab.settings, demo=True, demo_max_active_runs=1))
    busy = demo.commit(message="holds the demo's only slot")
    stream = start(demo, "inflation", rate=5)
    try:
        stream.set_closed_loop(True, by="test")
        snapshots = len(stream.snapshots())
        stream.produce(WINDOW)  # a whole window of inflated claims
        for _ in range(3):
            stream.produce(500)  # one snapshot per batch: three major ones in a row
        assert [s["level"] for s in stream.snapshots(limit=3)] == ["major"] * 3
        assert len(stream.snapshots()) > snapshots and demo.open_drift_run() is None
    finally:
        stream.set_closed_loop(False, by="test")
        stream.stop(by="test")
        with demo.store.tx() as c:
            demo.store.interrupt_run(c, busy, "test over: the slot is free again")
        demo.close()


@SQLITE_ONLY  # store-independent
def test_closed_loop_commits_one_retraining_run_on_the_drifted_data(slab):
    # Outcomes arrive 1,500 claims late, so when the alarm is three snapshots old too few labels have come in
    # (and the stream keeps 8,000 claims: enough for a retrain once they have).
    stream = start(slab, "inflation", label_delay=1500)
    stream.produce(WINDOW)  # a whole window of inflated claims, while the loop is still off
    assert slab.open_drift_run() is None
    stream.set_closed_loop(True, by="test")
    try:
        for _ in range(3):
            stream.produce(500)  # one snapshot per batch: now three major ones in a row
        assert slab.open_drift_run() is None  # it waits for labelled claims since the alarm (RETRAIN_MIN_ROWS)
        stream.produce(RETRAIN_MIN_ROWS + 500)
        run_id = slab.open_drift_run()
        assert run_id is not None, [(a.action, a.comment) for a in slab.audit(3)]
        run = slab.run(run_id)
        assert run.trigger == "drift" and run.shift is None  # stored production claims, not a replay
        for _ in range(2):
            stream.produce(500)  # drift stays major, but one open retraining run is enough
        assert slab.open_drift_run() == run_id
        assert len([r for r in slab.runs(100) if r.author == "drift-monitor"]) == 1
        feed = slab.claims_sample(run_id, 5000)  # its feed is the drifted claims production stored
        assert feed["billed_amount"].median() > 1.5 * slab.claims_sample(1, 5000)["billed_amount"].median()
    finally:
        stream.set_closed_loop(False, by="test")

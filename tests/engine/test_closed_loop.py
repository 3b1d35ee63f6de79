"""The closed loop, whole and real: concept drift, the performance alert on arriving labels, the trigger with its
evidence, a retrain on the stored production claims, its gate and shadow test on production claims, approval,
promotion, and cost per claim lower after than before on the same drifted claims. Then the loop's discipline
(one open run, a cool-down after a rejected one, a cap per hour) and the manual retrain's refusals.

Claims are produced with `stream.produce(n)` (what each scheduler tick does); steps run with run_until_idle. The
cool-down is judged on the runs' stored times, which the test moves back (a clock it controls), never by waiting.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import sqlalchemy as sa

from engine import pipeline
from engine.errors import BadInput, Refused
from engine.feeds import production_claims
from engine.lab import Lab
from engine.ml.claims import label_array, stored_frame
from engine.ml.provenance import frame_digest
from engine.ml.threshold import Costs
from engine.states import RunStatus
from engine.store import runs, stream_claims
from engine.stream import (
    CLOSED_LOOP_SNAPSHOTS,
    LOOP_COOLDOWN_SECONDS,
    RETRAIN_MIN_ROWS,
    WINDOW,
    loop_evidence,
)
from tests.conftest import BACKENDS, cli_env, engine_cli, lab_on
from tests.engine.test_stream import promote

MAX_BATCHES = 80  # 40,000 claims: far more than the alarm and the labels it waits for need


# ---- the trigger's evidence (pure) -------------------------------------------------------------------------
def snap(i: int, level="none", performance=None, version=1) -> dict:
    return {"id": i, "seq": 500 * i - 1, "status": "ok", "champion_version": version, "level": level,
            "performance_level": performance, "max_psi": 0.4 if level == "major" else 0.01,
            "realised_accuracy": 0.6, "detail": {"features": [{"feature": "billed_amount", "psi": 0.4}],
                                                   "performance": {"evidence": {"metric": "accuracy", "value": 0.52,
                                                                                "reference": 0.83}}}}


def test_three_alarming_snapshots_of_one_champion_trigger_with_their_evidence():
    newest_first = [snap(9, performance="alert"), snap(8, performance="alert"), snap(7, "major", "alert"),
                    snap(6, "major"), snap(5)]
    ev = loop_evidence(newest_first)
    assert ev["snapshot_ids"] == [9, 8, 7] and ev["streak"] == 4
    assert ev["since_seq"] == 6 * 500  # the claims after the first alarming snapshot
    assert ev["levels"][0]["alarms"] == ["performance alert: accuracy 0.5200 against 0.83"]
    assert ev["levels"][2]["alarms"][0].startswith("input drift major: max PSI 0.400 (billed_amount)")
    assert ev["why"] == "input drift major and performance alert in 4 snapshots in a row"


@pytest.mark.parametrize("snapshots", [
    [snap(3, "major"), snap(2, "major")],                                   # too few
    [snap(3, "major"), snap(2, "moderate"), snap(1, "major")],              # not in a row
    [snap(3, "major", version=2), snap(2, "major"), snap(1, "major")],      # a promotion in between
    [snap(3, performance="warning"), snap(2, performance="warning"), snap(1, performance="warning")],
    [{**snap(3, "major"), "performance_level": None} for _ in range(0)],    # nothing at all
])
def test_no_trigger_without_three_alarms_in_a_row_of_one_champion(snapshots):
    assert loop_evidence(snapshots) is None


def test_an_alarm_from_before_the_current_scenario_began_does_not_count():
    # The stream was stopped and started again at claim 3,000 (or given a new scenario): the alarms before are
    # another story, so the streak, and the labels the retrain waits for, start at the first snapshot after.
    newest_first = [snap(9, "major"), snap(8, "major"), snap(7, "major"), snap(6, "major"), snap(5, "major")]
    assert loop_evidence(newest_first)["since_seq"] == 5 * 500 - 1 + 1
    ev = loop_evidence(newest_first, since_seq=3000)
    assert ev["streak"] == 3 and ev["since_seq"] == 7 * 500
    assert loop_evidence(newest_first, since_seq=4000) is None  # two alarms since: not yet


# ---- the whole loop -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=BACKENDS)
def loop_lab(request, tmp_path_factory, mlflow_template):
    """A lab on one backend with version 1 promoted (seed 31)."""
    with lab_on(request, tmp_path_factory, mlflow_template) as lab:
        promote(lab, seed=31)
        yield lab


def loop_audit(lab: Lab) -> list[dict]:
    """The closed loop's trigger records, oldest first."""
    return [a for a in lab.audit(500)[::-1] if a.action == "loop_trigger"]


def produce_until(stream, predicate, what: str):
    """Produce snapshot-sized batches until `predicate()` holds (bounded: the test fails, it does not hang)."""
    for _ in range(MAX_BATCHES):
        value = predicate()
        if value:
            return value
        stream.produce(500)
    raise AssertionError(f"no {what} after {MAX_BATCHES * 500:,} claims")


def cost_of(decisions: np.ndarray, frame) -> float:
    return Costs(**pipeline.spec("cd_full_train").params()["costs"]).per_claim(label_array(frame), decisions)


def test_concept_drift_is_caught_on_labels_retrained_on_production_and_cost_comes_back_down(loop_lab):
    lab, stream = loop_lab, loop_lab.stream
    stream.start(rate=100, scenario="none", ramp=0, label_delay=300, by="test")
    stream.produce(WINDOW)
    stream.set_closed_loop(True, by="test")
    onset = stream.state()["next_seq"]
    stream.start(scenario="concept_drift", by="test")

    # Inputs do not move, so PSI stays quiet; the arriving labels raise the alert and the loop fires.
    run_id = produce_until(stream, lab.open_drift_run, "retrain run")
    alarms = [s for s in stream.snapshots(40) if s["seq"] >= onset]
    assert all(s["level"] != "major" for s in alarms), [s["level"] for s in alarms]
    trail = loop_audit(lab)
    assert [a.detail["kind"] for a in trail] == ["not_enough_labels", "committed"]  # waited for labels once
    evidence = trail[-1].detail
    assert trail[-1].run_id == run_id and len(evidence["snapshot_ids"]) == CLOSED_LOOP_SNAPSHOTS
    assert all(lv["performance_level"] == "alert" for lv in evidence["levels"]) and evidence["since_seq"] > onset

    # It trains on stored production claims whose labels had arrived, split by time, never on a replay.
    run = lab.run(run_id)
    assert run.trigger == "drift" and run.shift is None
    production = run.origin["production"]
    first, cut = production["training"]
    assert first == evidence["since_seq"] and production["evaluation"][0] == cut
    assert cut - first >= 0.74 * RETRAIN_MIN_ROWS
    feed = lab.claims_sample(run_id, 50_000)
    with lab.store.engine.connect() as c:
        kept = c.execute(sa.select(stream_claims).where(stream_claims.c.seq >= first,
                                                        stream_claims.c.seq < cut).order_by(stream_claims.c.seq))
        assert frame_digest(feed) == frame_digest(stored_frame([dict(r) for r in kept.mappings()]))

    lab.runner.run_until_idle()
    assert lab.run(run_id).status == RunStatus.CI_COMPLETE.value
    lab.continue_run(run_id, by="test")
    lab.runner.run_until_idle()
    run = lab.run(run_id)
    steps = {s.name: s for s in run.steps}
    assert run.status == RunStatus.AWAITING_APPROVAL.value, steps["evaluate_vs_champion"].error

    # The gate judged on the newest production claims, which it did not train on, on the interval's bound.
    holdout = production_claims(lab.store, run, "evaluation")
    gate = steps["evaluate_vs_champion"].outputs
    assert gate["holdout_digest"] == frame_digest(holdout) and gate["holdout_rows"] == len(holdout)
    assert "production claims" in gate["holdout_source"] and "interval's bound" in gate["gate"]["rule"]
    assert all(c["decided_on"].startswith("lower bound") and c["interval"][0] >= c["threshold"]
               for c in gate["gate"]["checks"])
    datasets = steps["cd_full_train"].outputs["datasets"]
    assert datasets["evaluation"]["digest"] == frame_digest(holdout)

    lab.approve(run_id, by="test", comment="the retrain beats the champion on production claims")
    stream.produce(500)  # production goes on while the run deploys
    lab.runner.run_until_idle()
    run = lab.run(run_id)
    steps = {s.name: s for s in run.steps}
    assert run.status == RunStatus.PROMOTED.value, steps["shadow_monitor"].error
    version = steps["cd_full_train"].outputs["model_version"]
    shadow = steps["shadow_monitor"].outputs
    assert shadow["tested_version"] == version and shadow["source"].startswith("current production traffic")
    assert shadow["drift"]["level"] != "major"  # production traffic against production training data
    assert lab.tracking.alias_version("champion") == version

    # Cost per claim on the same drifted claims: those served by the new champion, rescored by the old one.
    promoted_at, triggers = stream.state()["next_seq"], len(loop_audit(lab))
    stream.produce(3000)
    with lab.store.engine.connect() as c:
        served = [dict(r) for r in c.execute(sa.select(stream_claims).where(
            stream_claims.c.seq >= promoted_at, stream_claims.c.outcome.is_not(None))
            .order_by(stream_claims.c.seq)).mappings()]
    assert len(served) >= 2500 and {r["champion_version"] for r in served} == {version}
    frame = stored_frame(served)
    old = lab.tracking.load_model(1).predict(frame, enforce_schema=False)["decision"].to_numpy() == "Approved"
    after, before = cost_of(np.array([r["approved"] for r in served]), frame), cost_of(old, frame)
    print(f"cost per claim on {len(frame):,} drifted claims: champion v1 {before:.4f}, retrain v{version} {after:.4f}")
    assert after < before

    # The new champion's own snapshots do not re-trigger: the alarm was about version 1.
    stream.produce(1500)
    assert lab.open_drift_run() is None and len(loop_audit(lab)) == triggers


def test_one_open_retrain_then_a_cooldown_after_a_rejection_then_the_hourly_cap(loop_lab, monkeypatch):
    lab, stream = loop_lab, loop_lab.stream
    import engine.stream as S
    stream.start(scenario="inflation", by="test")  # a change of inputs: PSI turns major for the new champion
    first = produce_until(stream, lab.open_drift_run, "retrain run")
    stream.produce(1500)  # the alarm goes on
    assert lab.open_drift_run() == first
    assert loop_audit(lab)[-1].detail["kind"] == "open_run"
    with pytest.raises(Refused, match=f"run {first} is already retraining"):
        lab.retrain_on_production(by="test")

    lab.runner.run_until_idle()
    lab.continue_run(first, by="test")
    lab.runner.run_until_idle()
    if lab.run(first).status == RunStatus.AWAITING_APPROVAL.value:
        lab.reject(first, by="test", comment="not this one")
    assert lab.run(first).status in ("rejected", "failed")
    stream.produce(1500)
    assert lab.open_drift_run() is None and loop_audit(lab)[-1].detail["kind"] == "cooldown"
    deferrals = len(loop_audit(lab))
    stream.produce(1500)
    assert len(loop_audit(lab)) == deferrals  # one record per alarm and reason, not one per snapshot

    with lab.store.tx() as c:  # the cool-down has passed
        c.execute(sa.update(runs).where(runs.c.id == first).values(
            finished_at=runs.c.finished_at - LOOP_COOLDOWN_SECONDS - 1))
    this_hour = len(lab.store.runs_with_trigger(("drift", "production"), time.time() - 3600))
    monkeypatch.setattr(S, "LOOP_MAX_PER_HOUR", this_hour)  # the cap is reached
    stream.produce(1500)
    assert lab.open_drift_run() is None and loop_audit(lab)[-1].detail["kind"] == "hourly_cap"
    monkeypatch.setattr(S, "LOOP_MAX_PER_HOUR", this_hour + 1)
    second = produce_until(stream, lab.open_drift_run, "second retrain run")
    assert second > first and loop_audit(lab)[-1].run_id == second
    with lab.store.tx() as c:
        lab.store.interrupt_run(c, second, "test over")
    stream.set_closed_loop(False, by="test")
    stream.stop(by="test")


@pytest.mark.parametrize("loop_lab", ["sqlite"], indirect=True)
def test_a_manual_retrain_refuses_bad_input_and_too_few_labels_and_changes_nothing(loop_lab, tmp_path,
                                                                                   monkeypatch):
    lab = loop_lab
    before = lab.store.count_runs()
    for rows in (5, 10**9, "many", True):
        with pytest.raises(BadInput, match="--rows"):
            lab.retrain_on_production(by="test", rows=rows)
    with pytest.raises(Refused, match="labelled production claims"):
        lab.retrain_on_production(by="test", since_seq=lab.stream.state()["next_seq"])
    out = engine_cli(cli_env(lab.settings), "stream", "retrain", "--rows", "12")
    assert out.returncode == 2 and "--rows 12 is out of range" in out.stderr
    assert lab.store.count_runs() == before
    # Whatever the tests before left behind, enough labelled claims for a retrain (no drift: a manual retrain).
    if not lab.stream.state()["enabled"]:
        lab.stream.start(scenario="none", by="test")
    produce_until(lab.stream, lambda: lab.store.labelled_span()["count"] >= RETRAIN_MIN_ROWS, "labelled claims")
    run_id = lab.retrain_on_production(by="dana", rows=RETRAIN_MIN_ROWS)
    run = lab.run(run_id)
    assert run.trigger == "production" and run.author == "dana"
    assert len(lab.claims_sample(run_id, 50_000)) == RETRAIN_MIN_ROWS - len(production_claims(lab.store, run,
                                                                                              "evaluation"))
    # A second one while it is open: refused by the one check, asked for or already being committed (the check
    # again under the lock, where another caller may have got in first), in the same words, changing nothing.
    checks, check = [], Lab._refuse_a_second_retrain
    monkeypatch.setattr(Lab, "_refuse_a_second_retrain", lambda self: checks.append(self) or check(self))
    (first, cut), (_, end) = run.origin["production"]["training"], run.origin["production"]["evaluation"]
    before = lab.store.count_runs()
    with pytest.raises(Refused) as asked:
        lab.retrain_on_production(by="test", rows=RETRAIN_MIN_ROWS)
    with pytest.raises(Refused) as committing:
        lab.commit(message="a second retrain", trigger="production", production=(first, cut, end))
    said = f"run {run_id} is already retraining on production data; let it finish (or reject it) first"
    assert str(asked.value) == str(committing.value) == said and checks == [lab, lab]
    assert lab.store.count_runs() == before
    with lab.store.tx() as c:
        lab.store.interrupt_run(c, run_id, "test over")

"""Two promotions, then rollback, on SQLite and PostgreSQL with a real MLflow store; scoring follows champion.

Each backend gets one lab for the module: run A (version 1) and run B (version 2, another seed) are promoted in
turn, then champion is rolled back to version 1 and a second rollback is refused. Fixtures record snapshots
(and the champion's decision on a claim) at each point; the tests read them.
"""
from __future__ import annotations

import copy

import pytest
from sqlalchemy import event

from engine.config import CHAMPION, MODEL_NAME
from engine.errors import BadInput, Refused
from engine.lab import Lab
from engine.ml.claims import APPROVED, DENIED
from engine.ml.model import predict_approval
from engine.states import RunStatus

SEED_A, SEED_B = 41, 42
CLAIM = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Cardiovascular",
         "billed_amount": 4200.0, "allowed_amount": 3100.0, "patient_age": 61}


def promote(lab: Lab, run_id: int, by: str) -> dict:
    """Continue a ci_complete run, approve it at the gate and run it to rest; its snapshot."""
    lab.continue_run(run_id, by=by)
    lab.runner.run_until_idle()
    assert lab.run(run_id).status == RunStatus.AWAITING_APPROVAL.value, lab.run(run_id).steps
    lab.approve(run_id, by=by, comment=f"ship run {run_id}")
    lab.runner.run_until_idle()
    return copy.deepcopy(lab.run(run_id))


def state(lab: Lab) -> dict:
    """What a rollback could change: the champion, its history, version tags, row counts."""
    return {"champion": lab.tracking.alias_version(CHAMPION), "history": lab.champion_history(),
            "versions": [(v["version"], sorted(v["aliases"]), v["tags"]) for v in lab.tracking.versions()],
            "rows": lab.store.row_counts()}


@pytest.fixture(scope="module")
def two_promotions(mlab):
    """A then B promoted (CI of both runs together); champion's decision on CLAIM after each promotion."""
    a = mlab.commit(message="first model", seed=SEED_A, author="alice")
    b = mlab.commit(message="retrain on fresh seed", seed=SEED_B, author="bob")
    mlab.runner.run_until_idle()
    runs = {"a": promote(mlab, a, "alice")}
    score_v1 = mlab.score(CLAIM)
    runs["b"] = promote(mlab, b, "bob")
    return {"runs": runs, "score_v1": score_v1, "score_v2": mlab.score(CLAIM), "state": state(mlab),
            "allowed": mlab.allowed_actions(None)}


ROLLBACK_FAULTS = ("record_alias", "add_audit", "set_version_tags", "set_alias", "commit")


@pytest.fixture(scope="module")
def faulty_rollbacks(mlab, two_promotions):
    """A rollback failing at each of its side effects in turn (before the real one): error, state around it."""
    out = {}
    for point in ROLLBACK_FAULTS:
        boom = RuntimeError(f"{point} broke")

        def fail(*_args, **_kwargs):
            raise boom  # noqa: B023 - called within this iteration
        before = state(mlab)
        with pytest.MonkeyPatch.context() as mp:
            if point in ("record_alias", "add_audit"):
                mp.setattr(mlab.store, point, fail)
            elif point == "set_version_tags":  # the tags land, then the registry reports a failure
                real = mlab.tracking.set_version_tags
                mp.setattr(mlab.tracking, point, lambda v, tags, real=real: (real(v, tags), fail()))
            elif point == "set_alias":  # the move to version 1 lands, then reports a failure; the undo works
                real = mlab.tracking.set_alias
                mp.setattr(mlab.tracking, point,
                           lambda alias, v, real=real: (real(alias, v), fail()) if v == 1 else real(alias, v))
            else:
                event.listen(mlab.store.engine, "commit", fail)
            try:
                with pytest.raises(RuntimeError) as raised:
                    mlab.rollback(by="carol", reason="v2 denies too many surgery claims")
            finally:
                if point == "commit":
                    event.remove(mlab.store.engine, "commit", fail)
        out[point] = {"error": raised.value, "before": before, "after": state(mlab)}
    return out


@pytest.fixture(scope="module")
def rolled_back(mlab, two_promotions, faulty_rollbacks):
    """Champion rolled back to v1 by carol; then a second rollback tried (refused) with the state around it."""
    result = mlab.rollback(by="carol", reason="v2 denies too many surgery claims")
    after = state(mlab)
    before_again = state(mlab)
    try:
        mlab.rollback(by="carol", reason="once more")
        error = None
    except Refused as exc:
        error = exc
    return {"result": result, "state": after, "score": mlab.score(CLAIM), "again": error,
            "before_again": before_again, "after_again": state(mlab), "allowed": mlab.allowed_actions(None)}


# ---- two promotions -------------------------------------------------------------------------------------------
def test_each_promotion_moves_champion(two_promotions):
    a, b = two_promotions["runs"]["a"], two_promotions["runs"]["b"]
    assert a.status == b.status == RunStatus.PROMOTED.value
    outputs = {name: {s.name: s.outputs for s in run.steps} for name, run in (("a", a), ("b", b))}
    assert outputs["a"]["promote_prod"] == {"alias": CHAMPION, "version": 1, "previous_champion": None,
                                            "shadow_tested_version": 1}
    assert outputs["b"]["promote_prod"] == {"alias": CHAMPION, "version": 2, "previous_champion": 1,
                                            "shadow_tested_version": 2}
    assert outputs["b"]["evaluate_vs_champion"]["champion"]["version"] == 1
    assert outputs["b"]["shadow_monitor"]["champion_version"] == 1
    assert outputs["b"]["shadow_monitor"]["staging_version"] == 2
    assert two_promotions["state"]["champion"] == 2


def test_champion_history_before_rollback(two_promotions):
    history = two_promotions["state"]["history"]
    assert [(h["version"], h["action"], h["moved_by"]) for h in history] == [(1, "promote", "alice"),
                                                                           (2, "promote", "bob")]
    assert history[0]["until"] == history[1]["since"] and history[1]["until"] is None
    assert two_promotions["allowed"]["rollback"] is None


@pytest.mark.parametrize("point", ROLLBACK_FAULTS)
def test_a_rollback_that_fails_at_any_side_effect_changes_nothing(faulty_rollbacks, point):
    """Each side effect of a rollback fails in turn: champion, its history, tags and audit stay as they were."""
    fault = faulty_rollbacks[point]
    assert str(fault["error"]) == f"{point} broke"
    assert fault["before"]["champion"] == 2
    assert fault["after"] == fault["before"]


def test_a_rollback_with_a_reason_over_the_limit_is_bad_input_and_changes_nothing(mlab, two_promotions):
    before = state(mlab)
    with pytest.raises(BadInput, match="--reason is 100,000 characters long; the limit is 2,000"):
        mlab.rollback(by="carol", reason="x" * 100_000)
    assert state(mlab) == before


def test_score_serves_whatever_champion_points_at(mlab, two_promotions, rolled_back):
    assert two_promotions["score_v1"]["version"] == 1
    assert two_promotions["score_v2"]["version"] == 2
    assert rolled_back["score"]["version"] == 1
    for scored in (two_promotions["score_v1"], two_promotions["score_v2"], rolled_back["score"]):
        assert scored["model"] == MODEL_NAME
        assert 0.0 <= scored["p_approved"] <= 1.0
        assert scored["decision"] in (APPROVED, DENIED)
        assert scored["claim"]["cpt_bucket"] == "Surgery" and scored["claim"]["patient_age"] == 61
    from engine.lab import claim_frame
    expected = float(predict_approval(mlab.tracking.load_model(1), claim_frame(CLAIM))[0])
    assert rolled_back["score"]["p_approved"] == pytest.approx(expected, abs=1e-4)
    assert rolled_back["score"]["p_approved"] == pytest.approx(two_promotions["score_v1"]["p_approved"], abs=1e-12)


# ---- rollback -------------------------------------------------------------------------------------------------
def test_rollback_moves_champion_back_to_version_1(rolled_back):
    assert rolled_back["result"] == {"from_version": 2, "to_version": 1, "model": MODEL_NAME}
    assert rolled_back["state"]["champion"] == 1


def test_champion_history_records_who_rolled_back_and_why(rolled_back):
    history = rolled_back["state"]["history"]
    assert [(h["version"], h["action"]) for h in history] == [(1, "promote"), (2, "promote"), (1, "rollback")]
    assert [h["moved_by"] for h in history] == ["alice", "bob", "carol"]
    assert history[2]["reason"] == "v2 denies too many surgery claims" and history[2]["run_id"] is None
    assert history[1]["until"] == history[2]["since"] and history[2]["until"] is None


def test_rollback_is_tagged_and_audited(mlab, rolled_back):
    tags = dict(next(v[2] for v in rolled_back["state"]["versions"] if v[0] == 1))
    assert tags["rolled_back_to_by"] == "carol" and tags["rollback_reason"] == "v2 denies too many surgery claims"
    event = next(r for r in mlab.audit() if r.action == "rollback:champion")
    assert (event.actor, event.comment, event.detail) == (
        "carol", "v2 denies too many surgery claims", {"from": 2, "to": 1})


def test_second_rollback_is_refused_and_changes_nothing(rolled_back):
    error = rolled_back["again"]
    assert isinstance(error, Refused)
    assert "version 1 is the only model that has been champion" in str(error)
    assert "nothing earlier to roll back to" in str(error)
    assert rolled_back["after_again"] == rolled_back["before_again"]
    assert rolled_back["allowed"]["rollback"] == str(error)


# ---- score refuses bad claims ---------------------------------------------------------------------------------
DROP = object()  # marks a field the claim leaves out


@pytest.mark.parametrize("change, words", [
    ({"patient_age": None}, "patient_age is missing"),
    ({"billed_amount": "1,200.00"}, "is not a number"),
    ({"billed_amount": float("inf")}, "billed_amount inf is not a finite number"),
    ({"cpt_bucket": "Astrology"}, "cpt_bucket 'Astrology' is not a known category"),
    ({"allowed_amount": 5000.0}, "allowed_amount 5000 is more than billed_amount 4200"),
    ({"patient_age": 130}, "outside 0..110"),
    ({"diagnosis_group": DROP}, "diagnosis_group is missing"),
])
def test_score_refuses_an_invalid_claim(mlab, two_promotions, change, words):
    claim = {k: v for k, v in {**CLAIM, **change}.items() if v is not DROP}
    with pytest.raises(BadInput) as caught:
        mlab.score(claim)
    assert words in str(caught.value)

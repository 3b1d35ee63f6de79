"""The pipeline's two automatic gates stopping real runs: evaluate_vs_champion and shadow_monitor.

One SQLite lab with a real MLflow store serves the module, and one run tells the story: after a champion (v1)
exists, a commit under metric_regression fails the promotion gate (its challenger, v2, learnt from flipped
labels); retrying only the failed step fails the same way; retrying from cd_full_train with the mode off trains
v3, which passes to the manual gate; approved while the shadow traffic is drifted, the shadow gate holds it; a
retry once the traffic is normal promotes v3.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import yaml

from engine import Run, Step, pipeline
from engine.config import CHALLENGER, CHAMPION, STAGING
from engine.lab import Lab
from engine.states import RunStatus
from tests.conftest import make_settings

DRIFT = {"amount_scale": 1.8, "age_shift": 15}
ALIASES = (CHALLENGER, STAGING, CHAMPION)


@dataclass(frozen=True)
class Snap:
    """A run as it was at one moment, its steps by name, and where the aliases pointed then."""

    run: Run
    by_name: dict[str, Step]
    aliases: dict[str, int | None]


def snap(lab: Lab, run_id: int) -> Snap:
    run = lab.run(run_id)
    return Snap(run, {s.name: s for s in run.steps}, {a: lab.tracking.alias_version(a) for a in ALIASES})


@dataclass(frozen=True)
class ConfiguredSpec(pipeline.StepSpec):
    """A step whose YAML is read from another file (the test's edited copy of it)."""

    config: Path = Path()

    @property
    def config_path(self) -> Path:
        return self.config


def drifted_shadow_monitor(tmp_path: Path) -> ConfiguredSpec:
    """shadow_monitor configured, as a user would edit its YAML, to replay drifted traffic."""
    spec = pipeline.spec("shadow_monitor")
    config = tmp_path / "shadow_monitor.yaml"
    config.write_text(yaml.safe_dump({**spec.params(), "traffic_shift": dict(DRIFT)}))
    return ConfiguredSpec(**{f.name: getattr(spec, f.name) for f in fields(spec)}, config=config)


@pytest.fixture(scope="module")
def world(tmp_path_factory, mlflow_template):
    """(lab, run id): a SQLite lab whose champion is version 1, and the regression run, CI passed."""
    lab = Lab(make_settings(tmp_path_factory.mktemp("gates"), None, mlflow_template))
    try:
        first = lab.commit(message="first model", seed=51, author="alice")
        lab.set_failure_mode("metric_regression", True, by="tester")
        regression = lab.commit(message="broken labelling join", seed=52, author="bob")
        lab.set_failure_mode("metric_regression", False, by="tester")  # the run keeps the mode it started with
        lab.runner.run_until_idle()
        lab.continue_run(first, by="alice")
        lab.runner.run_until_idle()
        lab.approve(first, by="alice")
        lab.runner.run_until_idle()
        assert lab.run(first).status == RunStatus.PROMOTED.value
        yield lab, regression
    finally:
        lab.close()


@pytest.fixture(scope="module")
def mlab(world):
    return world[0]


@pytest.fixture(scope="module")
def run_id(world):
    return world[1]


@pytest.fixture(scope="module")
def regressed(mlab, run_id):
    """The regression run continued to CD: evaluate_vs_champion fails it."""
    mlab.continue_run(run_id, by="bob")
    mlab.runner.run_until_idle()
    return snap(mlab, run_id)


@pytest.fixture(scope="module")
def retried_same_step(mlab, run_id, regressed):
    """Retry with the default start (the failed step): the challenger is still the flipped-label v2."""
    start = mlab.retry(run_id, by="bob")
    mlab.runner.run_until_idle()
    return start, snap(mlab, run_id)


@pytest.fixture(scope="module")
def retrained(mlab, run_id, retried_same_step):
    """Retry from cd_full_train (mode off now): v3 is trained on true labels and waits for approval."""
    start = mlab.retry(run_id, from_step="cd_full_train", by="bob")
    mlab.runner.run_until_idle()
    return start, snap(mlab, run_id)


@pytest.fixture(scope="module")
def held(mlab, run_id, retrained, tmp_path_factory):
    """v3 approved while shadow traffic is drifted (its YAML edited for this step only): the shadow gate holds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(pipeline.BY_NAME, "shadow_monitor", drifted_shadow_monitor(tmp_path_factory.mktemp("drift")))
        mlab.approve(run_id, by="carol", comment="fixed labels")
        mlab.runner.run_until_idle()
    return snap(mlab, run_id)


@pytest.fixture(scope="module")
def recovered(mlab, run_id, held):
    """Retried (default start) with normal traffic: promoted."""
    start = mlab.retry(run_id, by="carol")
    mlab.runner.run_until_idle()
    return start, snap(mlab, run_id)


# ---- evaluate_vs_champion under metric_regression -------------------------------------------------------------
def test_metric_regression_fails_the_promotion_gate(regressed):
    assert regressed.run.failure_modes == ["metric_regression"]
    assert regressed.run.status == RunStatus.FAILED.value
    steps = regressed.by_name
    assert steps["cd_full_train"].status == "succeeded"
    assert steps["cd_full_train"].outputs["model_version"] == 2
    evaluation = steps["evaluate_vs_champion"]
    assert evaluation.status == "failed"
    assert [steps[n].status for n in ("manual_approval", "deploy_staging", "shadow_monitor", "promote_prod")] \
        == ["skipped"] * 4
    assert regressed.aliases == {CHALLENGER: 2, STAGING: 1, CHAMPION: 1}


def test_metric_regression_fails_on_the_ranking_check(regressed):
    evaluation = regressed.by_name["evaluate_vs_champion"]
    out = evaluation.outputs
    gate = out["gate"]
    params = pipeline.spec("evaluate_vs_champion").params()
    assert gate["verdict"] == "fail" and "champion v1" in gate["rule"]
    auc, f1 = (next(c for c in gate["checks"] if c["name"] == name)
               for name in ("ROC-AUC change vs champion", "F1 change vs champion"))
    challenger, champion = out["challenger"], out["champion"]
    assert (champion["version"], challenger["version"], out["baseline"]) == (1, 2, None)
    # Flipped labels cost ranking: the whole 95% interval of the AUC change lies below the allowed drop.
    assert auc["passed"] is False and auc["threshold"] == params["min_auc_delta"]
    assert auc["value"] == pytest.approx(challenger["metrics"]["roc_auc"] - champion["metrics"]["roc_auc"], abs=1e-4)
    # Decided on the interval's lower bound ("at least"): the margin is measured from it.
    assert auc["margin"] == pytest.approx(auc["interval"][0] - auc["threshold"], abs=1e-6) and auc["margin"] < 0
    assert auc["interval"][0] <= auc["value"] <= auc["interval"][1] < auc["threshold"]
    # Stored with its direction, so a reader says it without parsing the name.
    assert (auc["direction"], auc["metric"], auc["against"]) == ("rise", "ROC-AUC", "vs champion")
    # Its probabilities are calibrated and its threshold chosen on its own (equally flipped) validation split,
    # which recovers F1: the gate fails for the ranking, not for a shifted threshold.
    assert f1["passed"] is True and f1["threshold"] == params["min_f1_delta"]
    assert f1["value"] == pytest.approx(challenger["metrics"]["f1"] - champion["metrics"]["f1"], abs=1e-4)
    assert f1["interval"][0] <= f1["value"] <= f1["interval"][1]
    assert gate["thresholds"] == {"challenger": challenger["threshold"], "champion": champion["threshold"]}
    assert gate["bootstrap"]["resamples"] == params["bootstrap_resamples"]
    error = evaluation.error
    assert error.startswith("promotion gate failed: ROC-AUC change vs champion") and "F1" not in error
    assert f"margin {auc['margin']:+.4f}" in error and f"{auc['value']:+.4f}" in error
    assert f"[{auc['interval'][0]:+.4f}, {auc['interval'][1]:+.4f}]" in error


def test_retrying_only_the_failed_step_fails_again(retried_same_step):
    start, run = retried_same_step
    assert start == "evaluate_vs_champion"
    assert run.run.status == RunStatus.FAILED.value
    assert run.run.failure_modes == []  # the mode is off now, but the challenger is still the flipped-label v2
    steps = run.by_name
    assert steps["cd_full_train"].attempt == 1
    assert (steps["evaluate_vs_champion"].status, steps["evaluate_vs_champion"].attempt) == ("failed", 2)
    assert steps["evaluate_vs_champion"].outputs["challenger"]["version"] == 2


def test_retry_from_cd_full_train_reaches_the_manual_gate(retrained):
    start, run = retrained
    assert start == "cd_full_train"
    assert run.run.status == RunStatus.AWAITING_APPROVAL.value
    steps = run.by_name
    assert (steps["cd_full_train"].attempt, steps["cd_full_train"].outputs["model_version"]) == (2, 3)
    gate = steps["evaluate_vs_champion"].outputs["gate"]
    assert gate["verdict"] == "pass" and all(c["margin"] >= 0 for c in gate["checks"])
    assert steps["manual_approval"].status == "awaiting_approval"
    assert run.aliases == {CHALLENGER: 3, STAGING: 1, CHAMPION: 1}


# ---- shadow_monitor under drifted traffic ---------------------------------------------------------------------
def test_drifted_shadow_traffic_holds_the_run(held):
    assert held.run.status == RunStatus.HELD.value
    steps = held.by_name
    assert steps["deploy_staging"].status == "succeeded"
    shadow = steps["shadow_monitor"]
    assert shadow.status == "failed" and steps["promote_prod"].status == "skipped"
    out = shadow.outputs
    assert out["gate"]["verdict"] == "hold"
    psi = next(c for c in out["gate"]["checks"] if c["name"] == "max input PSI")
    assert psi["passed"] is False and psi["margin"] < 0 and psi["threshold"] == 0.25 and psi["direction"] == "level"
    assert out["drift"]["level"] == "major" and out["drift"]["max_psi"] >= 0.25
    assert out["staging_version"] == 3 and out["champion_version"] == 1
    assert shadow.error.startswith("shadow gate held the run:") and "max input PSI" in shadow.error


def test_shadow_accuracy_is_compared_at_each_models_own_threshold(held, retrained, mlab):
    out = held.by_name["shadow_monitor"].outputs
    accuracy = next(c for c in out["gate"]["checks"] if c["name"] == "accuracy change vs champion")
    assert accuracy["threshold"] == pipeline.spec("shadow_monitor").params()["min_accuracy_delta"]
    assert accuracy["value"] == pytest.approx(out["accuracy"]["staging"] - out["accuracy"]["champion"], abs=1e-4)
    assert accuracy["interval"][0] <= accuracy["value"] <= accuracy["interval"][1]
    # The thresholds the shadow test used are the ones each version was registered with.
    tags = {v: mlab.tracking.client.get_model_version("claims-settlement-rf", str(v)).tags for v in (1, 3)}
    assert out["gate"]["thresholds"] == {"staging": pytest.approx(float(tags[3]["decision_threshold"]), abs=1e-6),
                                         "champion": pytest.approx(float(tags[1]["decision_threshold"]), abs=1e-6)}
    evaluated = retrained[1].by_name["evaluate_vs_champion"].outputs["gate"]["thresholds"]
    assert evaluated == {"challenger": out["gate"]["thresholds"]["staging"],
                         "champion": out["gate"]["thresholds"]["champion"]}


def test_first_models_shadow_floor_comes_from_approve_every_claim(mlab):
    first = next(r for r in mlab.runs() if r.message == "first model")
    out = mlab.run(first.id).outputs_of("shadow_monitor")
    check = out["gate"]["checks"][0]
    assert check["name"] == "accuracy change vs approve-every-claim" and check["passed"] is True
    assert check["threshold"] == pipeline.spec("shadow_monitor").params()["min_accuracy_gain_first_model"]
    # Approving everyone is right exactly on the Approved claims: its accuracy is their share of the batch.
    assert 0.6 < out["accuracy"]["approve_every_claim"] < 0.8
    assert check["value"] == pytest.approx(out["accuracy"]["staging"] - out["accuracy"]["approve_every_claim"],
                                           abs=1e-4)
    assert check["interval"][0] <= check["value"] <= check["interval"][1]
    assert out["gate"]["thresholds"]["champion"] is None and out["champion_version"] is None


def test_a_hold_leaves_champion_where_it_was(held):
    assert held.aliases == {CHALLENGER: 3, STAGING: 3, CHAMPION: 1}


def test_retry_with_normal_traffic_promotes(mlab, recovered):
    start, run = recovered
    assert start == "shadow_monitor"
    assert run.run.status == RunStatus.PROMOTED.value
    steps = run.by_name
    assert (steps["shadow_monitor"].status, steps["shadow_monitor"].attempt) == ("succeeded", 2)
    assert steps["shadow_monitor"].outputs["gate"]["verdict"] == "pass"
    assert steps["shadow_monitor"].outputs["drift"]["level"] != "major"
    assert steps["deploy_staging"].attempt == 1  # not re-deployed
    assert steps["promote_prod"].outputs == {"alias": CHAMPION, "version": 3, "previous_champion": 1,
                                                "shadow_tested_version": 3}
    assert run.aliases == {CHALLENGER: 3, STAGING: 3, CHAMPION: 3}
    assert [(h["version"], h["action"]) for h in mlab.champion_history()] == [(1, "promote"), (3, "promote")]

"""The pipeline's two automatic gates stopping real runs: evaluate_vs_champion and shadow_monitor.

One SQLite lab with a real MLflow store serves the module, and one run tells the story: after a champion (v1)
exists, a commit under metric_regression fails the promotion gate (its challenger, v2, learnt from flipped
labels); retrying only the failed step fails the same way; retrying from cd_full_train with the mode off trains
v3, which passes to the manual gate; approved while the shadow traffic is drifted, the shadow gate holds it; a
retry once the traffic is normal promotes v3.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import yaml

from engine import pipeline
from engine.config import CHALLENGER, CHAMPION, STAGING
from engine.lab import Lab
from engine.states import RunStatus
from tests.conftest import make_settings

DRIFT = {"amount_scale": 1.8, "age_shift": 15}
ALIASES = (CHALLENGER, STAGING, CHAMPION)


def snap(lab: Lab, run_id: int) -> dict:
    run = copy.deepcopy(lab.run(run_id))
    run["by_name"] = {s["name"]: s for s in run["steps"]}
    run["aliases"] = {a: lab.tracking.alias_version(a) for a in ALIASES}
    return run


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
        assert lab.run(first)["status"] == RunStatus.PROMOTED.value
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
    assert regressed["failure_modes"] == ["metric_regression"]
    assert regressed["status"] == RunStatus.FAILED.value
    steps = regressed["by_name"]
    assert steps["cd_full_train"]["status"] == "succeeded"
    assert steps["cd_full_train"]["outputs"]["model_version"] == 2
    evaluation = steps["evaluate_vs_champion"]
    assert evaluation["status"] == "failed"
    assert [steps[n]["status"] for n in ("manual_approval", "deploy_staging", "shadow_monitor", "promote_prod")] \
        == ["skipped"] * 4
    assert regressed["aliases"] == {CHALLENGER: 2, STAGING: 1, CHAMPION: 1}


def test_failed_gate_shows_a_negative_f1_margin(regressed):
    evaluation = regressed["by_name"]["evaluate_vs_champion"]
    out = evaluation["outputs"]
    gate = out["gate"]
    assert gate["verdict"] == "fail" and "champion v1" in gate["rule"]
    f1 = next(c for c in gate["checks"] if c["name"] == "F1 gain")
    assert f1["passed"] is False and f1["margin"] < 0
    assert f1["threshold"] == pipeline.spec("evaluate_vs_champion").params()["min_f1_delta"]
    assert f1["value"] == pytest.approx(out["challenger"]["metrics"]["f1"] - out["champion"]["metrics"]["f1"],
                                        abs=1e-6)
    assert out["champion"]["version"] == 1 and out["challenger"]["version"] == 2 and out["baseline"] is None
    error = evaluation["error"]
    assert error.startswith("promotion gate failed: F1 gain")
    assert f"margin {f1['margin']:+.4f}" in error and f"{f1['value']:+.4f}" in error


def test_retrying_only_the_failed_step_fails_again(retried_same_step):
    start, run = retried_same_step
    assert start == "evaluate_vs_champion"
    assert run["status"] == RunStatus.FAILED.value
    assert run["failure_modes"] == []  # the mode is off now, but the challenger is still the flipped-label v2
    steps = run["by_name"]
    assert steps["cd_full_train"]["attempt"] == 1
    assert (steps["evaluate_vs_champion"]["status"], steps["evaluate_vs_champion"]["attempt"]) == ("failed", 2)
    assert steps["evaluate_vs_champion"]["outputs"]["challenger"]["version"] == 2


def test_retry_from_cd_full_train_reaches_the_manual_gate(retrained):
    start, run = retrained
    assert start == "cd_full_train"
    assert run["status"] == RunStatus.AWAITING_APPROVAL.value
    steps = run["by_name"]
    assert (steps["cd_full_train"]["attempt"], steps["cd_full_train"]["outputs"]["model_version"]) == (2, 3)
    gate = steps["evaluate_vs_champion"]["outputs"]["gate"]
    assert gate["verdict"] == "pass" and all(c["margin"] >= 0 for c in gate["checks"])
    assert steps["manual_approval"]["status"] == "awaiting_approval"
    assert run["aliases"] == {CHALLENGER: 3, STAGING: 1, CHAMPION: 1}


# ---- shadow_monitor under drifted traffic ---------------------------------------------------------------------
def test_drifted_shadow_traffic_holds_the_run(held):
    assert held["status"] == RunStatus.HELD.value
    steps = held["by_name"]
    assert steps["deploy_staging"]["status"] == "succeeded"
    shadow = steps["shadow_monitor"]
    assert shadow["status"] == "failed" and steps["promote_prod"]["status"] == "skipped"
    out = shadow["outputs"]
    assert out["gate"]["verdict"] == "hold"
    psi = next(c for c in out["gate"]["checks"] if c["name"] == "max input PSI")
    assert psi["passed"] is False and psi["margin"] < 0 and psi["threshold"] == 0.25
    assert out["drift"]["level"] == "major" and out["drift"]["max_psi"] >= 0.25
    assert out["staging_version"] == 3 and out["champion_version"] == 1
    assert shadow["error"].startswith("shadow gate held the run:") and "max input PSI" in shadow["error"]


def test_a_hold_leaves_champion_where_it_was(held):
    assert held["aliases"] == {CHALLENGER: 3, STAGING: 3, CHAMPION: 1}


def test_retry_with_normal_traffic_promotes(mlab, recovered):
    start, run = recovered
    assert start == "shadow_monitor"
    assert run["status"] == RunStatus.PROMOTED.value
    steps = run["by_name"]
    assert (steps["shadow_monitor"]["status"], steps["shadow_monitor"]["attempt"]) == ("succeeded", 2)
    assert steps["shadow_monitor"]["outputs"]["gate"]["verdict"] == "pass"
    assert steps["shadow_monitor"]["outputs"]["drift"]["level"] != "major"
    assert steps["deploy_staging"]["attempt"] == 1  # not re-deployed
    assert steps["promote_prod"]["outputs"] == {"alias": CHAMPION, "version": 3, "previous_champion": 1}
    assert run["aliases"] == {CHALLENGER: 3, STAGING: 3, CHAMPION: 3}
    assert [(h["version"], h["action"]) for h in mlab.champion_history()] == [(1, "promote"), (3, "promote")]

"""The pipeline DAG, declared once. Everything else (runner, CLI, dashboard) reads it from here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.ml.contract import shown
from engine.states import RunStatus, StepStatus

STEPS_DIR = Path(__file__).parent / "steps"


@dataclass(frozen=True)
class StepSpec:
    """One node of the DAG."""

    name: str
    title: str
    stage: str                 # CI, CD or Deploy: the lane it is drawn in
    needs: tuple[str, ...]     # upstream steps whose outputs it reads
    gate: bool = False         # it decides whether the run may go on
    approval: bool = False     # it waits for a person instead of finishing by itself
    rests_as: RunStatus | None = None  # once every step of its stage succeeded, the run rests here
    summary: str = ""

    @property
    def source_path(self) -> Path:
        return STEPS_DIR / f"{self.name}.py"

    @property
    def config_path(self) -> Path:
        return STEPS_DIR / f"{self.name}.yaml"

    def params(self) -> dict:
        """The step's parameters from its YAML."""
        return yaml.safe_load(self.config_path.read_text()) or {}


STEPS: tuple[StepSpec, ...] = (
    StepSpec("commit_received", "Commit", "CI", (), summary="records the commit, seed and dataset window"),
    StepSpec("ci_tests", "CI tests", "CI", ("commit_received",), gate=True,
             summary="runs the ML test suite on this run's sample in a subprocess"),
    StepSpec("data_validation", "Data validation", "CI", ("commit_received",), gate=True,
             summary="checks the run's data against the data contract"),
    StepSpec("ci_quick_train", "Quick train", "CI", ("data_validation",),
             summary="small forest on a sample; holdout metrics"),
    StepSpec("mlflow_log_ci", "MLflow log (CI)", "CI", ("ci_quick_train",),
             rests_as=RunStatus.CI_COMPLETE, summary="CI run in MLflow with params, metrics, tags, dataset"),
    StepSpec("cd_full_train", "Full train", "CD", ("commit_received",),
             summary="full model; MLflow run; registered version; alias challenger"),
    StepSpec("evaluate_vs_champion", "Evaluate vs champion", "CD", ("cd_full_train",), gate=True,
             summary="challenger and champion on the same fresh holdout; the promotion gate"),
    StepSpec("manual_approval", "Manual approval", "CD", ("evaluate_vs_champion",), gate=True, approval=True,
             rests_as=RunStatus.AWAITING_APPROVAL, summary="a reviewer approves or rejects"),
    StepSpec("deploy_staging", "Deploy staging", "Deploy", ("cd_full_train", "manual_approval"),
             summary="alias staging moves to the version"),
    StepSpec("shadow_monitor", "Shadow monitor", "Deploy", ("cd_full_train", "deploy_staging"), gate=True,
             summary="staging and champion score the same fresh claims; agreement, accuracy, drift"),
    StepSpec("promote_prod", "Promote to production", "Deploy", ("cd_full_train", "shadow_monitor"),
             rests_as=RunStatus.PROMOTED, summary="alias champion moves; the previous one is remembered"),
)
BY_NAME = {s.name: s for s in STEPS}
NAMES = tuple(s.name for s in STEPS)
STAGES = ("CI", "CD", "Deploy")


def spec(name: str) -> StepSpec:
    """The spec of step `name`; ValueError naming the valid steps otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown step {shown(name)}; steps are: {', '.join(NAMES)}") from None


def stage_rest(stage: str) -> RunStatus | None:
    """Where a run rests once every step of `stage` has succeeded (None: an approval decides instead)."""
    return next((s.rests_as for s in STEPS if s.stage == stage and s.rests_as and not s.approval), None)


def ready(stage: str, statuses: dict[str, str]) -> list[str]:
    """Pending steps of `stage` whose needs have all succeeded, given each step's status by name.

    Steps are looked up by name, never by position. A run created before a step was added has no row for it:
    that step is not part of the run, so it is never ready and the steps that need it do not wait for it."""
    return [s.name for s in STEPS if s.stage == stage and statuses.get(s.name) == StepStatus.PENDING.value
            and all(_met(n, statuses) for n in s.needs)]


def stage_done(stage: str, statuses: dict[str, str]) -> bool:
    """True when every step of `stage` that the run has (see `ready`) has succeeded."""
    return all(_met(s.name, statuses) for s in STEPS if s.stage == stage)


def _met(name: str, statuses: dict[str, str]) -> bool:
    return statuses.get(name, StepStatus.SUCCEEDED.value) == StepStatus.SUCCEEDED.value

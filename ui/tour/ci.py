"""Walkthrough steps 1-4: start a run, watch CI, inspect a step, continue to CD."""
from __future__ import annotations

import streamlit as st

from engine import BadInput, IllegalTransition, Refused, Run, pipeline
from engine.config import LIMITS
from engine.states import RunStatus, StepStatus
from ui import icons, inspector
from ui.common import attempt, get_lab, visitor
from ui.pagekit import NAME_KEY, name_input
from ui.tour import kit as k


@k.page(1, "Start a pipeline run", "start",
        "A model's pipeline starts the way any software pipeline does: with a **commit**. The commit here is "
        "simulated (a fake SHA), but everything after it is real. The run is given a **seed** and a **dataset "
        "window**, so the exact claims it trains on can be regenerated later: the ML equivalent of pinning "
        "dependencies. Committing queues the CI stage: five steps that run as a small DAG, independent ones "
        "side by side; you will watch them on the next page.",
        "a push to GitHub/GitLab triggers a workflow (GitHub Actions, GitLab CI, Jenkins); the run id here is "
        "the workflow run id there.", follow="own")
def start_run(run: Run | None) -> None:
    """Step 1: make a fake commit; the page ticks when the run made here reaches ci_complete."""
    with st.form("tour_commit"):
        author = name_input("tour_commit_by", "Your name (optional)")
        message = st.text_input("Commit message", value="walkthrough: my first commit",
                                max_chars=LIMITS["message"])
        if st.form_submit_button("Fake commit", icon=icons.COMMIT, type="primary"):
            ok, run_id = attempt(get_lab().commit, message=message, author=author or "walkthrough",
                                 trigger="dashboard", visitor=visitor())
            if ok:
                k.follow(run_id)
                st.rerun()
    if run is None or run.created_at < k.opened_at(1):
        k.tick(False, "", "Make a commit with the form above: a new run appears and CI starts.")
    else:
        k.watch(run.id, _ci_tick, "tour1")


def _ci_tick(run: Run) -> None:
    k.tick(k.stage_ok(run, "CI"), f"Your run {run.id} reached ci_complete: every CI step passed.",
           f"Run {run.id} is {run.status}; the page ticks when it reaches ci_complete.")
    if run.status == RunStatus.FAILED.value:
        st.warning("CI failed: a failure mode may be on (step 9 explains them). Turn it off and commit again.")


def _quick_rows() -> str:
    return f"{pipeline.spec('ci_quick_train').params()['sample_rows']:,}"


@k.page(2, "Watch CI execute", "ci",
        "CI answers *is this change safe to build on?* cheaply. **CI tests** run a real pytest suite over the ML "
        "code in a subprocess; **data validation** checks the run's claims against a data contract (columns, "
        "types, categories, ranges); **quick train** fits a small forest on 60% of an " + _quick_rows() + "-claim "
        "sample (15% choose its decision threshold, 25% score it) so a broken training path fails in seconds, not "
        "after an hour; **MLflow log** records params, metrics, tags and exactly those rows, each part with a "
        "digest of every cell, so the run can be reproduced. Steps that do not depend on each other run in "
        "parallel. Status colours in the dashboard's DAG: grey not reached, blue running, green succeeded, red "
        "failed.",
        "the jobs of a CI workflow; data contracts with Great Expectations or pandera; experiment tracking "
        "with MLflow or Weights & Biases.")
def watch_ci(run: Run | None) -> None:
    """Step 2: the CI steps of the followed run, live."""
    if k.have_run(run):
        k.watch(run.id, _ci_progress, "tour2")


def _ci_progress(run: Run) -> None:
    k.steps_list(run, "CI")
    k.tick(k.stage_ok(run, "CI"), f"All CI steps of run {run.id} succeeded.",
           "Waiting for every CI step to succeed.")


@k.page(3, "Inspect a step", "inspect",
        "Every step is a short Python module with a YAML file of parameters. The dashboard's **step inspector** "
        "shows four views of the selected node: **Code** (what ran), **Config** (its parameters), **Logs** "
        "(streamed while it runs) and **Outputs** (metrics, reports, gate decisions). A practitioner should be "
        "able to answer *what did this step measure, and why did it fail?* from the pipeline itself. Below is "
        "the same inspector as on the dashboard.",
        "CI job logs and artifacts; the task views of Airflow, Kubeflow or SageMaker Pipelines.")
def inspect_step(run: Run | None) -> str:
    """Step 3: code, config, logs and outputs of one step of the followed run."""
    st.session_state.setdefault("tour3_step", "ci_quick_train")
    step = inspector.step_picker("tour3_step")
    inspector.render(get_lab(), run, step, inspector.tab_picker("tour3_tab"))
    if not k.have_run(run):
        return step
    quick = k.step_of(run, "ci_quick_train")
    metrics = (quick.outputs or {}).get("metrics") or {}
    k.tick(quick.status == StepStatus.SUCCEEDED.value and bool(metrics),
           f"Quick train measured ROC-AUC {metrics.get('roc_auc', 0):.3f} and F1 {metrics.get('f1', 0):.3f} "
           "on its holdout: pick it above and open its Outputs to see them.",
           "Quick train has no outputs yet; wait for it (step 2).")
    return step


@k.page(4, "Continue to CD", "cd",
        "Passing CI ships nothing. **Continuous delivery** trains the full model on 32,000 of the run's 40,000 "
        "claims, chooses its decision threshold on the other 8,000 (the lowest expected cost, a wrong denial "
        "costing twice a wrong approval), explains it with SHAP, and registers it in the MLflow Model Registry "
        "as a new version with the alias **@challenger**. **Evaluate vs champion** then scores challenger and "
        "the current champion on the same fresh holdout, each at its own threshold, and applies the promotion "
        "gate: the challenger may not rank claims worse (ROC-AUC) nor lose F1 beyond margins set from measured "
        "noise, and each difference comes with its 95% bootstrap interval. With no champion yet, it must rank "
        "better than the best single column and beat the *approve every claim* policy on F1 and on cost. The "
        "run then waits for a person at the manual gate.",
        "a training pipeline triggered after CI (SageMaker Pipelines, Vertex AI Pipelines, Kubeflow); a "
        "champion/challenger comparison before any release.")
def continue_cd(run: Run | None) -> str:
    """Step 4: continue a ci_complete run to CD; the page ticks when that run waits at the manual gate."""
    if k.have_run(run):
        continue_button(run)
        k.watch(run.id, _cd_progress, "tour4")
    return "evaluate_vs_champion"


def continue_button(run: Run) -> None:
    """The Continue to CD button, or why it is not offered."""
    why_not = get_lab().allowed_actions(run)["continue"]
    if why_not:
        st.caption(why_not)
        return
    if st.button("Continue to CD", icon=icons.CONTINUE, type="primary", key="tour4_continue"):
        try:
            get_lab().continue_run(run.id, by=st.session_state.get(NAME_KEY) or "walkthrough")
        except (BadInput, IllegalTransition, Refused) as exc:
            st.error(str(exc))
            return
        st.rerun()


def _cd_progress(run: Run) -> None:
    k.steps_list(run, "CD")
    train = k.step_of(run, "cd_full_train")
    continued_here = bool(train.queued_at) and train.queued_at >= k.opened_at(4)
    if not continued_here:
        k.tick(False, "", f"Continue a run in ci_complete to CD with the button above (run {run.id} is "
               f"{run.status}; step 1 makes a new one).")
        return
    gate = k.step_of(run, "manual_approval")
    k.tick(gate.status in (StepStatus.AWAITING_APPROVAL.value, StepStatus.SUCCEEDED.value),
           f"Run {run.id} passed the promotion gate and waits at the manual gate (or went past it).",
           f"Run {run.id} is {run.status}: the page ticks when it waits at the manual gate.")

"""Walkthrough steps 5-7: approve or reject, monitor the deployment, view the MLflow runs."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import BadInput, IllegalTransition, Refused, Run
from engine.config import LIMITS
from engine.states import RunStatus
from ui import icons
from ui.common import get_lab, md_escape, mlflow_ui, rolled_back_text
from ui.dialogs import named
from ui.errors import first_line
from ui.pagekit import name_input
from ui.tour import kit as k

METRICS = ("roc_auc", "f1", "accuracy", "precision", "recall", "false_denial_rate")


@k.page(5, "Approve or reject", "approve",
        "A model that denies medical claims affects people, so a person signs off before it ships. The reviewer "
        "sees the evidence: the **gate's checks with their margins**, the challenger's metrics next to the "
        "reference's on the same holdout, and the features that drive its decisions (SHAP). Watch the **false "
        "denial rate**: an approved claim wrongly denied costs a patient. Your name and comment go into the "
        "audit trail and onto the model version as tags.",
        "a protected environment in GitHub Actions, a change-approval ticket, a model-risk review board.")
def approve_or_reject(run: Run | None) -> str:
    """Step 5: review the evidence and sign the manual gate."""
    if k.have_run(run):
        _evidence(run)
        _decision_form(run)
        k.watch(run.id, _decision_tick, "tour5")
    return "manual_approval"


def _evidence(run: Run) -> None:
    evidence = (k.step_of(run, "manual_approval").outputs or {}).get("evidence")
    if not evidence:
        st.caption("The evidence appears when the run reaches the manual gate (step 4).")
        return
    gate = evidence["gate"]
    st.markdown(f"**Gate** ({gate['verdict']}): {gate['rule']}")
    st.dataframe(pd.DataFrame(gate["checks"]), hide_index=True, key="tour5_checks")
    reference = evidence.get("reference") or {}
    ref_name = f"champion v{reference['version']}" if reference.get("version") else "baseline (approve all)"
    compare = pd.DataFrame({f"challenger v{evidence['model_version']}": evidence["challenger_metrics"],
                            ref_name: reference.get("metrics", {})}).loc[list(METRICS)]
    st.dataframe(compare, key="tour5_compare")
    top = evidence.get("top_features") or []
    if top:
        st.caption("What drives its decisions (mean |SHAP| on the holdout): "
                   + ", ".join(str(f.get("feature", "")) for f in top))


def _decision_form(run: Run) -> None:
    if get_lab().allowed_actions(run)["approve"]:
        return  # the tick below says what to do first
    with st.form("tour5_decide"):
        by = name_input("tour5_by", "Your name (required)")
        comment = st.text_input("Comment", key="tour5_comment", placeholder="why you decided so",
                                max_chars=LIMITS["comment"])
        approve, reject = st.columns(2)
        ok = approve.form_submit_button("Approve", icon=icons.APPROVE, type="primary")
        no = reject.form_submit_button("Reject", icon=icons.REJECT)
    if (ok or no) and named(by, "Your name (required)"):
        try:
            (get_lab().approve if ok else get_lab().reject)(run.id, by, comment)
        except (BadInput, Refused, IllegalTransition) as exc:
            st.error(str(exc))
            return
        st.rerun()


def _decision_tick(run: Run) -> None:
    out = k.step_of(run, "manual_approval").outputs or {}
    decided = out.get("decision") if (out.get("at") or 0) >= k.opened_at(5) else None
    if decided:
        k.tick(True, f"Run {run.id} was {decided} by {md_escape(out.get('by', ''))}" +
               (f": {md_escape(out['comment'])}" if out.get("comment") else "."), "")
    elif run.status == RunStatus.AWAITING_APPROVAL.value:
        k.tick(False, "", "Read the evidence, then approve or reject with the form above.")
    else:
        k.tick(False, "", f"Run {run.id} is {run.status}, not waiting at the manual gate: follow a run in "
               "awaiting_approval (step 4 gets one there).")


@k.page(6, "Monitor deployment", "deploy",
        "Here, deploying **is** moving a registry alias. **Deploy staging** points **@staging** at the approved "
        "version. **Shadow monitor** sends the same fresh claims to staging and to the champion, compares their "
        "decisions and accuracy, and measures input drift; nothing a user sees depends on staging yet. If "
        "nothing is alarming, **promote** moves **@champion**, and everything that loads "
        "`models:/claims-settlement-rf@champion` serves the new version. A deploy gate that trips *holds* the "
        "run (it can be retried) rather than failing it.",
        "shadow or canary deployments (KServe, Seldon, SageMaker shadow variants); blue/green switches.")
def monitor_deployment(run: Run | None) -> str:
    """Step 6: staging, shadow monitoring, promotion, live."""
    if k.have_run(run):
        k.watch(run.id, _deploy_progress, "tour6")
    return "shadow_monitor"


def _deploy_progress(run: Run) -> None:
    k.steps_list(run, "Deploy")
    shadow = k.step_of(run, "shadow_monitor").outputs or {}
    if shadow.get("accuracy"):
        agree = f"agreement with champion {shadow['agreement_rate']:.1%}; " if "agreement_rate" in shadow else ""
        accuracy = ", ".join(f"{who} {value:.3f}" for who, value in shadow["accuracy"].items() if value is not None)
        drift = shadow.get("drift") or {}
        st.caption(f"Shadow: {agree}accuracy {accuracy}; input drift {drift.get('level', '?')} "
                   f"(max PSI {drift.get('max_psi', 0):.3f}).")
    promote = k.step_of(run, "promote_prod").outputs or {}
    status = run.status
    if status == RunStatus.HELD.value:
        st.warning("A deploy gate held the run: read why above, then retry it from the dashboard.")
    if status == RunStatus.REJECTED.value:
        st.warning("This run was rejected at the manual gate, so nothing was deployed. Commit again (step 1).")
    replaced = promote.get('previous_champion') or 'nobody: it is the first'
    if run.rolled_back:  # promoted, then undone: the lesson is done, but this is no longer the champion
        k.tick(True, f"Version {promote.get('version')} was promoted (it replaced {replaced}), then "
               f"{rolled_back_text(run.rolled_back)}: it is no longer the champion.", "")
        return
    k.tick(status == RunStatus.PROMOTED.value, f"Version {promote.get('version')} is the champion now "
           f"(it replaced {replaced}).", f"Run {run.id} is {status}: approve it (step 5) and wait for promotion.")


@k.page(7, "View MLflow runs", "mlflow",
        "Every CI and CD run is an **MLflow run**: parameters (the forest's settings), metrics (accuracy, F1, "
        "ROC-AUC, false denial rate), tags (commit, seed, dataset window, pipeline run), the training data as a "
        "dataset input with a digest, and artifacts (the model, SHAP plots, confusion matrix). That record is "
        "what lets someone reproduce and audit a model months later. The dashboard's MLflow explorer filters "
        "runs by stage; the full MLflow UI reads the same store.",
        "MLflow, Weights & Biases, Vertex AI Experiments; a model registry with lineage back to data and code.")
def view_mlflow(run: Run | None) -> str:
    """Step 7: the MLflow runs behind the followed pipeline run."""
    lab = get_lab()
    found = []
    if k.have_run(run):
        for label, step in (("CI", "mlflow_log_ci"), ("CD", "cd_full_train")):
            mlflow_id = (k.step_of(run, step).outputs or {}).get("mlflow_run_id")
            if mlflow_id:
                found.append(label)
                with st.expander(f"{label} run {mlflow_id}", expanded=label == "CI"):
                    _mlflow_run(mlflow_id)
        k.tick(bool(found), f"Run {run.id} has {' and '.join(found)} runs in MLflow.",
               f"Run {run.id} has not logged to MLflow yet (its CI's last step does).")
    url, command = mlflow_ui(lab.settings)
    if url:
        st.caption(f"Full MLflow UI: {url}")
    else:
        st.caption("Full MLflow UI: serve the lab's store with the command below, then open `http://127.0.0.1:5000`.")
        st.code(command, language="bash", wrap_lines=True)
    return "mlflow_log_ci"


@st.cache_data(ttl=60, show_spinner=False)
def _detail(uri: str, mlflow_id: str) -> dict:
    return get_lab().mlflow_run(mlflow_id)


def _mlflow_run(mlflow_id: str) -> None:
    try:
        d = _detail(get_lab().settings.tracking_uri, mlflow_id)
    except Exception as exc:  # MLflow down or the run deleted: say so instead of breaking the page
        st.warning(f"MLflow could not return run {mlflow_id}: {first_line(exc)}")  # masked: it may quote a URL
        return
    params, metrics = st.columns(2)
    params.markdown("**Parameters**")
    params.json(d["params"], expanded=True)
    metrics.markdown("**Metrics**")
    metrics.json(d["metrics"], expanded=True)
    st.markdown("**Tags** (commit, seed, dataset window, pipeline run, ...)")
    st.json(d["tags"], expanded=False)
    st.markdown("**Dataset inputs**: " + (", ".join(f"{i['name']} ({i['context']}, digest {i['digest']})"
                                                     for i in d["inputs"]) or "none"))
    st.markdown("**Artifacts**: " + (", ".join(f"`{a}`" for a in d["artifacts"]) or "none"))

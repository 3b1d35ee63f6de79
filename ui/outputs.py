"""Renderers for step outputs, chosen by the keys an output carries (so a new step's outputs light up by shape).

User-controlled text (commit messages, names, comments) goes through st.text or table cells, never markdown.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import Run, Step
from ui import charts, common, errors, icons, outputs_deploy

WAITING = ("pending", "queued")  # statuses of a step that has not (re)started
METRICS = (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
           ("roc_auc", "ROC-AUC"), ("false_denial_rate", "False denials"))


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def metric_tiles(metrics: dict, per_row: int = 3) -> None:
    """The headline metrics as tiles, a few per row so values are never cut off in a narrow column."""
    shown = [(label, metrics[key]) for key, label in METRICS if key in metrics]
    for start in range(0, len(shown), per_row):
        for col, (label, value) in zip(st.columns(per_row), shown[start:start + per_row]):
            col.metric(label, _fmt(value))


def commit(o: dict) -> None:
    """The commit that started the run."""
    a, b, c = st.columns(3)
    a.metric("Commit", o["sha"][:10])
    b.metric("Seed", o.get("seed", "—"))
    c.metric("Window", f"{o.get('window_days', '—')} days")
    st.text(f"message: {o.get('message', '')}\nauthor:  {o.get('author') or 'unknown'}\n"
            f"window:  {o.get('dataset_window', '')}\nSHA:     {o['sha']}")
    modes = o.get("failure_modes") or []
    if modes:
        st.warning("Failure modes on for this run: " + ", ".join(modes), icon=icons.FAILURE_MODE)


def ci_tests(o: dict) -> None:
    """pytest results from JUnit XML, and the lint report."""
    a, b, c, d = st.columns(4)
    a.metric("Passed", o.get("passed", 0))
    b.metric("Failed", o.get("failed", 0))
    c.metric("Skipped", o.get("skipped", 0))
    d.metric("Exit code", o.get("exit_code", "—"))
    tests = pd.DataFrame(o.get("tests") or [], columns=["outcome", "name", "duration", "message"])
    st.dataframe(tests, hide_index=True, width="stretch",
                 column_config={"duration": st.column_config.NumberColumn("seconds", format="%.3f")})
    st.caption(f"{len(tests)} tests in {o.get('duration_seconds', 0):.2f} s on a sample of "
               f"{o.get('sample_rows', 0):,} claims")
    lint = o.get("lint")
    if lint:
        issues = lint.get("issues") or []
        if issues:
            st.error(f"{lint.get('tool', 'lint')}: {len(issues)} issue(s)")
            st.code("\n".join(issues), language=None)
        else:
            st.success(f"{lint.get('tool', 'lint')}: no issues")


def validation(o: dict) -> None:
    """The data-contract report: one row per check."""
    checks = pd.DataFrame(o.get("checks") or [], columns=["passed", "name", "failing_rows", "detail", "examples"])
    checks["examples"] = checks["examples"].map(lambda xs: ", ".join(map(str, xs or []))[:200])
    verdict = "passed" if o.get("passed") else "failed"
    (st.success if o.get("passed") else st.error)(f"Data contract {verdict} on {o.get('n_rows', 0):,} claims: "
                                                   f"{int(checks['passed'].sum())} of {len(checks)} checks pass")
    st.dataframe(checks, hide_index=True, width="stretch",
                 column_config={"passed": st.column_config.CheckboxColumn("passed", width="small")})


def training(lab, o: dict) -> None:
    """Holdout metrics, confusion matrix and what was trained."""
    metrics = o.get("metrics") or {}
    metric_tiles(metrics)
    cm = metrics.get("confusion_matrix")
    if cm and "matrix" in cm:
        st.caption(f"Confusion matrix on {metrics.get('n_rows', 0):,} holdout claims (rows: actual)")
        st.altair_chart(charts.confusion_heatmap(cm), width="content")
    facts = {"model version": o.get("model_version"), "train rows": o.get("train_rows"),
             "holdout rows": o.get("holdout_rows"), "fit seconds": o.get("fit_seconds"),
             "model size (MB)": o.get("artifact_mb"), "dataset digest": o.get("dataset_digest")}
    facts.update({f"param {k}": v for k, v in (o.get("params") or {}).items()})
    with st.expander("What was trained", expanded=False):
        st.dataframe(pd.DataFrame([(k, str(v)) for k, v in facts.items() if v is not None],
                                  columns=["", "value"]), hide_index=True, width="stretch")


def shap(lab, o: dict) -> None:
    """SHAP importance bars and the beeswarm plot logged to MLflow."""
    s = o["shap"]
    st.markdown(f"**SHAP** · {s.get('method', '')} on {s.get('sample_size', 0)} holdout claims")
    if s.get("importance"):
        st.altair_chart(charts.importance_bars(s["importance"]), width="stretch")
    if s.get("artifact") and o.get("mlflow_run_id"):
        try:
            image = common.artifact_image(lab, lab.settings.tracking_uri, o["mlflow_run_id"], s["artifact"])
            st.image(image, caption=f"{s['artifact']} of MLflow run {o['mlflow_run_id']}")
        except Exception as exc:  # MLflow down or artifact gone: say so, keep the rest of the page
            st.warning(f"Could not load {s['artifact']} from MLflow: {errors.first_line(exc)}")


def mlflow_link(lab, o: dict) -> None:
    """Where this step's MLflow run is."""
    url = common.mlflow_run_url(lab, o["mlflow_run_id"])
    st.markdown(f"**MLflow run** `{o['mlflow_run_id']}`" + (f" · [open in MLflow UI]({url})" if url else ""))
    facts = {"experiment": o.get("experiment"), "tracking URI": o.get("tracking_uri"),
             "dataset digest": o.get("dataset_digest")}
    facts.update({f"tag {k}": v for k, v in (o.get("tags") or {}).items()})
    rows = [(k, str(v)) for k, v in facts.items() if v not in (None, "")]
    if rows:
        st.dataframe(pd.DataFrame(rows, columns=["", "value"]), hide_index=True, width="stretch")


# (trigger key, keys it shows, renderer, needs the lab): the first renderer whose trigger is present claims its keys.
RENDERERS = (
    ("gate", {"gate"}, lambda o: outputs_deploy.gate(o["gate"]), False),
    ("decision", {"decision", "by", "comment", "at"}, outputs_deploy.decision, False),
    ("evidence", {"evidence"}, outputs_deploy.evidence, True),
    ("sha", {"sha", "message", "author", "seed", "dataset_window", "window_days", "failure_modes"}, commit, False),
    ("tests", {"tests", "passed", "failed", "skipped", "duration_seconds", "exit_code", "sample_rows", "lint"},
     ci_tests, False),
    ("checks", {"checks", "passed", "n_rows"}, validation, False),
    ("challenger", {"challenger", "champion", "baseline", "holdout_rows"}, outputs_deploy.comparison, False),
    ("alias", {"alias", "version", "previous", "previous_champion"}, outputs_deploy.alias_move, False),
    ("agreement_rate", {"rows", "agreement_rate", "disagreement", "accuracy", "staging_version",
                        "champion_version"}, outputs_deploy.shadow, False),
    ("accuracy", {"rows", "accuracy", "staging_version", "champion_version"}, outputs_deploy.shadow, False),
    ("metrics", {"metrics", "params", "train_rows", "holdout_rows", "fit_seconds", "model_version", "artifact_mb",
                 "dataset_digest"}, training, True),
    ("shap", {"shap"}, shap, True),
    ("drift", {"drift"}, lambda o: outputs_deploy.drift(o["drift"]), False),
    ("mlflow_run_id", {"mlflow_run_id", "experiment", "tracking_uri", "dataset_digest", "tags"}, mlflow_link, True),
)


def render(lab, run: Run, step: Step) -> None:
    """Everything a step produced: its error first, then each recognised part, then the rest as JSON."""
    if step.error:
        status = common.shown_status(run, step)
        (st.warning if status in ("held", "rejected") else st.error)(f"**{step.name} {status}:**",
                                                                     icon=icons.status(status))
        st.code(step.error, language=None, wrap_lines=True)
    # A retried step waits as pending/queued with its previous attempt's outputs still stored: not this run's truth.
    o = {} if step.status in WAITING else step.outputs or {}
    if not o:
        if not step.error:
            st.info(f"{step.name} is {step.status}; outputs appear here when it finishes.")
        return
    shown: set[str] = set()
    for trigger, keys, renderer, needs_lab in RENDERERS:
        if trigger in o and trigger not in shown:
            with st.container(border=True):
                renderer(lab, o) if needs_lab else renderer(o)
            shown |= keys
    rest = {k: v for k, v in o.items() if k not in shown}
    if rest:
        with st.expander("Other outputs"):
            st.json(rest)
    with st.expander("Raw outputs (JSON)"):
        st.json(o, expanded=False)

"""The header: title, run picker and status line, and the actions a person takes on the pipeline.

Buttons are enabled from lab.allowed_actions(run), so nothing clickable would be refused; a refusal that still
happens (someone else acted first) is shown with its message and changes nothing.
"""
from __future__ import annotations

import streamlit as st

from engine import pipeline
from engine.config import mask_url
from ui import common, dialogs

ACTIONS = (("commit", "+ Fake Commit", "primary"), ("continue", "Continue to CD →", "secondary"),
           ("approve", "✓ Approve", "secondary"), ("reject", "✗ Reject", "secondary"),
           ("retry", "↻ Retry", "secondary"), ("rollback", "⏪ Rollback", "secondary"))
HINTS = {
    "queued": "Waiting for the runner to pick up the next step…",
    "running": "The pipeline is running: watch the DAG, open a step's Logs.",
    "ci_complete": "CI passed. Click **Continue to CD →** to train the full model and compare it with the champion.",
    "awaiting_approval": "The model passed its gate. Review the evidence, then **✓ Approve** or **✗ Reject**.",
    "failed": "A step failed: open it (red in the DAG) to see why, turn the failure mode off, then **↻ Retry**.",
    "held": "A deploy gate held the run (orange step). Inspect the shadow results; **↻ Retry** when ready.",
    "interrupted": "The worker running a step stopped. **↻ Retry** re-runs it.",
    "promoted": "This model is (or was) the champion. **⏪ Rollback** restores the previous one.",
    "rejected": "A reviewer rejected this model. Commit a new change to try again.",
}


def render(lab) -> dict | None:
    """Draw the header; return the selected run with its steps, or None when there are no runs."""
    runs = lab.runs(limit=50)
    title, picker, links = st.columns([2.2, 2.2, 0.9], vertical_alignment="bottom")
    title.markdown("## 🩺 Claim ML CI/CD Lab")
    with picker:
        run = _pick_run(lab, runs)
    with links:
        _mlflow_link(lab)
    _status_line(run)
    _actions(lab, run)
    dialogs.show_open(lab, run)
    return run


def _pick_run(lab, runs: list[dict]) -> dict | None:
    """The run picker (latest by default); a run from the URL or an action is selected even if it is older."""
    wanted = st.session_state.pop("_pending_run", None)
    if wanted is None:
        wanted = st.session_state.get("run_pick")
    ids = [r["id"] for r in runs]
    if not ids:
        return None
    try:
        run = lab.run(wanted if wanted is not None else ids[0])
    except common.REFUSALS:
        st.warning(f"There is no run {wanted}; showing the latest run instead.")
        run = lab.run(ids[0])
    if run["id"] not in ids:
        ids.append(run["id"])  # older than the list: still selectable
    labels = {r["id"]: common.run_label(r) for r in runs}
    labels[run["id"]] = common.run_label(run)  # fresher than the list's copy
    st.session_state["run_pick"] = run["id"]
    st.selectbox("Pipeline run", ids, format_func=labels.get, key="run_pick", on_change=_run_changed)
    return run


def _run_changed() -> None:
    st.session_state["_step_chosen"] = False  # a new run: follow its active step until a step is picked


def _mlflow_link(lab) -> None:
    uri = mask_url(lab.settings.tracking_uri)  # never show a password
    how = (f"Embedded mode: start it with `mlflow ui --backend-store-uri {uri}`" if uri.startswith("sqlite")
           else f"Tracking server: {uri}")
    st.link_button("MLflow UI ↗", lab.settings.mlflow_ui_url, help=how, width="stretch")


def _status_line(run: dict | None) -> None:
    if run is None:
        st.info("**No runs yet — click + Fake Commit** to start CI for a new commit. "
                "You can read every step's code and config below while you wait.", icon="👋")
        return
    icon = common.STATUS_ICONS.get(run["status"], "")
    message = (run["message"] or "").splitlines()[0][:120] if run["message"] else ""
    st.markdown(f"**run {run['id']}: {run['status']}** {icon} · commit `{run['sha'][:7]}` · "
                f"seed {run['seed']} · window {run['dataset_window']} · {common.md_escape(message)}")
    if run["failure_modes"]:
        st.caption("🧨 failure modes on for this run: " + ", ".join(run["failure_modes"]))


def _actions(lab, run: dict | None) -> None:
    allowed = lab.allowed_actions(run)
    allowed["commit"] = None
    cols = st.columns([1.1, 1.2, 0.9, 0.9, 0.9, 1, 1.3])
    clicked = None
    for col, (name, label, kind) in zip(cols, ACTIONS):
        reason = allowed.get(name)
        if col.button(label, key=f"act_{name}", type=kind, disabled=reason is not None, width="stretch",
                      help=reason or dialogs.HELP[name]):
            clicked = name
    with cols[-1]:
        _failure_modes(lab)
    hint = HINTS.get(run["status"]) if run else None
    if run and run["status"] == "promoted" and allowed["rollback"]:
        hint = "This model is (or was) the champion. Rollback needs an earlier champion: promote another model."
    if hint:
        st.caption("👉 " + hint)
    if clicked == "continue":
        _continue(lab, run)
    elif clicked:
        dialogs.open_dialog(clicked)


def _continue(lab, run: dict) -> None:
    ok, _ = common.attempt(lab.continue_run, run["id"], by=common.who() or "dashboard")
    if ok:
        common.flash(f"Run {run['id']}: CD started (full train → evaluate vs champion → approval)", "🚀")
        common.select_run(run["id"])
        st.rerun()


def _failure_modes(lab) -> None:
    modes = lab.failure_modes()
    on = sum(m["enabled"] for m in modes)
    with st.popover(f"🧨 Failure modes ({on} on)" if on else "🧨 Failure modes", width="stretch"):
        st.caption("Each mode breaks something real in runs committed or retried from now on.")
        for m in modes:
            key = f"fm_{m['name']}"
            st.session_state[key] = m["enabled"]  # the database is the truth; another tab may have changed it
            st.toggle(m["title"], key=key, on_change=_toggle_mode, args=(lab, m["name"], key))
            st.caption(f"Breaks: {m['breaks']}. Caught by **{pipeline.spec(m['caught_by']).title}**.")


def _toggle_mode(lab, name: str, key: str) -> None:
    ok, _ = common.attempt(lab.set_failure_mode, name, bool(st.session_state[key]), common.who() or "dashboard")
    if ok:
        common.flash(f"Failure mode {name} {'on' if st.session_state[key] else 'off'} for the next commit/retry",
                     "🧨")

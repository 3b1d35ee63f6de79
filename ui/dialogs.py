"""The header's dialogs: fake commit, approve/reject with the evidence, rollback, retry.

Which dialog is open lives in session state (a dialog closes by itself only in the browser); every way out of
a dialog (done, or dismissed) clears it.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import Run, pipeline
from engine.config import LIMITS
from engine.lab import SHA_RE
from ui import common, icons, outputs_deploy

HELP = {
    "commit": "Simulate a new commit: starts CI with a fresh (or your) SHA, message and seed",
    "continue": "Start CD: full train, evaluate against the champion, then wait for approval",
    "approve": "Pass the manual gate: deploy to staging, shadow-test, promote",
    "reject": "Stop this model at the manual gate",
    "retry": "Re-run from the step that stopped the run (or an earlier one), with today's failure modes",
    "rollback": "Move the champion alias back to the previous production version",
}


REVIEWER = "Reviewer (required)"
NAME_REQUIRED = "Your name (required)"


def open_dialog(name: str) -> None:
    """Mark dialog `name` open; show_open draws it."""
    st.session_state["_dialog"] = name


def _close() -> None:
    st.session_state.pop("_dialog", None)


def _done(message: str, icon: str, run_id: int | None = None) -> None:
    """An action succeeded: remember it, select the affected run, close the dialog, redraw the page."""
    common.flash(message, icon)
    if run_id is not None:
        common.select_run(run_id)
    _close()
    st.rerun()


def show_open(lab, run: Run | None) -> None:
    """Draw the open dialog, if any. If the run moved meanwhile, submitting shows the engine's refusal."""
    name = st.session_state.get("_dialog")
    if not name:
        return
    if run is None and name not in ("commit", "rollback"):
        _close()
        return
    {"commit": lambda: _commit(lab), "approve": lambda: _approve(lab, run), "reject": lambda: _reject(lab, run),
     "rollback": lambda: _rollback(lab), "retry": lambda: _retry(lab, run)}[name]()


def _name_input(label: str = "Your name") -> str:
    return st.text_input(label, value=common.who(), max_chars=LIMITS["by"], placeholder="e.g. Dana (reviewer)")


def named(name: str, label: str) -> bool:
    """Whether the required name field `label` was filled in; if not, say so under the form (nothing is sent)."""
    if name.strip():
        return True
    st.error(f"Fill in **{label.removesuffix(' (required)')}**: the audit trail records who did this.",
             icon=icons.REFUSED)
    return False


def sha_ok(sha: str) -> bool:
    """Whether the optional SHA field is empty or a git SHA; if not, say what to type (nothing is sent)."""
    if not sha or SHA_RE.match(sha):
        return True
    st.error(f"**Real commit SHA** {common.md_escape(sha[:80])} is not a git commit SHA: type 4 to 64 hex digits "
             "(0-9 and a-f) of a real commit, or leave the field empty for a random fake one.", icon=icons.REFUSED)
    return False


def _remember(name: str) -> None:
    if name.strip():
        st.session_state[common.NAME_KEY] = name.strip()


def _modes_warning(lab, what: str) -> None:
    on = [m for m in lab.failure_modes() if m["enabled"]]
    if on:
        st.warning(f"Failure modes on: {what} will break on purpose — "
                   + "; ".join(f"{m['title']} (caught by {m['caught_by']})" for m in on), icon=icons.FAILURE_MODE)
    else:
        st.caption(f"No failure modes are on: {what} runs clean.")


@st.dialog("Fake commit", on_dismiss=_close)
def _commit(lab) -> None:
    _modes_warning(lab, "this commit")
    with st.form("commit_form", border=False):
        message = st.text_input("Commit message", placeholder="fake commit", max_chars=LIMITS["message"])
        sha = st.text_input("Real commit SHA (optional)", placeholder="empty: a random fake SHA",
                            help="4 to 64 hex digits, e.g. the output of git rev-parse HEAD")
        seed = st.number_input("Seed (optional)", min_value=0, max_value=2**31 - 1, value=None, step=1,
                               placeholder="random", help="The same seed regenerates the same claims")
        author = _name_input("Author (optional)")
        submitted = st.form_submit_button("Start CI", icon=icons.STARTED, type="primary")
    if submitted and sha_ok(sha.strip()):
        ok, run_id = common.attempt(lab.commit, sha=sha.strip() or None, message=message,
                                    seed=None if seed is None else int(seed), author=author,
                                    trigger="dashboard", visitor=common.visitor())
        if ok:
            _remember(author)
            _done(f"Run {run_id} started: CI is running", icons.STARTED, run_id)


def _evidence(lab, run: Run) -> None:
    approval = run.outputs_of("manual_approval")
    if "evidence" in approval:
        outputs_deploy.evidence(lab, approval)
    else:
        st.info("The approval step recorded no evidence; inspect Evaluate vs champion in the inspector.")
    shadow = run.outputs_of("shadow_monitor")
    if shadow.get("accuracy"):
        outputs_deploy.shadow(shadow)


def _decide(lab, run: Run, approve: bool) -> None:
    """The reviewer's form first (it is what the dialog is for), the evidence below it."""
    verb = "Approve" if approve else "Reject"
    with st.form(f"{verb.lower()}_form", border=False):
        by = _name_input(REVIEWER)
        comment = st.text_area("Comment", max_chars=LIMITS["comment"],
                               placeholder="why (recorded in the audit trail and on the model version)")
        submitted = st.form_submit_button(f"{verb} run {run.id}", icon=icons.APPROVE if approve else icons.REJECT,
                                          type="primary")
    if submitted and named(by, REVIEWER):
        ok, _ = common.attempt(lab.approve if approve else lab.reject, run.id, by=by, comment=comment)
        if ok:
            _remember(by)
            _done(f"Run {run.id} {'approved: deploying to staging' if approve else 'rejected'}",
                  icons.APPROVE if approve else icons.REJECT, run.id)
    st.divider()
    _evidence(lab, run)


@st.dialog("Approve deployment", width="large", on_dismiss=_close)
def _approve(lab, run: Run) -> None:
    _decide(lab, run, approve=True)


@st.dialog("Reject deployment", width="large", on_dismiss=_close)
def _reject(lab, run: Run) -> None:
    _decide(lab, run, approve=False)


@st.dialog("Roll back production", on_dismiss=_close)
def _rollback(lab) -> None:
    current, target = lab.rollback_target()
    if target is None:
        st.info(f"Rollback is not available: {common.rollback_blocked(lab)}.")
        return
    st.markdown(f"The **champion** alias moves from version **{current}** back to version **{target}**; "
                "the live model and the next evaluation use it at once.")
    history = lab.champion_history()
    if history:
        st.dataframe(pd.DataFrame(history)[["version", "action", "moved_by", "reason", "since"]]
                     .assign(since=lambda d: d["since"].map(common.fmt_ts)).iloc[::-1],
                     hide_index=True, width="stretch")
    with st.form("rollback_form", border=False):
        by = _name_input(NAME_REQUIRED)
        reason = st.text_area("Reason", max_chars=LIMITS["reason"], placeholder="what went wrong in production")
        submitted = st.form_submit_button(f"Roll back to version {target}", icon=icons.ROLLBACK, type="primary")
    if submitted and named(by, NAME_REQUIRED):
        ok, moved = common.attempt(lab.rollback, by=by, reason=reason, **common.acting())
        if ok:
            _remember(by)
            _done(f"Champion rolled back: v{moved['from_version']} → v{moved['to_version']}", icons.ROLLBACK)


def retry_choices(run: Run) -> tuple[list[str], str]:
    """Steps a retry may start from (up to the one that stopped the run) and that step as the default."""
    names = [s.name for s in run.steps]  # the run's own steps, in its order (it may predate a step)
    stopped = next((s.name for s in run.steps if s.status in ("failed", "interrupted")), None)
    if stopped is None:
        return names, names[0]
    return names[: names.index(stopped) + 1], stopped


@st.dialog("Retry run", on_dismiss=_close)
def _retry(lab, run: Run) -> None:
    choices, default = retry_choices(run)
    st.markdown(f"Run {run.id} is **{run.status}**. Steps from the chosen one on run again.")
    _modes_warning(lab, "the retry")
    with st.form("retry_form", border=False):
        start = st.selectbox("Retry from", choices, index=choices.index(default),
                             format_func=lambda n: pipeline.spec(n).title)
        by = _name_input("Your name (optional)")
        submitted = st.form_submit_button(f"Retry run {run.id}", icon=icons.RETRY, type="primary")
    if submitted:
        ok, started = common.attempt(lab.retry, run.id, from_step=start, by=by)
        if ok:
            _remember(by)
            _done(f"Run {run.id} retrying from {started}", icons.RETRY, run.id)

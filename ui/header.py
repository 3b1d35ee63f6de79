"""The header: title, run picker, and the actions a person takes on the pipeline; status() draws the run's status
line and hint, which the dashboard puts in its live panels so they follow a moving run every second.

Buttons are enabled from lab.allowed_actions(run), so nothing clickable would be refused; a refusal that still
happens (someone else acted first) is shown with its message and changes nothing. Below 640 px the actions
collapse into one row: the action the run's status calls for, and a menu with the rest (CSS in ui/theme.css
shows one of the two rows).
"""
from __future__ import annotations

import streamlit as st

from engine import Run, pipeline
from engine.lab import champion_line
from ui import common, dialogs, icons, origin

# (action, label, icon)
ACTIONS = (("commit", "Fake commit", icons.COMMIT), ("continue", "Continue to CD", icons.CONTINUE),
           ("approve", "Approve", icons.APPROVE), ("reject", "Reject", icons.REJECT),
           ("retry", "Retry", icons.RETRY), ("rollback", "Rollback", icons.ROLLBACK))
MENU_KEY = "phone_more"  # the phone row's menu: open (True) or closed
MENU_CHOICE = "_phone_choice"  # the action chosen in that menu, for the page run its click causes
MODES_KEY = "fm_open"     # the wide row's Failure modes popover: open (True) or closed
# The action a run's status calls for: the primary button (and the one shown beside the menu on a phone).
NEXT_ACTION = {"ci_complete": "continue", "awaiting_approval": "approve", "failed": "retry", "held": "retry",
               "interrupted": "retry"}
HINTS = {
    "queued": "Waiting for the runner to pick up the next step.",
    "running": "The pipeline is running: watch the DAG, open a step's Logs.",
    "ci_complete": "CI passed. Click **Continue to CD** to train the full model and compare it with the champion.",
    "awaiting_approval": "The model passed its gate. Review the evidence, then **Approve** or **Reject**.",
    "failed": "A step failed: it is open below (red in the DAG). Turn the failure mode off, then **Retry**.",
    "held": "A deploy gate held the run (orange step). Inspect the shadow results; **Retry** when ready.",
    "interrupted": "The worker running a step stopped. **Retry** re-runs it.",
    "promoted": "This model is the champion. **Rollback** restores the previous one.",
    "rejected": "A reviewer rejected this model (brown step). Commit a new change to try again.",
}


def render(lab) -> Run | None:
    """Draw the header; return the selected run with its steps, or None when there are no runs."""
    runs = lab.runs(limit=50)
    title, picker, links = st.columns([2.2, 2.2, 0.9], vertical_alignment="bottom")
    title.markdown(f"## {icons.APP} Claim ML CI/CD Lab")
    title.caption(_workers_line(lab))
    with picker:
        run = _pick_run(lab, runs)
    with links:
        mlflow_button(lab)
    _actions(lab, run)
    dialogs.show_open(lab, run)
    return run


def drawn_for(run: Run | None) -> tuple | None:
    """What render() drew the actions and the run picker for: the run and its status, with queued and running
    as one ("in progress": the same actions are allowed). The dashboard redraws the header when this changes;
    status() follows every move in between."""
    if run is None:
        return None
    return run.id, common.settled_status(run)


def status(lab, run: Run | None) -> None:
    """The shown run's status line and the hint for what to do next (redrawn every second while it moves)."""
    _status_line(run)
    hint = _promoted_hint(lab, run) if run and run.status == "promoted" else HINTS.get(run.status) if run \
        else None
    if hint:
        st.caption(f"{icons.HINT} {hint}")


def _promoted_hint(lab, run: Run) -> str:
    """What a promoted run's model is now: champion, undone by a rollback, or replaced by a later promotion."""
    line = champion_line(lab.champion_history())[0]
    serving = f"@champion serves version {line[-1]['version']}" if line else "no model is champion"
    if run.rolled_back:
        return f"A rollback took this model out of production; {serving}. Commit a change to train a new one."
    if not line or line[-1].get("run_id") != run.id:
        return f"This model was champion until a later promotion replaced it; {serving}."
    if lab.rollback_target()[1] is None:
        return "This model is the champion. Rollback needs an earlier champion: promote another model."
    return HINTS["promoted"]


def _workers_line(lab) -> str:
    """How many runners heartbeat (one query): with none alive, a commit waits in the queue."""
    alive = sum(w["alive"] for w in lab.workers())
    if not alive:
        return f"{icons.WORKERS} No runner alive: new runs wait in the queue until one starts"
    return f"{icons.WORKERS} {alive} runner{'s' if alive != 1 else ''} alive"


def _pick_run(lab, runs: list[Run]) -> Run | None:
    """The run picker (latest by default); a run from the URL or an action is selected even if it is older.
    Someone watching the newest run is moved to a newer one when it appears (a commit from the CLI or a tab)."""
    ss = st.session_state
    ids = [r.id for r in runs]
    newest_seen, ss["_newest_seen"] = ss.get("_newest_seen"), ids[0] if ids else None
    wanted = ss.pop("_pending_run", None)
    if wanted is None:
        wanted = ss.get("run_pick")
        if not isinstance(wanted, int):
            # The browser keeps the picked option's label; once the run's status changed that label matches no
            # option and Streamlit hands the label back: the run shown last is still the one picked.
            wanted = ss.get("_run_shown")
        if ids and wanted is not None and wanted == newest_seen and ids[0] > wanted:
            wanted = ids[0]
            st.toast(f"Run {wanted} started: showing it", icon=icons.NEW_RUN)
            ss["_step_chosen"] = ss["_tab_chosen"] = False
    if not ids:
        return None
    try:
        run = common.load_run(lab, wanted if wanted is not None else ids[0])
    except common.REFUSALS:
        st.warning(f"There is no run {wanted}; showing the latest run instead.")
        run = common.load_run(lab, ids[0])
    if run.id not in ids:
        ids.append(run.id)  # older than the list: still selectable
    undone = champion_line(lab.champion_history())[1]
    labels = {r.id: common.run_label(common.with_rollback(r, undone)) for r in runs}
    labels[run.id] = common.run_label(run)  # fresher than the list's copy
    ss["run_pick"] = ss["_run_shown"] = run.id
    st.selectbox("Pipeline run", ids, format_func=labels.get, key="run_pick", on_change=_run_changed)
    return run


def _run_changed() -> None:
    # a new run: follow its active step (on its live log while it runs) until a step or a view is picked
    st.session_state["_step_chosen"] = st.session_state["_tab_chosen"] = False


def mlflow_button(lab) -> None:
    """MLflow UI: a link to the tracking server, or (embedded store) a popover with the command that serves it."""
    url, command = common.mlflow_ui(lab.settings)
    if url:
        st.link_button("MLflow UI", url, icon=icons.EXTERNAL, width="stretch", help=f"Tracking server: {url}")
        return
    with st.popover("MLflow UI", icon=icons.MLFLOW, width="stretch"):
        st.markdown("The lab keeps MLflow in an embedded store; no MLflow server runs. Serve this store with:")
        st.code(command, language="bash", wrap_lines=True)
        st.caption("then open `http://127.0.0.1:5000`. The explorer on this page reads the same store.")


def _status_line(run: Run | None) -> None:
    if run is None:
        st.info("**No runs yet: click Fake commit** to start CI for a new commit. "
                "You can read every step's code and config below while you wait.", icon=icons.WELCOME)
        return
    message = (run.message or "").splitlines()[0][:120] if run.message else ""
    status, icon = run.status, icons.status(run.status)
    if run.rolled_back:
        status, icon = f"{status}, then rolled back", icons.STATUS["rolled_back"]
    st.markdown(f"**run {run.id}: {status}** {icon} · commit `{run.sha[:7]}` {origin.markdown(run)} · "
                f"seed {run.seed} · window {run.dataset_window} · {common.md_escape(message)}")
    if run.rolled_back:
        st.warning(f"This run's model is no longer champion: {common.rolled_back_text(run.rolled_back)}.",
                   icon=icons.STATUS["rolled_back"])
    if run.failure_modes:
        st.caption(f"{icons.FAILURE_MODE} failure modes on for this run: " + ", ".join(run.failure_modes))


def primary_action(run: Run | None, allowed: dict) -> str:
    """The action the run's status calls for (when allowed), else Fake commit."""
    wanted = NEXT_ACTION.get(run.status) if run else None
    return wanted if wanted and allowed.get(wanted) is None else "commit"


def _actions(lab, run: Run | None) -> None:
    allowed = lab.allowed_actions(run)
    allowed["commit"] = None
    allowed["rollback"] = (allowed["rollback"] and common.rollback_blocked(lab)) or \
        common.operator_only(lab, "Rollback")
    primary = primary_action(run, allowed)
    clicked = None
    with st.container(key="actions_wide"):
        cols = st.columns([1.1, 1.3, 0.95, 0.95, 0.9, 1.05, 1.4])
        for col, (name, label, icon) in zip(cols, ACTIONS):
            if _button(col, name, label, icon, allowed, primary, "act"):
                clicked = name
        with cols[-1]:
            _failure_modes(lab, "fm")
    with st.container(key="actions_narrow"):
        first, menu = st.columns([1.4, 1])
        name, label, icon = next(a for a in ACTIONS if a[0] == primary)
        if _button(first, name, label, icon, allowed, primary, "phone"):
            clicked = name
        # Keyed and tracked, so that an action chosen in it closes it: it stayed open over the dialog it opened.
        # Its content is drawn only while it is open (its opening reruns the page), like the failure modes'.
        with menu, st.popover("More", icon=icons.MENU, width="stretch", key=MENU_KEY, on_change="rerun") as more:
            if more.open:
                for name, label, icon in ACTIONS:
                    if name != primary:
                        _button(st, name, label, icon, allowed, primary, "phone", _chosen_in_menu, (name,))
                _failure_modes(lab, "fm_phone")
        clicked = st.session_state.pop(MENU_CHOICE, None) or clicked
    if clicked == "continue":
        _continue(lab, run)
    elif clicked:
        dialogs.open_dialog(clicked)


def _button(where, name: str, label: str, icon: str, allowed: dict, primary: str, prefix: str,
            on_click=None, args: tuple = ()) -> bool:
    reason = allowed.get(name)
    return where.button(label, key=f"{prefix}_{name}", icon=icon, type="primary" if name == primary else "secondary",
                        disabled=reason is not None, width="stretch", help=reason or dialogs.HELP[name],
                        on_click=on_click, args=args)


def _chosen_in_menu(name: str) -> None:
    # A callback runs before the page: the menu is then drawn closed (it stayed open over the dialog it opened),
    # and so without this button, whose click the page would no longer see. The choice is kept for it instead.
    st.session_state[MENU_KEY] = False
    st.session_state[MENU_CHOICE] = name


def _continue(lab, run: Run) -> None:
    ok, _ = common.attempt(lab.continue_run, run.id, by=common.who() or "dashboard")
    if ok:
        common.flash(f"Run {run.id}: CD started (full train, evaluate vs champion, approval)", icons.STARTED)
        common.select_run(run.id)
        st.rerun()


def _failure_modes(lab, prefix: str) -> None:
    """The failure modes' toggles: in their own popover on the wide row ("fm"), else where they are called. A
    closed popover's content is not drawn: a page run that would draw it costs every watching visitor's server
    (a page drawn while a run moves), and its opening reruns the page."""
    modes = lab.failure_modes()
    on = sum(m["enabled"] for m in modes)
    if prefix == "fm":
        holder = st.popover(f"Failure modes ({on} on)" if on else "Failure modes", icon=icons.FAILURE_MODE,
                            width="stretch", key=MODES_KEY, on_change="rerun")
        if not holder.open:
            return
    else:
        holder = st.container()
    with holder:
        st.caption("Each failure mode breaks something real in runs committed or retried from now on.")
        locked = common.operator_only(lab, "Turning a failure mode on or off")
        if locked:
            st.caption(f"{icons.OPERATOR} {locked}.")
        for m in modes:
            key = f"{prefix}_{m['name']}"
            st.session_state[key] = m["enabled"]  # the database is the truth; another tab may have changed it
            st.toggle(m["title"], key=key, on_change=_toggle_mode, args=(lab, m["name"], key), disabled=bool(locked),
                      help=locked)
            st.caption(f"Breaks: {m['breaks']}. Caught by **{pipeline.spec(m['caught_by']).title}**.")


def _toggle_mode(lab, name: str, key: str) -> None:
    ok, _ = common.attempt(lab.set_failure_mode, name, bool(st.session_state[key]), common.who() or "dashboard",
                           **common.acting())
    if ok:
        common.flash(f"Failure mode {name} {'on' if st.session_state[key] else 'off'} for the next commit/retry",
                     icons.FAILURE_MODE)

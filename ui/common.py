"""What every page shares: the one Lab per server process, the selection (mirrored in the URL), and formatting."""
from __future__ import annotations

import base64
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine import BadInput, IllegalTransition, Lab, Refused, Run, RunStatus, Step, StepStatus, pipeline
from engine.config import CHAMPION, mask_url
from engine.guard import address_visitor
from engine.lab import champion_line
from engine.shared import SharedLab
from ui import errors, icons
from ui.pagekit import arrived, strict_int

TABS = ("Code", "Config", "Logs", "Outputs")
NAME_KEY = "lab_user_name"  # shared with the other pages (ui/pagekit.py): who signs approvals and rollbacks
OPERATOR_KEY = "_operator_key"  # not a widget key: set once the lab accepted it, kept while the session lives
# Runs in these are moving: live panels poll while the selected run is in one of them.
ACTIVE = frozenset({RunStatus.QUEUED.value, RunStatus.RUNNING.value})
LIVE_STEPS = frozenset({StepStatus.QUEUED.value, StepStatus.RUNNING.value})
# Errors an action raises on purpose: shown as a message, and nothing changed.
REFUSALS = (BadInput, Refused, IllegalTransition)

STEP_COLOURS = {
    StepStatus.PENDING.value: "#B8C0CC",
    StepStatus.QUEUED.value: "#9FCDF5",
    StepStatus.RUNNING.value: "#1F6FD6",
    StepStatus.SUCCEEDED.value: "#2E9E5B",
    StepStatus.FAILED.value: "#D64545",
    StepStatus.AWAITING_APPROVAL.value: "#F2B01E",
    StepStatus.INTERRUPTED.value: "#8E5BD9",
    StepStatus.SKIPPED.value: "#E3E7ED",
    "held": "#F07B1A",  # the failed gate step of a run that rests as held
    "rejected": "#6B4E3D",  # the manual gate of a rejected run: a person said no, nothing broke
    "rolled_back": "#7A869A",  # the promote step of a run whose champion was rolled back
}


@st.cache_resource
def get_lab() -> Lab:
    """The lab of this server process, its reads shared by every session (engine/shared.py); the steps run in a
    worker (app.py starts one)."""
    lab = Lab()
    return SharedLab(lab, ttl=lab.settings.shared_read_seconds)


# ---- actions ----------------------------------------------------------------------------------------------
def visitor() -> str | None:
    """Who acts, for the demo's pacing and limits: the client's address, else this browser session; None outside
    a script run. A reload is a new session but the same address, so it does not start the pacing over."""
    address = st.context.ip_address  # None on localhost setups; AppTest hands out a stand-in object
    if isinstance(address, str) and address:
        return address_visitor(address)  # hashed; the API's webhook names its callers the same way
    ctx = get_script_run_ctx()
    return f"session:{ctx.session_id}" if ctx else None


def operator_key() -> str | None:
    """The operator key this browser session entered and the lab accepted (Demo page), or None."""
    return st.session_state.get(OPERATOR_KEY)


def acting() -> dict:
    """Keyword arguments that say who acts on a shared control: the visitor and, once entered, the operator key."""
    return {"visitor": visitor(), "operator_key": operator_key()}


def operator_only(lab: Lab, what: str) -> str | None:
    """Why `what` is disabled for this visitor (demo mode without the operator key), or None when allowed."""
    if not lab.settings.demo or operator_key():
        return None
    return (f"{what} changes the lab for every visitor of this public demo, so it needs the operator key "
            "(Demo autopilot page, Operator)")


def attempt(action: Callable, *args, **kwargs) -> tuple[bool, Any]:
    """Call a Lab action; a refusal is shown with its message and returns (False, None)."""
    try:
        return True, action(*args, **kwargs)
    except REFUSALS as exc:
        st.error(errors.first_line(exc, errors.REFUSAL_CHARS), icon=icons.REFUSED)
        return False, None


def flash(message: str, icon: str = icons.DONE) -> None:
    """Keep a message to show after the next rerun (an action reruns the page at once)."""
    st.session_state["_flash"] = (message, icon)


def show_flash() -> None:
    """Show the message kept by flash(), once."""
    kept = st.session_state.pop("_flash", None)
    if kept:
        st.toast(kept[0], icon=kept[1])


# ---- selection: session state is the truth, the URL mirrors it ---------------------------------------------
def restore_selection() -> None:
    """Take run/step/tab from the URL on arriving at the page (a copied link, a link from another page); back from
    another page, restore the run picker's dropped widget state (the step and the view are plain session state,
    which outlives the page). Later in the visit the URL is the page's own (pagekit.arrived)."""
    ss = st.session_state
    keep = ss.get("_keep")
    if keep and keep.get("run") is not None and "run_pick" not in ss:
        ss["_pending_run"] = keep["run"]
    if not arrived():
        return
    qp = st.query_params
    run_id, step, tab = strict_int(qp.get("run")), qp.get("step"), qp.get("tab")  # typed by strangers: strictly
    if run_id is not None:
        ss["_pending_run"], ss["_step_chosen"], ss["_tab_chosen"] = run_id, False, False
    if step in pipeline.NAMES:
        ss["step_pick"], ss["_step_chosen"] = step, True
    if tab in TABS:
        ss["tab_pick"], ss["_tab_chosen"] = tab, True


def keep_selection(run_id: int | None, step: str, tab: str) -> None:
    """Mirror the selection into the URL and keep a copy that outlives the widgets."""
    ss = st.session_state
    ss["_keep"] = {"run": run_id}
    wanted = {"run": None if run_id is None else str(run_id), "step": step, "tab": tab}
    for key, value in wanted.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value


def pick_key(key: str, value: str) -> str:
    """The widget key of a picker whose value lives in st.session_state[key] and that the page sets as well
    (following a run, a DAG click, a link). The key names the value: setting a widget's state from the page
    reaches the browser late, and a rerun the browser asked for meanwhile sends the old value back as if the
    person had picked it (the inspector then stopped following the run, or a click was undone). A new value is a
    new widget, and the old one's late answer changes nothing."""
    return f"{key}:{value}"


def select_run(run_id: int) -> None:
    """Select `run_id` on the next rerun (its widget is already drawn in this one); follow its active step."""
    st.session_state["_pending_run"] = int(run_id)
    st.session_state["_step_chosen"] = st.session_state["_tab_chosen"] = False


def choose_step(name: str) -> None:
    """The person picked a step (DAG click or selector): stop following the active step."""
    st.session_state["step_pick"] = name
    st.session_state["_step_chosen"] = True


def follow(run: Run | None) -> None:
    """While nobody chose a step, show the one worth looking at; while nobody chose a view either, a running step
    opens on its live log and a step at rest on its outputs (as a CI service opens a running job on its log)."""
    ss = st.session_state
    if ss.get("_step_chosen"):
        return
    ss["step_pick"] = focus_step(run)
    if not ss.get("_tab_chosen"):
        step = next((s for s in run.steps if s.name == ss["step_pick"]), None) if run else None
        ss["tab_pick"] = "Logs" if step and step.status in LIVE_STEPS else "Outputs"


def focus_step(run: Run | None) -> str:
    """The step worth looking at when nobody chose one: running, else stopped, else the last one reached."""
    if not run:
        return pipeline.NAMES[0]
    steps = run.steps
    for wanted in (("running",), ("awaiting_approval", "failed", "interrupted"), ("queued",)):
        hit = next((s.name for s in steps if s.status in wanted), None)
        if hit:
            return hit
    reached = [s.name for s in steps if s.status == "succeeded"]
    return reached[-1] if reached else pipeline.NAMES[0]


# ---- formatting -------------------------------------------------------------------------------------------
def shown_status(run: Run | None, step: Step | None) -> str:
    """A step's status as a person should read it: the failed gate of a held run is "held", of a rejected run
    "rejected"; the step that made a champion which was later rolled back is "rolled_back"."""
    status = step.status.value if step else StepStatus.PENDING.value
    if not run or not step:
        return status
    if status == StepStatus.FAILED and run.status in (RunStatus.HELD, RunStatus.REJECTED):
        return run.status.value
    if status == StepStatus.SUCCEEDED.value and run.rolled_back and \
            (step.outputs or {}).get("alias") == CHAMPION:
        return "rolled_back"
    return status


def step_colour(run: Run | None, step: Step | None) -> str:
    """Fill colour of a step as shown (see shown_status)."""
    return STEP_COLOURS.get(shown_status(run, step), STEP_COLOURS["pending"])


def load_run(lab: Lab, run_id: int) -> Run:
    """A run with its steps, and `rolled_back` (the rollback row, or None) so every panel tells the same story."""
    return with_rollback(lab.run(run_id), champion_line(lab.champion_history())[1])


def with_rollback(run: Run, undone: dict[int, dict]) -> Run:
    """`run` with `rolled_back`: the rollback row that undid its promotion (`undone`, by run id), or None."""
    return dataclasses.replace(run, rolled_back=undone.get(run.id) if run.status is RunStatus.PROMOTED else None)


def rollback_blocked(lab: Lab) -> str | None:
    """Why a rollback is not possible now (None when it is). After a rollback back to the first champion, say so:
    the engine's "only model that has been champion" reads as if the undone versions never were."""
    current, target = lab.rollback_target()
    if target is not None:
        return None
    history = lab.champion_history()
    line = champion_line(history)[0]
    undone = sorted({h["version"] for h in history if h["action"] != "rollback"} - {h["version"] for h in line})
    if len(line) != 1 or not undone:
        return current
    was = f"version {undone[0]}" if len(undone) == 1 else \
        f"versions {', '.join(map(str, undone[:-1]))} and {undone[-1]}"
    rollbacks = "a rollback" if sum(h["action"] == "rollback" for h in history) == 1 else "rollbacks"
    return (f"version {line[0]['version']} is champion again since {rollbacks} undid {was}, and no version was "
            f"champion before version {line[0]['version']}: there is nothing earlier to roll back to")


def rolled_back_text(row: dict) -> str:
    """'rolled back by Sam at 2026-11-28 09:01:02: bad canary' (markdown-escaped user text)."""
    why = f": {md_escape(row['reason'])}" if row.get("reason") else ""
    return f"rolled back by {md_escape(row['moved_by'])} at {fmt_ts(row['since'])}{why}"


def live(run: Run | None) -> bool:
    """Whether the run still moves: its status is active, or any of its steps is queued or running (a run can be
    marked failed while a parallel step is still finishing)."""
    if not run:
        return False
    return run.status in ACTIVE or any(s.status in LIVE_STEPS for s in run.steps or ())


def duration(step: Step) -> float | None:
    """Seconds a finished step took, else None. A step that waits for a person took until the decision: its
    own work (gathering the evidence) ends in a fraction of a second, and then the run waits there."""
    if step.started_at and step.finished_at and step.status != StepStatus.RUNNING.value:
        decided = (step.outputs or {}).get("at") if pipeline.spec(step.name).approval else None
        if step.status == StepStatus.AWAITING_APPROVAL.value:
            return None  # still waiting: see waiting()
        return max(0.0, max(step.finished_at, decided or 0) - step.started_at)
    return None


def waiting(step: Step, now: float | None = None) -> float | None:
    """Seconds a step has been waiting for a person's decision, else None."""
    if step.status != StepStatus.AWAITING_APPROVAL.value or not step.started_at:
        return None
    return max(0.0, (time.time() if now is None else now) - step.started_at)


def fmt_seconds(seconds: float | None) -> str:
    """1.3 s, 2 min 5 s, or an em dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def fmt_ts(ts: float | None) -> str:
    """A local time stamp to the second, or an em dash."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"


def iso_ts(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC to the second: 2026-11-28T09:01:02Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def settled_status(run: Run) -> str:
    """The run's status with queued and running as one, "in progress": what the header and the run picker show
    (they offer the same then); the live status line says which of the two. A promotion a rollback undid (see
    with_rollback) reads "promoted, rolled back"."""
    if run.rolled_back:
        return f"{run.status}, rolled back"
    return "in progress" if run.status in ACTIVE else run.status.value


def run_label(run: Run) -> str:
    """One line naming a run: id, status, short SHA, message."""
    msg = (run.message or "").splitlines()[0][:48] if run.message else ""
    return f"run {run.id} · {settled_status(run)} · {run.sha[:7]} · {msg}"


# ---- MLflow reads (short-TTL cache; the lab is not hashed, its tracking URI is part of the key) --------------
@st.cache_data(ttl=5, show_spinner=False)
def mlflow_runs(_lab: Lab, uri: str, stage: str | None, page_token: str | None, per_page: int = 10,
                stamp: tuple = (), where: str = ""):
    """One page of MLflow runs matching `where` (MLflow search syntax): (rows, next page token). A new `stamp`
    (see state_stamp) skips the cache."""
    return _lab.mlflow_runs(stage, per_page, page_token, where)


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def artifact_text(_lab: Lab, uri: str, run_id: str, path: str, limit: int = 200_000) -> str | None:
    """A text artifact's content (cut at `limit` characters), or None when it is not UTF-8 text."""
    try:
        return _lab.artifact(run_id, path)[:limit].decode()
    except UnicodeDecodeError:
        return None


@st.cache_data(ttl=5, show_spinner=False)
def mlflow_run(_lab: Lab, uri: str, run_id: str) -> dict:
    """Params, metrics, tags, inputs and artifact paths of one MLflow run."""
    return _lab.mlflow_run(run_id)


@st.cache_data(ttl=5, show_spinner=False)
def model_versions(_lab: Lab, uri: str, stamp: tuple = ()) -> list[dict]:
    """Registered versions with aliases, newest first. A new `stamp` (see state_stamp) skips the cache."""
    return _lab.model_versions()


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def artifact_image(_lab: Lab, uri: str, run_id: str, path: str) -> str:
    """A PNG artifact as a data URI for st.image (artifacts never change once logged, so they are kept longer).

    The page carries the picture itself. Given bytes, st.image serves them from a media URL that Streamlit drops
    at the session's next page run: a browser that asks for it after a page switch, or late on a busy machine,
    gets a 404 and a broken image.
    """
    return "data:image/png;base64," + base64.b64encode(_lab.artifact(run_id, path)).decode()


def state_stamp(lab: Lab, run: Run | None) -> tuple:
    """Changes whenever the selected run moves or the champion alias moves: MLflow reads keyed on it stay fresh."""
    return (run and run.id, run and run.updated_at, len(lab.champion_history()))


def mlflow_ui(settings) -> tuple[str | None, str | None]:
    """(link, command): a tracking server is linked; the embedded store gets the one command that serves it."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        return mask_url(settings.mlflow_ui_url), None  # a link never carries a password
    if uri.startswith("sqlite:///"):  # relative paths are relative to where the app started: make them real
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return None, (f"mlflow ui --backend-store-uri {mask_url(uri)} --default-artifact-root "
                  f"{mask_url(settings.artifact_root)} --host 127.0.0.1 --port 5000")


def mlflow_run_url(lab: Lab, run_id: str) -> str | None:
    """Link to a run in the MLflow UI; None in embedded mode (no MLflow server answers) or when MLflow is down."""
    url, _ = mlflow_ui(lab.settings)
    if url is None:
        return None
    try:
        return f"{url.rstrip('/')}/#/experiments/{lab.mlflow_experiment_id()}/runs/{run_id}"
    except Exception:  # MLflow down: the caller shows the bare run id instead
        return None


def md_escape(text: str) -> str:
    """Backslash-escape markdown so user text (messages, names) shows literally: no links, images or colours."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~:$=&\"'^" else ch for ch in str(text))


def who() -> str:
    """The name this browser session last acted under ('' until it gives one)."""
    return st.session_state.get(NAME_KEY, "")

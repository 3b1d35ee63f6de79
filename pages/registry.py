"""Model registry: every version of claims-settlement-rf, its lineage, who held champion when, and rollback."""
import streamlit as st

from engine import BadInput, IllegalTransition, Refused
from engine.config import LIMITS, MODEL_NAME
from ui import icons, lineage
from ui import registry as r
from ui.common import acting, get_lab, md_escape, operator_only, rollback_blocked
from ui.pagekit import name_input

FLASH = "registry_flash"


@st.cache_data(ttl=5, show_spinner=False)
def load_versions(uri: str):
    """(versions frame, alias map) from MLflow (uri keys the cache per tracking store)."""
    lab = get_lab()
    aliases = r.alias_map(lab)
    versions = lab.model_versions()
    return r.versions_frame(versions, r.cd_metrics(lab) if versions else {}, aliases), aliases


def versions_section() -> None:
    """Aliases at a glance and the versions table, champion shaded."""
    frame, aliases = load_versions(get_lab().settings.tracking_uri)
    cols = st.columns(len(aliases))
    for col, (alias, version) in zip(cols, aliases.items()):
        col.metric(f"@{alias}", f"version {version}" if version else "none")
    if frame.empty:
        st.info("The registry is empty. A version is registered by a run's **Full train** step: make a commit, "
                "wait for ci_complete, then **Continue to CD** (walkthrough steps 1 and 4, or the demo autopilot). "
                "Approving it deploys it to staging and, after shadow monitoring, makes it champion.")
        return
    st.dataframe(r.highlight_champion(frame), hide_index=True, key="versions_table", column_config={
        "version": st.column_config.NumberColumn("version", format="%d"),
        "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        **{m: st.column_config.NumberColumn(m, format="%.4f") for m in r.METRICS}})
    st.caption("Metrics are the full-train holdout metrics logged to each version's MLflow run; tags record "
               "provenance (commit, pipeline run) and every approval and rollback decision.")


@st.cache_data(ttl=5, show_spinner=False)
def load_lineage(uri: str) -> lineage.Lineage:
    """The lineage graph's data (uri keys the cache per tracking store)."""
    return lineage.load(get_lab())


def lineage_section() -> None:
    """Where each version came from and where the aliases point; a click details a version below."""
    st.subheader("Lineage")
    graph = load_lineage(get_lab().settings.tracking_uri)
    if not graph.versions:
        st.caption("No version is registered yet, so there is no lineage to draw.")
        return
    shown = f"The newest {lineage.NEWEST} versions" if len(graph.versions) >= lineage.NEWEST else "Every version"
    st.caption(f"{shown}: on the left, the pipeline runs that trained them (border: run status) and the aliases "
               "pointing at the version they hold now; a version that was champion before says until when (UTC). "
               "Click a run, version or alias to see that version beside the graph (below it on a phone).")
    drawing, detail = st.columns([1, 1], gap="large")  # a phone stacks them
    with drawing:
        picked = lineage.draw(graph)
    if picked is not None:
        with detail:
            lineage.details(get_lab(), graph, picked)


def history_section() -> None:
    """The champion alias over time, as a timeline and a table."""
    st.subheader("Who was champion, when")
    history = get_lab().champion_history()
    if not history:
        st.info("No version has been champion yet: the first approved run that passes shadow monitoring "
                "becomes champion.")
        return
    frame = r.history_frame(history)
    st.altair_chart(r.history_chart(frame), width="stretch")
    table = frame.drop(columns=["label", "since_ms", "until_ms"]).iloc[::-1]
    st.dataframe(table, hide_index=True, key="champion_history_table",
                 column_config={"since": st.column_config.DatetimeColumn("since (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                                "until": st.column_config.DatetimeColumn("until (UTC)",
                                                                         format="YYYY-MM-DD HH:mm:ss")})


def rollback_section() -> None:
    """Roll champion back to the version before it, signed and explained; or say why that is not possible."""
    st.subheader("Roll production back")
    outcome = st.session_state.pop(FLASH, None)
    if outcome:
        (st.success if outcome[0] else st.error)(outcome[1])
    current, target = get_lab().rollback_target()
    if target is None:
        st.info(f"Rollback is not available: {rollback_blocked(get_lab())}.")
        return
    locked = operator_only(get_lab(), "A rollback")
    if locked:
        st.info(f"{locked}. It would move @champion from version {current} to version {target}.", icon=icons.OPERATOR)
        return
    st.write(f"Rolling back moves **@champion** from version **{current}** to version **{target}**, the model "
             "that was champion before it. The live stream and the scoring form serve it at once.")
    with st.form("rollback_form"):
        name_input("rollback_by", "Your name (required)")
        st.text_input("Reason", key="rollback_reason", placeholder=f"e.g. false denials up since v{current}",
                      max_chars=LIMITS["reason"])
        st.form_submit_button(f"Roll back to version {target}", type="primary", on_click=_roll_back)


def _roll_back() -> None:
    # A callback runs before the page is drawn again, so the page shows the state after the rollback, and a
    # rollback that became impossible meanwhile (someone else rolled back) is refused with the engine's reason.
    by = st.session_state.get("rollback_by", "").strip()
    if not by:
        st.session_state[FLASH] = (False, "Rollback not done: fill in **Your name**, the audit trail records who "
                                          "rolled back.")
        return
    try:
        moved = get_lab().rollback(by, st.session_state.get("rollback_reason", ""), **acting())
    except (BadInput, Refused, IllegalTransition) as exc:  # said as the page says it (after a rollback too)
        st.session_state[FLASH] = (False, f"Rollback refused: {rollback_blocked(get_lab()) or exc}")
        return
    load_versions.clear()
    load_lineage.clear()
    st.session_state[FLASH] = (True, f"Champion moved from version {moved['from_version']} to version "
                                     f"{moved['to_version']} (signed by {md_escape(by)}).")


st.title("Model registry")
st.caption(f"Registered model **{MODEL_NAME}** in MLflow. Deploying *is* moving an alias: @challenger is the "
           "newest trained version, @staging receives shadow traffic, @champion serves production.")
versions_section()
lineage_section()
history_section()
rollback_section()

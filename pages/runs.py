"""Run history: every run as a sortable table, filters, a CSV of exactly the rows shown, a timeline, the audit trail."""
import pandas as pd
import streamlit as st

from ui import history as h
from ui.common import fmt_seconds, get_lab, load_run, settled_status, shown_status
from ui.pagekit import arrived, dashboard_link, query_int

COLUMN_CONFIG = {
    "run": st.column_config.NumberColumn("run", format="%d"),
    "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    **{f"{s} s": st.column_config.NumberColumn(f"{s} s", format="%.1f", help=f"wall-clock seconds of the {s} stage")
       for s in h.STAGES},
    **{c: st.column_config.NumberColumn(c, format="%.3f") for c in ("quick ROC-AUC", "quick F1", "full ROC-AUC",
                                                                     "full F1")},
    "champion then": st.column_config.NumberColumn("champion then", format="%d",
                                                   help="the version that was champion when the run finished"),
    "rolled back": st.column_config.TextColumn("rolled back", help="when, by whom and why a rollback undid this "
                                               "run's promotion (UTC); empty when it did not"),
    "source": st.column_config.TextColumn("source", help="where the run came from: a GitHub push (repository and "
                                          "branch), the CLI, the dashboard, the HTTP API, the closed loop or the "
                                          "demo autopilot"),
    "commit link": st.column_config.LinkColumn("commit link", display_text="view the commit",
                                               help="the pushed commit's page (runs a GitHub push started)"),
}


@st.cache_data(ttl=3, show_spinner=False)
def load_history(db_url: str, limit: int) -> pd.DataFrame:
    """The latest `limit` runs as the history table (db_url keys the cache per lab)."""
    lab = get_lab()
    runs = lab.runs(limit)
    return h.history_frame(runs, lab.steps_for_runs([r.id for r in runs]), lab.champion_history())


@st.cache_data(ttl=3, show_spinner=False)
def load_audit(db_url: str, limit: int) -> pd.DataFrame:
    """The latest `limit` audit events as a table."""
    return h.audit_frame(get_lab().audit(limit))


def filters(frame: pd.DataFrame) -> pd.DataFrame:
    """Status, text and date filters; return the rows they keep."""
    present = sorted(frame["status"].unique(), key=h.STATUS_ORDER.index)
    c1, c2, c3 = st.columns([2, 2, 2])
    statuses = c1.multiselect("Status", present, placeholder="all statuses", key="runs_status")
    text = c2.text_input("Search commit, message, author or source", key="runs_text")
    first, last = frame["started"].min().date(), frame["started"].max().date()
    days = c3.date_input("Started between (UTC)", value=(first, last), min_value=first, max_value=last,
                         key="runs_days")
    return h.filter_history(frame, statuses, text, tuple(days) if days else None)


def timeline(shown: pd.DataFrame) -> None:
    """Gantt chart of one run's steps, chosen among the shown rows (default: the run in the URL, else the newest)."""
    st.subheader("One run: timeline and summary")
    ids = shown["run"].tolist()
    wanted = query_int("run")
    if wanted in ids and arrived():
        st.session_state["runs_timeline"] = wanted  # a link chose the run: it wins
    labels = {r.run: f"run {r.run} · {r.status} · {r.message[:60]}" for r in shown.itertuples()}
    run_id = st.selectbox("Run", ids, format_func=labels.get, key="runs_timeline")
    st.query_params["run"] = str(run_id)
    run = load_run(get_lab(), run_id)
    bars = h.gantt_frame(run)
    if bars.empty:
        st.info(f"Run {run_id} has not started a step yet.")
    else:
        st.altair_chart(h.gantt_chart(bars), width="stretch")
    summary = h.summary_frame(run, shown_status)
    done = summary["seconds"].notna()
    st.caption(f"Run {run_id} is **{settled_status(run)}**: {int(done.sum())} of {len(summary)} steps have "
               f"run, {fmt_seconds(summary.loc[done, 'seconds'].sum())} of step time in all.")
    st.dataframe(summary, hide_index=True, key="run_summary", column_config={
        "result": st.column_config.TextColumn("result", help="as the dashboard reads it: a stopped gate of a held "
                                              "or rejected run is held or rejected; an undone promotion rolled_back"),
        "seconds": st.column_config.NumberColumn("took (s)", format="%.1f", help="a step that waits for a person "
                                                 "took until the decision; a running one, so far"),
        "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss")})
    dashboard_link(run_id)


def audit_section() -> None:
    """Who did what, when and why, with its own CSV."""
    st.subheader("Audit trail")
    st.caption("Every action a person (or the CLI, or the demo autopilot) took: commits, continues, approvals, "
               "rejections, alias moves, rollbacks, failure-mode toggles.")
    trail = load_audit(get_lab().settings.database_url, 5000)
    if trail.empty:
        st.info("Nothing has happened yet.")
        return
    st.dataframe(trail, hide_index=True, key="audit_table",
                 column_config={"when": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                                "run": st.column_config.NumberColumn("run", format="%d")})
    st.download_button("Download the audit trail (CSV)", data=lambda: h.history_csv(trail), file_name="audit.csv",
                       mime="text/csv", on_click="ignore", key="audit_csv")


st.title("Run history")
st.caption("Every pipeline run: what it was, how long each stage took, what it measured, which model it "
           "produced, and which model was champion when it finished. Click a column header to sort.")
limit = st.number_input("Latest runs to load", min_value=10, max_value=10_000, value=500, step=100, key="runs_limit")
frame = load_history(get_lab().settings.database_url, int(limit))
if frame.empty:
    st.info("No runs yet. Make a commit from the dashboard or the walkthrough, and its run appears here.")
    dashboard_link(None)
else:
    shown = filters(frame)
    st.caption(f"Showing {len(shown)} of {len(frame)} loaded runs; the CSV holds exactly these rows and columns.")
    st.dataframe(shown, hide_index=True, column_config=COLUMN_CONFIG, key="history_table")
    st.download_button("Download these runs (CSV)", data=lambda: h.history_csv(shown), file_name="run-history.csv",
                       mime="text/csv", on_click="ignore", key="history_csv", disabled=shown.empty)
    if not shown.empty:
        timeline(shown)
audit_section()

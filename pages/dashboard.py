"""Dashboard: header with actions; pipeline DAG left, step inspector centre, MLflow explorer right; claims below."""
import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui import common, dag, explorer, header, inspector, stream


def panels(lab, run_id: int | None, status: str | None) -> None:
    """DAG and inspector. While the run moves this reruns every second; when its status changes, the page does."""
    run = lab.run(run_id) if run_id else None
    if run and run["status"] != status:
        st.rerun()  # header actions and the live timer depend on the status: redraw the whole page
    if not st.session_state.get("_step_chosen"):
        st.session_state["step_pick"] = common.focus_step(run)
    graph, inspect = st.columns([1.1, 1.4], gap="medium")
    with graph:
        st.markdown("#### Pipeline")
        clicked = dag.render(run, st.session_state["step_pick"])
        if clicked:
            common.choose_step(clicked)
        dag.legend()
    with inspect:
        st.markdown("#### Step inspector")
        step = inspector.step_picker()
        tab = inspector.tab_picker()
        inspector.render(lab, run, step, tab)
    common.keep_selection(run_id, step, tab)
    if clicked:
        _redraw_dag()


def _redraw_dag() -> None:
    # The DAG was drawn before the click was known; draw it again so the clicked node is highlighted.
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:  # a click delivered with a full-page run
        st.rerun()


lab = common.get_lab()
common.restore_selection()
common.show_flash()
run = header.render(lab)
live, mlflow = st.columns([2.75, 1.05], gap="medium")
with live:
    active = bool(run) and run["status"] in common.ACTIVE
    st.fragment(panels, run_every=1.0 if active else None)(lab, run and run["id"], run and run["status"])
with mlflow:
    explorer.render(lab, run)
st.divider()
stream.render(lab)

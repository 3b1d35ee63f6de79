"""Dashboard: header with actions; the pipeline DAG across the page and the step inspector under it; then the
MLflow explorer and the claims panel.

Two fragments keep it current without redrawing the page: `panels` (status line, DAG and inspector) reruns every
second (more rarely when many sessions watch: ui/refresh.py) while any step of the shown run is queued or running,
and `watch` asks the store every few seconds whether a run was created or anyone acted (one query). The whole page
reruns when that changes, or when the shown run's status changes what the header offers (queued to running does
not).
"""
import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui import common, dag, errors, explorer, header, inspector, refresh, stream

WATCH_SECONDS = 3.0  # a resting page looking for new or changed runs


def panels(lab, run_id: int | None, header_drawn_for: tuple | None, was_live: bool) -> None:
    """The status line, the DAG (full width) and the inspector of the shown run, re-read on every rerun of this
    fragment."""
    with st.container(key="live_panels"):  # ui/theme.css: no fade while a rerun redraws these
        _panels(lab, run_id, header_drawn_for, was_live)


def _panels(lab, run_id: int | None, header_drawn_for: tuple | None, was_live: bool) -> None:
    run = common.load_run(lab, run_id) if run_id else None
    if run and (header.drawn_for(run) != header_drawn_for or common.live(run) != was_live):
        # The header's actions and this fragment's timer depend on these: redraw the whole page. Queued to
        # running is not such a change, so a moving run redraws only this fragment (nothing else goes stale).
        st.rerun()
    header.status(lab, run)
    common.follow(run)  # the step worth looking at (a running one on its log), until someone picks one
    clicked = dag.render(run, st.session_state["step_pick"])
    if clicked and clicked != st.session_state["step_pick"]:
        common.choose_step(clicked)
        _redraw()
    dag.legend()
    pick, view = st.columns([1.4, 1], vertical_alignment="bottom")
    with pick:
        step = inspector.step_picker(on_change=lambda: st.session_state.update(_step_chosen=True))
    with view:
        tab = inspector.tab_picker(on_change=lambda: st.session_state.update(_tab_chosen=True))
    inspector.render(lab, run, step, tab)
    common.keep_selection(run_id, step, tab)


def _redraw() -> None:
    # The DAG was drawn before the click was known; draw the fragment again with the clicked step.
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:  # a click delivered with a full-page run
        st.rerun()


@st.fragment(run_every=WATCH_SECONDS)
@errors.guard  # its timer reruns it alone, outside the page's guard
def watch(lab) -> None:
    """Rerun the page when a run was created or anyone acted since it was drawn (a CLI commit, another tab)."""
    if lab.latest_change() != st.session_state.get("_lab_stamp"):
        st.rerun()


lab = common.get_lab()
st.session_state["_lab_stamp"] = lab.latest_change()  # before reading: a change while drawing is seen next poll
common.restore_selection()
common.show_flash()
# Each part in its own container: the page's top level keeps the same shape whatever the header says, so a rerun
# redraws the DAG in place instead of drawing a second one below the first until the run ends.
with st.container():
    run = header.render(lab)
moving = common.live(run)
st.fragment(errors.guard(panels), run_every=refresh.interval() if moving else None)(
    lab, run and run.id, header.drawn_for(run), moving)
st.divider()
with st.container():
    explorer.render(lab, run)  # drawn only while its section is open
st.divider()
with st.container():
    stream.render(lab)
watch(lab)

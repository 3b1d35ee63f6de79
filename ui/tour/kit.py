"""What every walkthrough page shares: the scaffold (`page`), the run the tour follows, ticks, live progress.

The step modules register their pages here with the `page` decorator, in tour order; ui/tour/__init__.py imports
them and hands the list to app.py. This module imports none of them, so there is no import circle.
"""
from __future__ import annotations

import functools
import time
from typing import Callable

import streamlit as st

from engine import Run, Step, pipeline
from engine.states import RESTING, StepStatus
from ui import icons
from ui.common import duration, fmt_seconds, get_lab, load_run, md_escape
from ui.pagekit import dashboard_link, live, query_int

TOTAL = 10
RUN_KEY = "tour_run"  # plain session key (not a widget's), so it survives moving between pages
PAGES: dict[int, tuple[str, Callable[[], None], str]] = {}  # n: (title, page function, url path), by `page`


# ---- the scaffold ---------------------------------------------------------------------------------------------
def page(n: int, title: str, slug: str, concept: str, real_world: str, follow: str = "choose"):
    """Make `body(run) -> step | None` tour page `n` (URL path tour-<n>-<slug>) and register it in PAGES.

    The page shows its header and progress, what to learn, the followed run (`follow`: "choose" offers a
    chooser, "own" takes only the run this session follows, "none" none), the body, then the links (the body's
    returned step opens in the dashboard)."""
    def wrap(body: Callable[[dict | None], str | None]):
        @functools.wraps(body)
        def show() -> None:
            st.title(f"Step {n} of {TOTAL} · {title}")
            st.progress(n / TOTAL)
            st.markdown(concept)
            st.caption(f"In real life: {real_world}")
            opened_at(n)
            run = {"choose": lambda: choose_run(f"tour{n}_pick"), "own": lambda: tour_run(default_latest=False),
                   "none": lambda: None}[follow]()
            step = body(run)
            footer(n, run, step)
        PAGES[n] = (f"{n} · {title}", show, f"tour-{n}-{slug}")
        return show
    return wrap


def opened_at(n: int) -> float:
    """When this session first opened tour page `n`: ticks count only what the learner did since."""
    return st.session_state.setdefault(f"tour{n}_opened", time.time())  # the store's clock: epoch seconds


# ---- the run the tour follows ---------------------------------------------------------------------------------
def follow(run_id: int) -> None:
    """Make `run_id` the tour's run (also in the URL, so a link or a refresh keeps it)."""
    st.session_state[RUN_KEY] = int(run_id)
    st.query_params["run"] = str(run_id)


def tour_run(default_latest: bool = True) -> Run | None:
    """The followed run with its steps: from the URL, else this session, else (optionally) the newest run."""
    lab = get_lab()
    run_id = query_int("run") or st.session_state.get(RUN_KEY)
    if run_id is None and default_latest:
        latest = lab.runs(1)
        run_id = latest[0].id if latest else None
    if run_id is None:
        return None
    try:
        run = lab.run(run_id)
    except Exception:  # a stale id from another lab (URL copied elsewhere): start over
        st.session_state.pop(RUN_KEY, None)
        return None
    follow(run.id)
    return run


def choose_run(key: str) -> Run | None:
    """The followed run (see tour_run), with a chooser among the latest runs to follow another one."""
    run = tour_run()
    recent = get_lab().runs(20)
    if run is None or not recent:
        return run
    labels = {r.id: f"run {r.id} · {r.status} · {r.message[:60]}" for r in recent}
    ids = list(labels) if run.id in labels else [run.id, *labels]
    st.session_state[key] = run.id  # the widget shows the followed run, whichever page chose it
    st.selectbox("Following", ids, format_func=lambda i: labels.get(i, f"run {i}"), key=key,
                 on_change=lambda: follow(st.session_state[key]))
    return run


def is_active(run: Run) -> bool:
    """Whether the run is still moving (not resting where a person must act or where it ended)."""
    return run.status not in RESTING


def stage_ok(run: Run, stage: str) -> bool:
    """Whether every step of `stage` succeeded (the manual gate counts once decided as approved)."""
    return all(s.status == StepStatus.SUCCEEDED.value for s in run.steps if s.stage == stage)


def step_of(run: Run, name: str) -> Step:
    """One step row of a run."""
    return next(s for s in run.steps if s.name == name)


def stopped_step(run: Run) -> Step | None:
    """The step that failed or was interrupted, if any."""
    return next((s for s in run.steps if s.status in (StepStatus.FAILED.value,
                                                            StepStatus.INTERRUPTED.value)), None)


# ---- page parts -----------------------------------------------------------------------------------------------
def have_run(run: Run | None) -> bool:
    """Whether the learner has a run to follow; when not, the page's tick says how to get one."""
    if run is None:
        tick(False, "", "No run yet: go back to step 1 and make a commit.")
    return run is not None


def tick(done: bool, yes: str, todo: str) -> None:
    """The page's live check: ticked when the goal is reached in the lab's real state."""
    if done:
        st.success(yes, icon=icons.DONE)
    else:
        st.info(todo, icon=icons.TODO)


def steps_list(run: Run, stage: str | None = None) -> None:
    """The steps of a run (or one stage) with their live status, timing and error."""
    lines = []
    for s in run.steps:
        if stage and s.stage != stage:
            continue
        took = f" · {fmt_seconds(duration(s))}" if duration(s) is not None else ""
        lines.append(f"- {icons.status(s.status)} **{pipeline.spec(s.name).title}** · {s.status}{took}")
    st.markdown("\n".join(lines))
    bad = stopped_step(run)
    if bad and (stage is None or bad.stage == stage):
        st.error(f"{pipeline.spec(bad.name).title}: {md_escape(bad.error or '')}")  # may quote a reviewer


def watch(run_id: int, body: Callable[[Run], None], key: str) -> None:
    """Render `body(run)` for the latest state of a run; refresh it every second while the run moves."""
    lab = get_lab()

    def render() -> bool:
        run = load_run(lab, run_id)  # with the rollback that undid its promotion, if any
        status = run.status + (", then rolled back" if run.rolled_back else "")
        st.caption(f"Run {run.id} · commit {run.sha[:8]} · status **{status}**")
        body(run)
        return is_active(run)

    live(render, is_active(lab.run(run_id)), key)


def tour_page(n: int):
    """The st.Page of tour step `n` (1-based), for links."""
    title, fn, path = PAGES[n]
    return st.Page(fn, title=title, url_path=path, icon=icons.TOUR)


def footer(n: int, run: Run | None, step: str | None = None) -> None:
    """Links: previous step, this run (and step) in the dashboard, next step; all keep the followed run."""
    st.divider()
    params = {"run": str(run.id)} if run else None
    prev_col, dash_col, next_col = st.columns(3)
    if n > 1:
        with prev_col:
            st.page_link(tour_page(n - 1), label=f"Step {n - 1}", icon=icons.PREVIOUS, query_params=params)
    with dash_col:
        dashboard_link(run.id if run else None, step)
    if n < TOTAL:
        with next_col:
            st.page_link(tour_page(n + 1), label=f"Next: step {n + 1}", icon=icons.NEXT, query_params=params)

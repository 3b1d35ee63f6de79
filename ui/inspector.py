"""The step inspector: a step's real code and config, its persisted log as a console, and its outputs rendered."""
from __future__ import annotations

import time
from html import escape

import streamlit as st

from engine import Run, Step, pipeline
from ui import common, icons, outputs

LEVEL_CLASS = {"ERROR": "err", "CRITICAL": "err", "WARNING": "warn", "DEBUG": "dbg"}
SHOWN_LINES = 600  # the console shows the newest lines; the download has every line


def step_picker(key: str = "step_pick", on_change=None) -> str:
    """The step selector; st.session_state[key] holds the step, which the page may set too (a DAG click, a link,
    following the run). `on_change` runs when the person picks a step here."""
    value = st.session_state.setdefault(key, pipeline.NAMES[0])
    widget = common.pick_key(key, value)
    st.selectbox("Step", pipeline.NAMES, index=pipeline.NAMES.index(value), key=widget, format_func=_step_title,
                 on_change=_picked, args=(key, widget, on_change))
    return st.session_state[key]


def _picked(key: str, widget: str, then=None) -> None:
    """The person picked in `widget`. Its own value coming back is no pick (a widget the page has replaced since,
    answering late: common.pick_key); another value is, even from a replaced widget (a click during a redraw)."""
    picked = st.session_state.get(widget)
    if picked is None or widget == common.pick_key(key, picked):
        return
    st.session_state[key] = picked
    if then:
        then()


def _step_title(name: str) -> str:
    spec = pipeline.spec(name)
    return f"{spec.stage} · {spec.title}"


def tab_picker(key: str = "tab_pick", on_change=None) -> str:
    """Code / Config / Logs / Outputs, kept in st.session_state[key] so the URL (and the page) can set it."""
    value = st.session_state.setdefault(key, "Outputs")
    widget = common.pick_key(key, value)
    st.segmented_control("View", common.TABS, default=value, key=widget, required=True, width="stretch",
                         label_visibility="collapsed", on_change=_picked, args=(key, widget, on_change))
    return st.session_state[key]


def render(lab, run: Run | None, name: str, tab: str) -> None:
    """The inspector for step `name` of `run` (run may be None: code and config still show)."""
    spec = pipeline.spec(name)
    step = next((s for s in run.steps if s.name == name), None) if run else None
    _title(run, spec, step)
    if tab == "Code":
        st.caption(f"engine/steps/{spec.source_path.name}: the module the runner imports for this step")
        st.code(spec.source_path.read_text(), language="python", line_numbers=True, wrap_lines=True)
    elif tab == "Config":
        st.caption(f"engine/steps/{spec.config_path.name}: read as ctx.params when the step runs")
        st.code(spec.config_path.read_text() if spec.config_path.exists() else "{}", language="yaml",
                line_numbers=True, wrap_lines=True)
    elif run is None or step is None:
        st.info("No run yet: click **Fake commit** to start one; its logs and outputs appear here.")
    elif tab == "Logs":
        logs(lab, run, step)
    else:
        outputs.render(lab, run, step)


def _title(run: Run | None, spec, step: Step | None) -> None:
    status = common.shown_status(run, step) if step else "idle"
    bits = [f"{icons.status(status)} `{status}`", spec.stage]
    if step and step.attempt:
        bits.append(f"attempt {step.attempt}")
    took = common.duration(step) if step else None
    if took is not None:
        bits.append(f"took {common.fmt_seconds(took)}")
    elif step and step.status == "running" and step.started_at:
        bits.append(f"running for {common.fmt_seconds(time.time() - step.started_at)}")
    elif step and common.waiting(step) is not None:
        bits.append(f"waiting for a decision for {common.fmt_seconds(common.waiting(step))}")
    if spec.gate:
        bits.append(f"{icons.GATE} gate")
    st.markdown(f"#### {spec.title}  \n" + " · ".join(bits))
    st.caption(spec.summary)
    if status == "rolled_back":
        st.warning(f"This promotion was undone: {common.rolled_back_text(run.rolled_back)}. "
                   "@champion no longer loads the version below.", icon=icons.STATUS["rolled_back"])


def logs(lab, run: Run, step: Step) -> None:
    """A step's persisted log as a console: numbered, levels coloured, time since the attempt started, a filter,
    following the newest line while the step runs, and the whole log as a download."""
    name = step.name
    lines = lab.logs(run.id, name)
    if not lines:
        st.info("No log lines yet for this step." if common.live(run) else
                "This step wrote no log lines (it has not run in this run).")
        return
    search, levels = st.columns([2.4, 1])
    needle = search.text_input("Filter", key="log_filter", placeholder="filter lines, e.g. FAILED or F1",
                               label_visibility="collapsed")
    wanted = levels.multiselect("Levels", sorted({line["level"] for line in lines}), key=f"log_levels_{name}",
                                placeholder="all levels", label_visibility="collapsed")
    st.html(console_html(lines, step, needle, wanted, follow=step.status == "running"))
    st.download_button("Download the full log", data=lambda: log_text(lab, run.id, name), icon=icons.DOWNLOAD,
                       file_name=f"run-{run.id}-{name}.log", mime="text/plain", on_click="ignore",
                       key=f"log_dl_{name}")


def console_html(lines: list[dict], step: Step, needle: str = "", levels: list[str] | None = None,
                 follow: bool = False) -> str:
    """The console's HTML (styled by ui/theme.css). Times are seconds since the line's attempt started."""
    starts: dict[int, float] = {}
    for line in lines:  # an attempt starts at its first line, or earlier at the step's start (current attempt)
        starts.setdefault(line["attempt"], line["ts"])
    if step.started_at and step.attempt in starts:
        starts[step.attempt] = min(starts[step.attempt], step.started_at)
    numbered = list(enumerate(lines, 1))
    if needle:
        numbered = [(n, line) for n, line in numbered if needle.lower() in line["message"].lower()]
    if levels:
        numbered = [(n, line) for n, line in numbered if line["level"] in levels]
    rows, attempt = [], None
    for n, line in numbered[-SHOWN_LINES:]:
        if line["attempt"] != attempt and len(starts) > 1:
            rows.append(f'<div class="lab-attempt">attempt {line["attempt"]}</div>')
        attempt = line["attempt"]
        rel = line["ts"] - starts[line["attempt"]]
        rows.append(f'<div class="lab-line {LEVEL_CLASS.get(line["level"], "")}"><span class="n">{n}</span>'
                    f'<span class="t">{rel:.2f}s</span><span class="lv">{escape(line["level"])}</span>'
                    f'<span class="m">{escape(line["message"])}</span></div>')
    if not rows:
        rows.append('<div class="lab-line dbg"><span class="m">no line matches the filter</span></div>')
    shown = len(numbered)
    note = f"{shown} of {len(lines)} lines" + (f", the newest {SHOWN_LINES} shown" if shown > SHOWN_LINES else "")
    note += " · following the newest line" if follow else ""
    return (f'<div class="lab-console{" follow" if follow else ""}"><div>{"".join(rows)}</div></div>'
            f'<div class="lab-console-note">{escape(note)}</div>')


def log_text(lab, run_id: int, name: str) -> str:
    """All of a step's lines as a plain .log file, times in ISO 8601 UTC (built only when the download is
    clicked)."""
    return "".join(f"{common.iso_ts(r['ts'])} attempt={r['attempt']} {r['level']:<7} {r['message']}\n"
                   for r in lab.logs(run_id, name, limit=100_000))

"""The step inspector: a step's real code and config, its persisted logs, and its outputs rendered."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from engine import pipeline
from ui import common, outputs

LEVEL_STYLE = {"ERROR": "color: #C62828; font-weight: 600", "WARNING": "color: #B26A00",
               "DEBUG": "color: #7A8391", "INFO": ""}


def step_picker() -> str:
    """The plain step selector beside the DAG (a DAG click sets the same state)."""
    return st.selectbox("Step", pipeline.NAMES, key="step_pick", format_func=_step_title,
                        on_change=lambda: st.session_state.update(_step_chosen=True))


def _step_title(name: str) -> str:
    spec = pipeline.spec(name)
    return f"{spec.stage} · {spec.title}"


def tab_picker() -> str:
    """Code / Config / Logs / Outputs, kept in session state so the URL can carry it."""
    st.session_state.setdefault("tab_pick", "Outputs")
    return st.segmented_control("View", common.TABS, key="tab_pick", required=True, width="stretch",
                                label_visibility="collapsed") or "Outputs"


def render(lab, run: dict | None, name: str, tab: str) -> None:
    """The inspector for step `name` of `run` (run may be None: code and config still show)."""
    spec = pipeline.spec(name)
    step = next((s for s in run["steps"] if s["name"] == name), None) if run else None
    _title(run, spec, step)
    if tab == "Code":
        st.caption(f"engine/steps/{spec.source_path.name} — the module the runner imports for this step")
        st.code(spec.source_path.read_text(), language="python", line_numbers=True)
    elif tab == "Config":
        st.caption(f"engine/steps/{spec.config_path.name} — read as ctx.params when the step runs")
        st.code(spec.config_path.read_text(), language="yaml")
    elif run is None or step is None:
        st.info("No run yet: click **+ Fake Commit** to start one; its logs and outputs appear here.")
    elif tab == "Logs":
        logs(lab, run, name)
    else:
        outputs.render(lab, run, step)


def _title(run: dict | None, spec, step: dict | None) -> None:
    status = step["status"] if step else "idle"
    if run and run["status"] == "held" and status == "failed":
        status = "held"
    icon = common.STATUS_ICONS.get(status, "⚪")
    bits = [f"{icon} `{status}`", spec.stage]
    if step and step.get("attempt"):
        bits.append(f"attempt {step['attempt']}")
    took = common.duration(step) if step else None
    if took is not None:
        bits.append(f"took {common.fmt_seconds(took)}")
    elif step and step["status"] == "running" and step.get("started_at"):
        bits.append(f"running for {common.fmt_seconds(time.time() - step['started_at'])}")
    if spec.gate:
        bits.append("🚦 gate")
    st.markdown(f"#### {spec.title}  \n" + " · ".join(bits))
    st.caption(spec.summary)


def logs(lab, run: dict, name: str) -> None:
    """Persisted log lines of one step: filter by text and level, coloured by level, downloadable."""
    lines = lab.logs(run["id"], name)
    if not lines:
        st.info("No log lines yet for this step." if run["status"] in common.ACTIVE else
                "This step wrote no log lines (it has not run in this run).")
        return
    frame = pd.DataFrame(lines)
    search, levels = st.columns([2, 1.4])
    needle = search.text_input("Filter", key="log_filter", placeholder="text to find, e.g. ERROR or F1")
    wanted = levels.multiselect("Levels", sorted(frame["level"].unique()), key=f"log_levels_{name}",
                                placeholder="all levels")
    shown = frame
    if needle:
        shown = shown[shown["message"].str.contains(needle, case=False, regex=False)]
    if wanted:
        shown = shown[shown["level"].isin(wanted)]
    table = pd.DataFrame({"time": shown["ts"].map(lambda t: time.strftime("%H:%M:%S", time.localtime(t))),
                          "attempt": shown["attempt"], "level": shown["level"], "message": shown["message"]})
    styled = table.style.apply(lambda row: [LEVEL_STYLE.get(row["level"], "")] * len(row), axis=1)
    st.dataframe(styled, hide_index=True, width="stretch", height=min(38 + 35 * len(table), 420),
                 column_config={"message": st.column_config.TextColumn(width="large")})
    st.caption(f"{len(table)} of {len(frame)} lines")
    st.download_button("⬇ Download .log", data=lambda: _log_text(lab, run["id"], name),
                       file_name=f"run-{run['id']}-{name}.log", mime="text/plain", on_click="ignore",
                       key=f"log_dl_{name}")


def _log_text(lab, run_id: int, name: str) -> str:
    """All of a step's lines as a plain .log file (built only when the download is clicked)."""
    return "".join(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r['ts']))} attempt={r['attempt']} "
                   f"{r['level']:<7} {r['message']}\n" for r in lab.logs(run_id, name, limit=100_000))

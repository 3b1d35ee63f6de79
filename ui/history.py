"""Run history as tables: one row per run (stage durations, metrics, champion at the time), filters, CSV, Gantt.

Everything here is a pure function of rows read through the Lab, so it is tested without Streamlit.
"""
from __future__ import annotations

import json
import time
from datetime import date

import altair as alt
import pandas as pd

from engine import pipeline
from engine.csvsafe import frame_to_csv
from engine.lab import champion_line
from engine.records import AuditEntry, Run, Step
from engine.states import RunStatus, StepStatus
from ui import origin
from ui.common import duration, waiting

STAGES = pipeline.STAGES
HISTORY_COLUMNS = ["run", "commit", "message", "author", "source", "status", "started", "CI s", "CD s", "Deploy s",
                   "quick ROC-AUC", "quick F1", "full ROC-AUC", "full F1", "model version", "champion then",
                   "rolled back", "MLflow CI run", "MLflow CD run", "failure modes", "commit link"]
ROLLED_BACK = "promoted, rolled back"  # the status shown for a promotion a rollback undid (as in the header)
STATUS_ORDER = [*(s.value for s in RunStatus), ROLLED_BACK]
AUDIT_COLUMNS = ["when", "actor", "action", "run", "comment", "detail"]
# One colour per step status, shared by every chart of this module so a status reads the same everywhere.
STATUS_COLOURS = {"succeeded": "#2e7d32", "running": "#1565c0", "queued": "#90caf9", "awaiting_approval": "#f9a825",
                  "failed": "#c62828", "interrupted": "#6a1b9a", "skipped": "#bdbdbd", "pending": "#e0e0e0"}


def to_time(ts: float | None) -> pd.Timestamp | None:
    """Epoch seconds as a UTC timestamp (None stays None)."""
    return None if ts is None else pd.Timestamp(ts, unit="s", tz="UTC")


def stage_seconds(steps: list[Step], now: float | None = None) -> dict[str, float | None]:
    """Wall-clock seconds each stage took (first start to last finish; a running step counts up to now)."""
    now = time.time() if now is None else now
    out: dict[str, float | None] = {}
    for stage in STAGES:
        spans = [(s.started_at, s.finished_at or now) for s in steps
                 if s.stage == stage and s.started_at
                 and (s.finished_at or s.status == StepStatus.RUNNING.value)]
        out[stage] = round(max(e for _, e in spans) - min(b for b, _ in spans), 2) if spans else None
    return out


def champion_at(history: list[dict], ts: float | None) -> int | None:
    """The version that held champion at time `ts`, from the champion alias history."""
    if ts is None:
        return None
    held = [h for h in history if h["since"] <= ts and (h["until"] is None or ts < h["until"])]
    return held[-1]["version"] if held else None


def _outputs(steps: list[Step], name: str) -> dict:
    return next((s.outputs or {} for s in steps if s.name == name), {})


def history_row(run: Run, steps: list[Step], champions: list[dict], now: float | None = None,
                undone: dict[int, dict] | None = None) -> dict:
    """One run as a row of the history table; `undone` (engine.lab.champion_line) marks rolled-back promotions."""
    rollback = (undone or {}).get(run.id) if run.status == RunStatus.PROMOTED.value else None
    quick = _outputs(steps, "ci_quick_train").get("metrics") or {}
    full_out = _outputs(steps, "cd_full_train")
    full = full_out.get("metrics") or {}
    took = stage_seconds(steps, now)
    return {
        "run": run.id, "commit": run.sha[:8], "message": run.message, "author": run.author,
        "source": origin.source(run), "status": ROLLED_BACK if rollback else run.status.value,
        "started": to_time(run.created_at),
        **{f"{stage} s": took[stage] for stage in STAGES},
        "quick ROC-AUC": quick.get("roc_auc"), "quick F1": quick.get("f1"),
        "full ROC-AUC": full.get("roc_auc"), "full F1": full.get("f1"),
        "model version": full_out.get("model_version"),
        "champion then": champion_at(champions, run.finished_at),
        "rolled back": _rollback_text(rollback),
        "MLflow CI run": _outputs(steps, "mlflow_log_ci").get("mlflow_run_id"),
        "MLflow CD run": full_out.get("mlflow_run_id"),
        "failure modes": ", ".join(run.failure_modes or []),
        "commit link": origin.commit_link(run),
    }


def history_frame(runs: list[Run], steps_by_run: dict[int, list[Step]], champions: list[dict],
                  now: float | None = None) -> pd.DataFrame:
    """The history table: one row per run, newest first, columns HISTORY_COLUMNS."""
    undone = champion_line(champions)[1]
    rows = [history_row(r, steps_by_run.get(r.id, []), champions, now, undone) for r in runs]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for col in ("model version", "champion then"):
        frame[col] = frame[col].astype("Int64")  # nullable: runs without a model keep an empty cell, not NaN
    for col in ("CI s", "CD s", "Deploy s", "quick ROC-AUC", "quick F1", "full ROC-AUC", "full F1"):
        frame[col] = frame[col].astype("float64")
    return frame


def _rollback_text(row: dict | None) -> str:
    """'2026-11-28T09:01:02Z by Sam: bad canary' for the rollback that undid a promotion, else ''."""
    if not row:
        return ""
    return f"{time.strftime(ISO_SECONDS, time.gmtime(row['since']))} by {row['moved_by']}" + \
        (f": {row['reason']}" if row.get("reason") else "")


def filter_history(frame: pd.DataFrame, statuses=None, text: str = "",
                   days: tuple[date, date] | None = None) -> pd.DataFrame:
    """Rows whose status is in `statuses`, whose commit/message/author/source contain `text`, started within
    `days`."""
    keep = pd.Series(True, index=frame.index)
    if statuses:
        keep &= frame["status"].isin(list(statuses))
    text = (text or "").strip().lower()
    if text:
        hay = (frame["commit"].str.lower() + " " + frame["message"].str.lower() + " " + frame["author"].str.lower()
               + " " + frame["source"].str.lower())
        keep &= hay.str.contains(text, regex=False)
    if days:
        started = frame["started"].dt.date
        keep &= (started >= days[0]) & (started <= days[-1])
    return frame[keep].reset_index(drop=True)


ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"  # ISO 8601, UTC, to the second


def history_csv(frame: pd.DataFrame) -> str:
    """The rows and columns of `frame`, exactly as shown, as CSV text (times in ISO 8601 UTC to the second)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].map(lambda t: t.tz_convert("UTC").strftime(ISO_SECONDS) if pd.notna(t) else "")
    return frame_to_csv(out)  # the lab's one CSV writer: formula cells neutralised


def audit_frame(rows: list[AuditEntry]) -> pd.DataFrame:
    """The audit trail as a table: who did what, when and why."""
    data = [{"when": to_time(r.ts), "actor": r.actor, "action": r.action, "run": r.run_id,
             "comment": r.comment or "", "detail": json.dumps(r.detail or {}, sort_keys=True, default=str)}
            for r in rows]
    frame = pd.DataFrame(data, columns=AUDIT_COLUMNS)
    frame["run"] = frame["run"].astype("Int64")
    return frame


def gantt_frame(run: Run, now: float | None = None) -> pd.DataFrame:
    """One bar per started step of a run: title, stage, status, start/end (epoch ms; a running step ends now)."""
    now = time.time() if now is None else now
    rows = [{"step": pipeline.spec(s.name).title, "name": s.name, "position": s.position,
             "stage": s.stage, "status": s.status.value, "start_ms": s.started_at * 1000,
             "end_ms": (s.finished_at or now) * 1000, "from": clock(s.started_at),
             "to": clock(s.finished_at or now), "seconds": round((s.finished_at or now) - s.started_at, 2),
             "error": s.error or ""}
            for s in run.steps if s.started_at]
    return pd.DataFrame(rows, columns=["step", "name", "position", "stage", "status", "start_ms", "end_ms", "from",
                                       "to", "seconds", "error"])


def summary_frame(run: Run, shown_status, now: float | None = None) -> pd.DataFrame:
    """Every job (step) of a run in pipeline order, as a CI service's run summary lists them: stage, result as a
    person reads it (`shown_status(run, step)`), how long it took (a running step up to now; a step that waited
    for a person until the decision), attempts, and the error of a step that stopped."""
    now = time.time() if now is None else now
    rows = []
    for s in sorted(run.steps, key=lambda s: s.position):
        took = duration(s)
        if took is None and s.status == StepStatus.RUNNING.value and s.started_at:
            took = now - s.started_at
        took = waiting(s, now) if took is None else took
        rows.append({"step": pipeline.spec(s.name).title, "stage": s.stage, "result": shown_status(run, s),
                     "seconds": None if took is None else round(took, 1), "attempts": s.attempt or 0,
                     "started": to_time(s.started_at), "error": s.error or ""})
    frame = pd.DataFrame(rows, columns=["step", "stage", "result", "seconds", "attempts", "started", "error"])
    frame["seconds"] = frame["seconds"].astype("float64")
    return frame


def clock(ts: float) -> str:
    """Epoch seconds as HH:MM:SS.mmm UTC (for tooltips)."""
    return pd.Timestamp(ts, unit="s", tz="UTC").strftime("%H:%M:%S.%f")[:-3]


def time_axis(field: str, title: str = "time (UTC)") -> alt.X:
    """An x encoding for epoch milliseconds, read and labelled in UTC (like the tables)."""
    # Numbers, not datetimes: pandas writes nanosecond ISO strings that browsers do not all parse.
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc"), axis=alt.Axis(format="%H:%M:%S"))


def gantt_chart(frame: pd.DataFrame) -> alt.Chart:
    """Steps on a time axis, in pipeline order, coloured by status."""
    order = frame.sort_values("position")["step"].tolist()
    return alt.Chart(frame).mark_bar(cornerRadius=3).encode(
        x=time_axis("start_ms"), x2="end_ms:T",
        y=alt.Y("step:N", sort=order, title=None),
        color=status_colour(frame["status"]),
        tooltip=["step", "stage", "status", alt.Tooltip("seconds:Q", format=".2f"), "from", "to", "error"],
    ).properties(height=60 + 30 * len(frame))  # Streamlit fits legend and axes inside this height too


def status_colour(statuses: pd.Series) -> alt.Color:
    """Status colours, the legend listing only the statuses present (beside the chart, not under it)."""
    present = [s for s in STATUS_COLOURS if s in set(statuses)]
    return alt.Color("status:N", scale=alt.Scale(domain=present, range=[STATUS_COLOURS[s] for s in present]),
                     legend=alt.Legend(orient="right"))

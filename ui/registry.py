"""The model registry as tables and a timeline: versions with metrics, tags and aliases; who held champion when."""
from __future__ import annotations

import time

import altair as alt
import pandas as pd

from engine.config import CHALLENGER, CHAMPION, STAGING
from ui.history import time_axis

ALIASES = (CHAMPION, STAGING, CHALLENGER)
METRICS = ("roc_auc", "f1", "accuracy", "precision", "recall", "false_denial_rate")
TAGS = ("approval", "approval_by", "approval_comment", "pipeline_run_id", "commit_sha", "dataset_window",
        "promoted_by_run", "previous_champion", "rolled_back_to_by", "rollback_reason")
ACTION_COLOURS = {"promote": "#2e7d32", "rollback": "#c62828", "deploy": "#1565c0"}


def alias_map(lab) -> dict[str, int | None]:
    """Which version each lab alias points at now (asked per alias: version searches may omit aliases)."""
    return {alias: lab.alias_version(alias) for alias in ALIASES}


def cd_metrics(lab, max_results: int = 500) -> dict[str, dict]:
    """Metrics of the CD (full-train) MLflow runs by run id, in one search."""
    try:
        rows, _ = lab.mlflow_runs(stage="CD", per_page=max_results)
    except Exception:  # an unreachable or empty store shows versions without metrics rather than failing
        return {}
    return {r["run_id"]: {m: r.get(m) for m in METRICS} for r in rows}


def versions_frame(versions: list[dict], metrics: dict[str, dict], aliases: dict[str, int | None]) -> pd.DataFrame:
    """One row per version: aliases, when, metrics of its MLflow run, approval and provenance tags."""
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        if version is not None:
            by_version.setdefault(version, []).append(alias)
    rows = []
    for v in versions:
        names = sorted(set(v["aliases"]) | set(by_version.get(v["version"], [])), key=_alias_order)
        m = metrics.get(v["run_id"]) or {}
        rows.append({"version": v["version"], "aliases": ", ".join(names),
                     "created": pd.Timestamp(v["created"], unit="s", tz="UTC"),
                     **{k: m.get(k) for k in METRICS},
                     **{k: v["tags"].get(k, "") for k in TAGS}, "MLflow run": v["run_id"]})
    return pd.DataFrame(rows, columns=["version", "aliases", "created", *METRICS, *TAGS, "MLflow run"])


def _alias_order(alias: str) -> int:
    return ALIASES.index(alias) if alias in ALIASES else len(ALIASES)


def highlight_champion(frame: pd.DataFrame):
    """A Styler that shades the champion's row."""
    def shade(row):
        on = CHAMPION in str(row["aliases"]).split(", ")
        return ["background-color: rgba(46, 125, 50, 0.18)" if on else ""] * len(row)
    return frame.style.apply(shade, axis=1)


def history_frame(history: list[dict], now: float | None = None) -> pd.DataFrame:
    """Champion alias history as a table: version, from, until (open = now), action, who and why."""
    now = time.time() if now is None else now
    rows = [{"version": h["version"], "label": f"version {h['version']}", "action": h["action"],
             "since": pd.Timestamp(h["since"], unit="s", tz="UTC"),
             "until": pd.Timestamp(h["until"] or now, unit="s", tz="UTC"), "current": h["until"] is None,
             "moved_by": h["moved_by"], "reason": h["reason"], "run": h["run_id"],
             "since_ms": h["since"] * 1000, "until_ms": (h["until"] or now) * 1000} for h in history]
    frame = pd.DataFrame(rows, columns=["version", "label", "action", "since", "until", "current", "moved_by",
                                        "reason", "run", "since_ms", "until_ms"])
    frame["run"] = frame["run"].astype("Int64")
    return frame


def history_chart(frame: pd.DataFrame) -> alt.Chart:
    """Who held champion when: one bar per tenure, coloured by how it got there."""
    order = sorted(frame["label"].unique(), key=lambda s: int(s.split()[-1]), reverse=True)
    shown = frame.assign(since_text=frame["since"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                         until_text=frame["until"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    shown = shown.drop(columns=["since", "until"])  # tz-aware columns serialise as nanosecond strings
    return alt.Chart(shown).mark_bar(cornerRadius=3).encode(
        x=time_axis("since_ms"), x2="until_ms:T",
        y=alt.Y("label:N", sort=order, title=None),
        color=alt.Color("action:N", scale=alt.Scale(domain=list(ACTION_COLOURS), range=list(ACTION_COLOURS.values())),
                        legend=alt.Legend(orient="right", title="became champion by")),
        tooltip=["label", "action", "moved_by", "reason", "run", alt.Tooltip("since_text:N", title="since (UTC)"),
                 alt.Tooltip("until_text:N", title="until (UTC)"), "current"],
    ).properties(height=60 + 36 * frame["label"].nunique())  # legend and axes are fitted inside this height

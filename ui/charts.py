"""Altair charts the panels share. Each function takes plain data and returns a chart; callers place it."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

GREEN, RED, BLUE, GREY, ORANGE = "#2E9E5B", "#D64545", "#1F6FD6", "#8A94A3", "#F07B1A"
OUTCOME_SCALE = alt.Scale(domain=["Approved", "Denied"], range=[GREEN, RED])


CELL_PX = 110  # a confusion matrix cell


def confusion_heatmap(cm: dict) -> alt.Chart:
    """A labelled 2x2 heatmap: rows actual, columns predicted, counts written in the cells."""
    labels, matrix = cm["labels"], cm["matrix"]
    data = pd.DataFrame([{"actual": a, "predicted": p, "count": matrix[i][j], "correct": i == j}
                         for i, a in enumerate(labels) for j, p in enumerate(labels)])
    base = alt.Chart(data).encode(x=alt.X("predicted:N", sort=labels, title="predicted"),
                                  y=alt.Y("actual:N", sort=labels, title="actual"))
    cells = base.mark_rect().encode(
        color=alt.Color("correct:N", scale=alt.Scale(domain=[True, False], range=["#CDEBD8", "#F6D3D3"]),
                        legend=None),
        tooltip=["actual", "predicted", "count"])
    text = base.mark_text(fontSize=16, fontWeight="bold").encode(text=alt.Text("count:Q", format=","))
    # Square cells with level labels: stretched across the page it was a thin strip with vertical labels.
    return (cells + text).properties(width=CELL_PX * len(labels), height=CELL_PX * len(labels)) \
        .configure_axis(labelAngle=0, labelFontSize=13, titleFontSize=13)


def rows_height(rows: int, step: int) -> int:
    """A chart's height for `rows` bands of `step` px. A fixed height, not alt.Step: Streamlit fits charts to
    their container, and Vega-Lite drops that fit from a chart whose height is a step, with a console warning
    ("Dropping fit-y ...") every time one is drawn."""
    return max(1, rows) * step


def importance_bars(importance: list[dict], top: int = 12) -> alt.Chart:
    """Mean |SHAP| per feature, largest on top."""
    data = pd.DataFrame(importance).head(top)
    return alt.Chart(data).mark_bar(color=BLUE).encode(
        x=alt.X("mean_abs_shap:Q", title="mean |SHAP| (toward Approved)"),
        y=alt.Y("feature:N", sort="-x", title=None),
        tooltip=["feature", alt.Tooltip("mean_abs_shap:Q", format=".4f")],
    ).properties(height=rows_height(len(data), 22))


def psi_bars(features: list[dict], moderate: float = 0.10, major: float = 0.25) -> alt.Chart:
    """PSI per feature with the moderate and major thresholds drawn as rules."""
    data = pd.DataFrame(features)
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("psi:Q", title="PSI"), y=alt.Y("feature:N", sort="-x", title=None),
        color=alt.Color("level:N", scale=alt.Scale(domain=["none", "moderate", "major"],
                                                   range=[GREEN, ORANGE, RED]), title="level"),
        tooltip=["feature", alt.Tooltip("psi:Q", format=".4f"), "level"])
    rules = alt.Chart(pd.DataFrame({"x": [moderate, major]})).mark_rule(strokeDash=[4, 3], color=GREY).encode(x="x:Q")
    return (bars + rules).properties(height=rows_height(len(data), 22))


def bin_shares(bins: list[dict]) -> alt.Chart:
    """Reference vs current share of rows per bin of one feature."""
    data = pd.DataFrame(bins).melt(id_vars=["label"], value_vars=["reference_share", "current_share"],
                                   var_name="sample", value_name="share")
    data["sample"] = data["sample"].str.replace("_share", "")
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("label:N", sort=None, title=None), xOffset="sample:N",
        y=alt.Y("share:Q", axis=alt.Axis(format="%")),
        color=alt.Color("sample:N", scale=alt.Scale(range=[GREY, BLUE])),
        tooltip=["label", "sample", alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=200)


def histogram(frame: pd.DataFrame, column: str, title: str, bins: int = 30, clip_quantile: float | None = None,
              legend: bool = False) -> alt.Chart:
    """Distribution of a numeric column, stacked by outcome when present; a long tail can be clipped for reading."""
    data = frame[[column] + (["outcome"] if "outcome" in frame else [])].copy()
    if "outcome" in data:
        data["outcome"] = data["outcome"].astype(str)
    if clip_quantile:
        data = data[data[column] <= data[column].quantile(clip_quantile)]
    encode = {"x": alt.X(f"{column}:Q", bin=alt.Bin(maxbins=bins), title=title),
              "y": alt.Y("count():Q", title="claims", stack=True)}
    if "outcome" in data:
        encode["color"] = alt.Color("outcome:N", scale=OUTCOME_SCALE, legend=alt.Legend(orient="top") if legend
                                    else None)
    return alt.Chart(data).mark_bar().encode(**encode).properties(height=190)


def category_bars(frame: pd.DataFrame, column: str, title: str) -> alt.Chart:
    """Claims per category, split by outcome when present."""
    data = frame[[column] + (["outcome"] if "outcome" in frame else [])].astype(str)
    encode = {"y": alt.Y(f"{column}:N", sort="-x", title=title), "x": alt.X("count():Q", title="claims")}
    if "outcome" in data:
        encode["color"] = alt.Color("outcome:N", scale=OUTCOME_SCALE, legend=None)
    return alt.Chart(data).mark_bar().encode(**encode).properties(height=190)


def outcome_share(frame: pd.DataFrame) -> alt.Chart:
    """Share of Approved and Denied claims as two labelled bars."""
    counts = frame["outcome"].astype(str).value_counts().rename_axis("outcome").reset_index(name="claims")
    counts["share"] = counts["claims"] / counts["claims"].sum()
    base = alt.Chart(counts).encode(x=alt.X("outcome:N", title="outcome", axis=alt.Axis(labelAngle=0)),
                                    y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of claims"))
    bars = base.mark_bar().encode(color=alt.Color("outcome:N", scale=OUTCOME_SCALE, legend=None),
                                  tooltip=["outcome", "claims", alt.Tooltip("share:Q", format=".1%")])
    text = base.mark_text(dy=-8).encode(text=alt.Text("share:Q", format=".0%"))
    return (bars + text).properties(height=190)


def log_histogram(frame: pd.DataFrame, column: str, title: str, bins: int = 30) -> alt.Chart:
    """Distribution of a positive, long-tailed column binned on a log10 scale; axis labels in the column's unit."""
    data = frame[[column] + (["outcome"] if "outcome" in frame else [])].copy()
    data["log10"] = np.log10(data[column].clip(lower=0.01))
    if "outcome" in data:
        data["outcome"] = data["outcome"].astype(str)
    ticks = list(range(int(np.floor(data["log10"].min())), int(np.ceil(data["log10"].max())) + 1))
    encode = {"x": alt.X("log10:Q", bin=alt.Bin(maxbins=bins), title=title,
                         axis=alt.Axis(values=ticks, labelExpr="'$' + format(pow(10, datum.value), '~s')")),
              "y": alt.Y("count():Q", title="claims", stack=True)}
    if "outcome" in data:
        encode["color"] = alt.Color("outcome:N", scale=OUTCOME_SCALE, legend=None)
    return alt.Chart(data.drop(columns=[column])).mark_bar().encode(**encode).properties(height=190)

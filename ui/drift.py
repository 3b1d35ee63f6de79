"""Drift renderers: snapshot history lines, a feature's PSI bins worked out by hand, the estimate's caveat, and
the Drift page's snapshot explorer. Shared by the Claims panel (ui/stream.py) and pages/drift.py."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from engine.ml.claims import FEATURES
from engine.ml.drift import EPSILON, MAJOR, MODERATE
from engine.stream import MIN_ROWS, SNAPSHOT_EVERY, WINDOW, snapshot_rows
from ui.charts import BLUE, GREEN, GREY, ORANGE, RED

LEVEL_COLOURS = {"none": GREEN, "moderate": ORANGE, "major": RED}
LEVEL_MD = {"none": ":green[none]", "moderate": ":orange[moderate]", "major": ":red[major]"}
LEVEL_SCALE = alt.Scale(domain=list(LEVEL_COLOURS), range=list(LEVEL_COLOURS.values()))
PREDICTION = "P(Approved)"  # the pseudo-feature whose bins are the prediction PSI's
LINE_HEIGHT = 280           # total height in pixels: Streamlit fits axes, title and legend inside it
HISTORY_LIMIT = 500         # snapshots the Drift page lists
CSV_LIMIT = 100_000         # snapshots the CSV holds (as `python -m engine stream snapshots --csv` at most)


# ---- history over snapshots -------------------------------------------------------------------------------
def history_frame(snapshots: list[dict]) -> pd.DataFrame:
    """Snapshots (newest first, as stored) as a frame oldest first, one row per snapshot, for the lines."""
    rows = [{"id": s["id"], "seq": s["seq"], "scenario": s["scenario"], "level": s["level"] or "not enough data",
             "max_psi": s["max_psi"], "realised": s["realised_accuracy"], "estimated": s["estimated_accuracy"],
             "agreement": s["agreement"]} for s in reversed(snapshots)]
    return pd.DataFrame(rows, columns=["id", "seq", "scenario", "level", "max_psi", "realised", "estimated",
                                       "agreement"])


def _seq_axis() -> alt.X:
    return alt.X("seq:Q", title="claims produced", axis=alt.Axis(format="~s"))


def max_psi_chart(frame: pd.DataFrame) -> alt.Chart:
    """Max PSI over snapshots, points coloured by level, the moderate and major thresholds as rules."""
    data = frame.dropna(subset=["max_psi"])
    line = alt.Chart(data).mark_line(color=GREY).encode(x=_seq_axis(), y=alt.Y("max_psi:Q", title=None))
    points = line.mark_point(filled=True, size=45).encode(
        color=alt.Color("level:N", scale=LEVEL_SCALE, legend=None),
        tooltip=["id", "seq", alt.Tooltip("max_psi:Q", format=".4f"), "level", "scenario"])
    rules = alt.Chart(pd.DataFrame({"y": [MODERATE, MAJOR]})).mark_rule(strokeDash=[4, 3], color=GREY) \
        .encode(y="y:Q")
    return (line + points + rules).properties(height=LINE_HEIGHT)


def accuracy_chart(frame: pd.DataFrame) -> alt.Chart:
    """Realised accuracy (labelled claims) against the model's own estimate (claims still waiting)."""
    data = frame.melt(id_vars=["seq", "id"], value_vars=["realised", "estimated"], var_name="accuracy",
                      value_name="rate").dropna(subset=["rate"])
    return alt.Chart(data).mark_line(point=True).encode(
        x=_seq_axis(), y=alt.Y("rate:Q", title="accuracy", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
        color=alt.Color("accuracy:N", scale=alt.Scale(domain=["realised", "estimated"], range=[BLUE, ORANGE]),
                        legend=alt.Legend(orient="top", title=None)),
        strokeDash=alt.StrokeDash("accuracy:N", scale=alt.Scale(domain=["realised", "estimated"],
                                                                  range=[[1, 0], [5, 3]]), legend=None),
        tooltip=["id", "seq", "accuracy", alt.Tooltip("rate:Q", format=".2%")],
    ).properties(height=LINE_HEIGHT)


def agreement_chart(frame: pd.DataFrame) -> alt.Chart:
    """Share of claims on which the shadow (staging) decided as the champion did."""
    data = frame.dropna(subset=["agreement"])
    return alt.Chart(data).mark_line(point=True, color=BLUE).encode(
        x=_seq_axis(), y=alt.Y("agreement:Q", title="agreement", scale=alt.Scale(zero=False),
                               axis=alt.Axis(format="%")),
        tooltip=["id", "seq", alt.Tooltip("agreement:Q", format=".2%")],
    ).properties(height=LINE_HEIGHT)


def estimate_note(snapshot: dict) -> None:
    """When the estimated accuracy can be trusted, with the champion's calibration on its holdout."""
    detail = snapshot.get("detail") or {}
    calibration = detail.get("calibration") or {}
    ece = calibration.get("ece")
    version = snapshot.get("champion_version")
    ece_text = (f"version {version}'s expected calibration error on its holdout is **{ece:.3f}** "
                f"({calibration.get('n', 0):,} claims; 0 means P(Approved) reads as a frequency)"
                if ece is not None else "no calibration is recorded for this champion")
    gap = _gap(snapshot)
    st.caption(
        ":material/info: **Estimated** accuracy is what the champion expects of itself on claims whose outcome has "
        "not arrived: the mean of p where it approved and 1 - p where it denied. It is valid only when (1) the "
        f"probabilities are calibrated — {ece_text} — and (2) the drift is covariate drift (the inputs move, the "
        "rule from inputs to outcome does not). Under concept drift the model is as sure of itself as ever: the "
        "estimate stays high while the **realised** accuracy (labelled claims only) falls. That gap is the signal."
        + (f" Now: realised {gap[0]:.1%}, estimated {gap[1]:.1%}." if gap else ""))


def _gap(snapshot: dict) -> tuple[float, float] | None:
    realised, estimated = snapshot.get("realised_accuracy"), snapshot.get("estimated_accuracy")
    return (realised, estimated) if realised is not None and estimated is not None else None


# ---- one feature's bins, worked out by hand -----------------------------------------------------------------
def bins_frame(bins: list[dict]) -> pd.DataFrame:
    """A feature's bins with every quantity of the PSI sum: shares, shares floored at EPSILON, log ratio, term."""
    frame = pd.DataFrame(bins, columns=["label", "reference_share", "current_share", "contribution"])
    ref, cur = np.maximum(frame["reference_share"], EPSILON), np.maximum(frame["current_share"], EPSILON)
    return pd.DataFrame({"bin": frame["label"], "ref share": frame["reference_share"],
                         "cur share": frame["current_share"], "ref ≥ ε": ref, "cur ≥ ε": cur,
                         "ln(cur/ref)": np.log(cur / ref), "contribution": frame["contribution"]})


def shares_chart(bins: list[dict]) -> alt.Chart:
    """Reference vs current share of rows per bin, as horizontal bars (bin labels stay readable)."""
    data = pd.DataFrame(bins).melt(id_vars=["label"], value_vars=["reference_share", "current_share"],
                                   var_name="sample", value_name="share")
    data["sample"] = data["sample"].str.removesuffix("_share")
    return alt.Chart(data).mark_bar().encode(
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=180)), yOffset="sample:N",
        x=alt.X("share:Q", axis=alt.Axis(format="%"), title="share of rows"),
        color=alt.Color("sample:N", scale=alt.Scale(domain=["reference", "current"], range=[GREY, BLUE]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["label", "sample", alt.Tooltip("share:Q", format=".2%")],
    ).properties(height=alt.Step(12), title="Share of rows per bin")


def contribution_chart(bins: list[dict]) -> alt.Chart:
    """Each bin's term of the PSI sum, in the same order as the shares."""
    return alt.Chart(pd.DataFrame(bins)).mark_bar(color=ORANGE).encode(
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=180)),
        x=alt.X("contribution:Q", title="PSI term"),
        tooltip=["label", alt.Tooltip("contribution:Q", format=".5f")],
    ).properties(height=alt.Step(24), title="Each bin's term of the sum")


def feature_bins(snapshot: dict, feature: str) -> tuple[float, str, list[dict]] | None:
    """(stored PSI, level, bins) of a feature (or of PREDICTION) in a snapshot; None where it has none."""
    detail = snapshot.get("detail") or {}
    if feature == PREDICTION:
        prediction = detail.get("prediction")
        return (prediction["psi"], prediction["level"], prediction["bins"]) if prediction else None
    found = next((f for f in detail.get("features") or [] if f["feature"] == feature), None)
    return (found["psi"], found["level"], found["bins"]) if found else None


def worked_bins(snapshot: dict, feature: str) -> None:
    """The table and charts that let anyone recompute this feature's PSI by hand."""
    found = feature_bins(snapshot, feature)
    if found is None:
        st.info(f"Snapshot {snapshot['id']} has no bins: {_why_no_bins(snapshot)}", icon=":material/info:")
        return
    value, level, bins = found
    table = bins_frame(bins)
    total = float(table["contribution"].sum())
    st.markdown(f"**{feature}** in snapshot {snapshot['id']}: PSI **{value:.4f}** ({LEVEL_MD[level]}) · "
                f"{len(bins)} bins · epsilon **{EPSILON:g}**")
    st.latex(r"\begin{aligned}\mathrm{PSI} &= \textstyle\sum_i (c_i - r_i)\,\ln(c_i / r_i) \\ "
             r"r_i, c_i &\leftarrow \max(\,\cdot\,, \varepsilon),\ \varepsilon = " + f"{EPSILON:g}" + r"\end{aligned}")
    st.dataframe(table, hide_index=True, width="stretch", key="bins_table", column_config={
        "bin": st.column_config.TextColumn("bin", width=170),
        **{c: st.column_config.NumberColumn(c, format="%.4f", width=72) for c in
           ("ref share", "cur share", "ref ≥ ε", "cur ≥ ε", "ln(cur/ref)")},
        "contribution": st.column_config.NumberColumn("contribution", format="%.6f", width=90)})
    st.markdown(f"Sum of the contributions: **{total:.6f}** = the stored PSI {value:.6f}. Levels: below "
                f"{MODERATE:g} none, below {MAJOR:g} moderate, else major.")
    shares, terms = st.columns(2)
    shares.altair_chart(shares_chart(bins), width="stretch")
    terms.altair_chart(contribution_chart(bins), width="stretch")


def _why_no_bins(snapshot: dict) -> str:
    detail = snapshot.get("detail") or {}
    if snapshot["status"] == "not_enough_data":
        return (f"its window held {detail.get('n_window', 0):,} claims and PSI needs at least "
                f"{detail.get('min_rows', MIN_ROWS):,} (not enough data).")
    return "this feature was not measured in it."


# ---- the Drift page ---------------------------------------------------------------------------------------
def snapshot_label(snapshot: dict) -> str:
    """One line naming a snapshot: id, claim position, champion version, level, max PSI."""
    level = snapshot["level"] or "not enough data"
    psi = f" · max PSI {snapshot['max_psi']:.3f}" if snapshot["max_psi"] is not None else ""
    return (f"#{snapshot['id']} · claim {snapshot['seq']:,} · v{snapshot['champion_version']} · "
            f"{snapshot['scenario']} · {level}{psi}")


def snapshots_csv(lab) -> str:
    """Every stored snapshot, flattened (one column per feature's PSI), as CSV text; built when clicked."""
    rows = snapshot_rows(lab.stream.snapshots(limit=CSV_LIMIT))
    return pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")


def _pick(key: str, options: list, default) -> None:
    """Set a selectbox's value before it is drawn: the URL's if it names an option, else `default`."""
    if key not in st.session_state:
        wanted = st.query_params.get(key)
        st.session_state[key] = next((o for o in options if str(o) == wanted), default)
    elif st.session_state[key] not in options:
        st.session_state[key] = default


def explorer(lab) -> None:
    """Pick a snapshot and a feature: its bins worked out, and the snapshot history beside it."""
    snapshots = lab.stream.snapshots(limit=HISTORY_LIMIT)
    if not snapshots:
        st.info(f"No drift snapshots yet. Start the stream in the Claims panel of the dashboard: a snapshot is "
                f"taken every {SNAPSHOT_EVERY:,} claims over the latest {WINDOW:,}.", icon=":material/info:")
        return
    by_id = {s["id"]: s for s in snapshots}
    features = [f["feature"] for f in (next((s for s in snapshots if s["status"] == "ok"), snapshots[0])
                                       ["detail"].get("features") or [])]
    options = list(features or FEATURES) + [PREDICTION]
    _pick("snapshot", list(by_id), snapshots[0]["id"])
    _pick("feature", options, options[0])
    left, right = st.columns([2.2, 1], gap="large")
    with left:
        pick_snap, pick_feature = st.columns([1.6, 1])
        chosen = pick_snap.selectbox("Snapshot", list(by_id), key="snapshot",
                                     format_func=lambda i: snapshot_label(by_id[i]))
        feature = pick_feature.selectbox("Feature", options, key="feature")
        st.query_params["snapshot"], st.query_params["feature"] = str(chosen), feature
        worked_bins(by_id[chosen], feature)
    with right:
        history(lab, snapshots)


def history(lab, snapshots: list[dict]) -> None:
    """The snapshot history table and its CSV download."""
    st.markdown("**Snapshot history** (newest first)")
    frame = pd.DataFrame(snapshot_rows(snapshots))
    shown = frame[["id", "seq", "scenario", "level", "max_psi", "realised_accuracy", "estimated_accuracy",
                   "agreement", "prediction_psi", "champion_version", "ts"]]
    st.dataframe(shown, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(shown)),
                 key="history_table", column_config={
                     "id": st.column_config.NumberColumn("id", format="%d"),
                     "seq": st.column_config.NumberColumn("claim", format="%d"),
                     "champion_version": st.column_config.NumberColumn("version", format="%d"),
                     **{c: st.column_config.NumberColumn(c, format="%.4f") for c in
                        ("max_psi", "prediction_psi", "realised_accuracy", "estimated_accuracy", "agreement")}})
    st.download_button("Download snapshots (CSV)", data=lambda: snapshots_csv(lab), file_name="snapshots.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:", key="snapshots_csv")
    st.caption(f"Snapshot every {SNAPSHOT_EVERY:,} claims over the latest {WINDOW:,}, against the champion's own "
               f"training reference; below {MIN_ROWS:,} claims a snapshot says \"not enough data\".")

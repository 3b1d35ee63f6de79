"""Drift renderers: snapshot history lines, a feature's PSI bins worked out by hand, the estimate's caveat, and
the Drift page's snapshot explorer. Shared by the Claims panel (ui/stream.py) and pages/drift.py."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from engine.ml.claims import CATEGORICAL, FEATURES, NUMERIC
from engine.ml.drift import EPSILON, MAJOR, MODERATE
from engine.stream import (
    MIN_ROWS,
    PERFORMANCE_RULE,
    SNAPSHOT_EVERY,
    TEST_ALPHA,
    TEST_CORRECTION,
    WINDOW,
    snapshot_rows,
)
from ui.charts import BLUE, GREEN, GREY, ORANGE, RED, rows_height

LEVEL_COLOURS = {"none": GREEN, "moderate": ORANGE, "major": RED}
LEVEL_MD = {"none": ":green[none]", "moderate": ":orange[moderate]", "major": ":red[major]"}
PERFORMANCE_MD = {"none": ":green[none]", "warning": ":orange[warning]", "alert": ":red[alert]"}
METRIC_NAMES = {"accuracy": "accuracy", "false_denial_rate": "false-denial rate", "cost_per_claim": "cost per claim"}
REFERENCE_NAMES = {"holdout": "the champion's holdout", "approve_all": "approving every claim"}
CORRECTION_TEXT = {"holm": "Holm's step-down rule", "bonferroni": "Bonferroni", "none": "no correction"}
LEVEL_SCALE = alt.Scale(domain=list(LEVEL_COLOURS), range=list(LEVEL_COLOURS.values()))
PREDICTION = "P(Approved)"  # the pseudo-feature whose bins are the prediction PSI's
LINE_HEIGHT = 280           # total height in pixels: Streamlit fits axes, title and legend inside it
BIN_ROW = 24                # px per bin in the worked-bins charts, once they hold more bins than LINE_HEIGHT fits
HISTORY_LIMIT = 500         # snapshots the Drift page lists
HISTORY_COLUMNS = {"id": "id", "seq": "claim", "level": "drift", "performance_level": "performance",
                   "realised_accuracy": "realised", "estimated_accuracy": "estimated", "live_ece": "live ECE",
                   "cost_per_claim": "cost/claim", "max_psi": "max PSI", "prediction_psi": "prediction PSI",
                   "agreement": "agreement", "champion_version": "version", "scenario": "scenario", "ts": "time"}
CSV_LIMIT = 100_000         # snapshots the CSV holds (as `python -m engine stream snapshots --csv` at most)


# ---- history over snapshots -------------------------------------------------------------------------------
def history_frame(snapshots: list[dict]) -> pd.DataFrame:
    """Snapshots (newest first, as stored) as a frame oldest first, one row per snapshot, for the lines."""
    rows = [{"id": s["id"], "seq": s["seq"], "scenario": s["scenario"], "level": s["level"] or "not enough data",
             "performance": s.get("performance_level") or "not enough labels",
             "max_psi": s["max_psi"], "realised": s["realised_accuracy"], "estimated": s["estimated_accuracy"],
             "agreement": s["agreement"]} for s in reversed(snapshots)]
    return pd.DataFrame(rows, columns=["id", "seq", "scenario", "level", "performance", "max_psi", "realised",
                                       "estimated", "agreement"])


def feature_psi_frame(snapshots: list[dict]) -> pd.DataFrame:
    """Each feature's PSI in each measured snapshot (oldest first), long form: id, seq, feature, psi, level."""
    rows = [{"id": s["id"], "seq": s["seq"], "feature": f["feature"], "psi": f["psi"], "level": f["level"]}
            for s in reversed(snapshots) for f in (s.get("detail") or {}).get("features") or []]
    return pd.DataFrame(rows, columns=["id", "seq", "feature", "psi", "level"])


def feature_psi_chart(frame: pd.DataFrame) -> alt.Chart:
    """Every feature's PSI over snapshots, one line each, with the moderate and major thresholds as rules."""
    lines = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=_seq_axis(), y=alt.Y("psi:Q", title="PSI"),
        color=alt.Color("feature:N", sort=list(FEATURES), legend=alt.Legend(orient="top", title=None, columns=3)),
        tooltip=["id", "seq", "feature", alt.Tooltip("psi:Q", format=".4f"), "level"])
    rules = alt.Chart(pd.DataFrame({"y": [MODERATE, MAJOR]})).mark_rule(strokeDash=[4, 3], color=GREY) \
        .encode(y="y:Q")
    return (lines + rules).properties(height=LINE_HEIGHT)


def distribution_frame(snapshot: dict, feature: str) -> pd.DataFrame | None:
    """A numeric feature's histogram in a snapshot, reference and current, long form; None where it has none."""
    found = ((snapshot.get("detail") or {}).get("distributions") or {}).get(feature)
    if not found:
        return None
    edges = np.asarray(found["edges"], float)
    centre = np.sqrt(edges[:-1] * edges[1:]) if found["log"] else (edges[:-1] + edges[1:]) / 2
    return pd.concat([pd.DataFrame({"low": edges[:-1], "high": edges[1:], "centre": centre, "sample": sample,
                                    "share": found[sample]}) for sample in ("reference", "current")],
                     ignore_index=True).assign(log=bool(found["log"]))


def distribution_chart(frame: pd.DataFrame, feature: str) -> alt.Chart:
    """Reference against current share of rows per value range of a numeric feature (log axis for amounts)."""
    log = bool(frame["log"].iloc[0])
    return alt.Chart(frame).mark_area(interpolate="step", opacity=0.45).encode(
        x=alt.X("centre:Q", title=feature, scale=alt.Scale(type="log" if log else "linear", zero=False)),
        y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%"), stack=None),
        color=alt.Color("sample:N", scale=alt.Scale(domain=["reference", "current"], range=[GREY, BLUE]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["sample", alt.Tooltip("low:Q", format=",.4~g"), alt.Tooltip("high:Q", format=",.4~g"),
                 alt.Tooltip("share:Q", format=".2%")],
    ).properties(height=LINE_HEIGHT)


# ---- performance on labelled claims --------------------------------------------------------------------------
def performance_banner(snapshot: dict | None) -> None:
    """The performance level of a snapshot beside its input-drift level, with the check that decided it."""
    if snapshot is None:
        return
    perf = (snapshot.get("detail") or {}).get("performance")
    level = snapshot.get("performance_level")
    drift_level = LEVEL_MD.get(snapshot["level"], "not enough data")
    if not perf or level is None:
        n = (perf or {}).get("n", (snapshot.get("detail") or {}).get("n_labelled", 0))
        st.info(f"Performance: not enough labelled claims yet ({n:,} of {PERFORMANCE_RULE.min_labelled:,} in the "
                f"window). Input drift: {drift_level}.", icon=":material/hourglass_top:")
        return
    evidence = perf["evidence"]
    text = (f"Performance **{level}** (snapshot #{snapshot['id']}, input drift {drift_level}): "
            f"{evidence_text(evidence)} on {perf['n']:,} labelled claims.")
    if level == "alert":
        st.error(text + " The model is failing where it serves: consider retraining on recent labelled claims.",
                 icon=":material/error:")
    elif level == "warning":
        st.warning(text, icon=":material/warning:")
    else:
        st.success(text, icon=":material/check_circle:")


def evidence_text(evidence: dict) -> str:
    """One check in words: metric, value, interval, and the reference it was held against."""
    low, high = evidence["interval"]
    name = METRIC_NAMES.get(evidence["metric"], evidence["metric"])
    pct = evidence["metric"] != "cost_per_claim"
    fmt = (lambda x: f"{x:.1%}") if pct else (lambda x: f"{x:.3f}")
    if evidence["reference_name"] == "approve_all":  # the interval is the paired difference
        return (f"{name} {fmt(evidence['value'])} against {fmt(evidence['reference'])} for approving every claim "
                f"(difference 95% interval [{low:+.3f}, {high:+.3f}])")
    return (f"realised {name} {fmt(evidence['value'])} [{fmt(low)}, {fmt(high)}] against "
            f"{fmt(evidence['reference'])} on {REFERENCE_NAMES.get(evidence['reference_name'], 'the reference')}")


def performance_frame(snapshot: dict) -> pd.DataFrame:
    """Realised figures with their intervals beside the holdout's and approving every claim's."""
    metrics = ((snapshot.get("detail") or {}).get("performance") or {}).get("metrics") or {}
    return pd.DataFrame([{"metric": METRIC_NAMES[k], "realised": m["value"], "low": m["interval"][0],
                          "high": m["interval"][1], "holdout": m["holdout"], "approve every claim": m["approve_all"]}
                         for k, m in metrics.items()],
                        columns=["metric", "realised", "low", "high", "holdout", "approve every claim"])


def performance_section(snapshot: dict) -> None:
    """The chosen snapshot's realised performance, its checks and the rule, and the estimate's caveat."""
    st.markdown(f"**Performance on labelled claims**, snapshot #{snapshot['id']}")
    performance_banner(snapshot)
    frame = performance_frame(snapshot)
    if len(frame):
        st.dataframe(frame, hide_index=True, width="stretch", key="performance_table", column_config={
            c: st.column_config.NumberColumn(c, format="%.4f") for c in
            ("realised", "low", "high", "holdout", "approve every claim")})
    st.caption(f"Rule: {PERFORMANCE_RULE.describe()}. Intervals: bootstrap over the labelled claims "
               f"({PERFORMANCE_RULE.resamples:,} resamples).")
    estimate_note(snapshot)


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
    """When the estimated accuracy can be trusted: the champion's calibration on its holdout and, live, on the
    labelled production claims of the snapshot."""
    detail = snapshot.get("detail") or {}
    calibration, live = detail.get("calibration") or {}, detail.get("live_calibration") or {}
    ece, live_ece = calibration.get("ece"), live.get("ece")
    version = snapshot.get("champion_version")
    ece_text = (f"version {version}'s expected calibration error is **{ece:.3f}** on its holdout "
                f"({calibration.get('n', 0):,} claims)" if ece is not None
                else "no holdout calibration is recorded for this champion")
    ece_text += (f" and **{live_ece:.3f}** on the {live.get('n', 0):,} labelled production claims of this "
                 "snapshot" if live_ece is not None else "; no production claim is labelled yet")
    gap = _gap(snapshot)
    st.caption(
        ":material/info: **Estimated** accuracy is what the champion expects of itself, computed on the same "
        "labelled claims as the realised accuracy: the mean of p where it approved and 1 - p where it denied. It "
        f"is valid only when (1) the probabilities are calibrated (0 means P(Approved) reads as a frequency) — "
        f"{ece_text} — and (2) the drift is covariate drift (the inputs move, the "
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


def bins_height(bins: list[dict]) -> int:
    """The worked-bins charts' fixed height, the same for both (side by side, their bins line up): the line
    charts' height, more when there are many bins (a step height made Vega-Lite drop Streamlit's fit)."""
    return max(LINE_HEIGHT, rows_height(len(bins), BIN_ROW))


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
    ).properties(height=bins_height(bins), title="Share of rows per bin")


def contribution_chart(bins: list[dict]) -> alt.Chart:
    """Each bin's term of the PSI sum, in the same order as the shares."""
    return alt.Chart(pd.DataFrame(bins)).mark_bar(color=ORANGE).encode(
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=180)),
        x=alt.X("contribution:Q", title="PSI term"),
        tooltip=["label", alt.Tooltip("contribution:Q", format=".5f")],
    ).properties(height=bins_height(bins), title="Each bin's term of the sum")


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
    test_note(snapshot, feature)
    shares, terms = st.columns(2)
    shares.altair_chart(shares_chart(bins), width="stretch")
    terms.altair_chart(contribution_chart(bins), width="stretch")


def test_note(snapshot: dict, feature: str) -> None:
    """The feature's two-sample test: raw and family-corrected p-values, and whether it is significant."""
    detail = snapshot.get("detail") or {}
    found = next((f for f in detail.get("features") or [] if f["feature"] == feature), None)
    if found is None or found.get("p_value") is None:
        return
    correction = detail.get("correction") or "none"  # snapshots stored before the correction tested alone
    adjusted = found.get("p_adjusted", found["p_value"])
    verdict = "significant" if found["significant"] else "not significant"
    st.caption(f"{found['test']} test: p-value {found['p_value']:.3g}, {adjusted:.3g} after "
               f"{CORRECTION_TEXT.get(correction, correction)} over the {len(detail['features'])} features: "
               f"**{verdict}** at a family-wise {detail.get('alpha', TEST_ALPHA):.0%}.")


def _why_no_bins(snapshot: dict) -> str:
    detail = snapshot.get("detail") or {}
    if snapshot["status"] == "not_enough_data":
        return (f"its window held {detail.get('n_window', 0):,} claims and PSI needs at least "
                f"{detail.get('min_rows', MIN_ROWS):,} (not enough data).")
    return "this feature was not measured in it."


# ---- the Drift page ---------------------------------------------------------------------------------------
def snapshot_label(snapshot: dict) -> str:
    """One line naming a snapshot: id, claim position, champion version, scenario, both levels (each named, so
    "none" never stands alone), max PSI."""
    level = snapshot["level"] or "not enough data"
    performance = snapshot.get("performance_level") or "too few labels"
    psi = f" · max PSI {snapshot['max_psi']:.3f}" if snapshot["max_psi"] is not None else ""
    scenario = "no scenario" if snapshot["scenario"] == "none" else f"scenario {snapshot['scenario']}"
    return (f"#{snapshot['id']} · claim {snapshot['seq']:,} · v{snapshot['champion_version']} · {scenario} · "
            f"drift {level} · performance {performance}{psi}")


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
    """The latest levels; pick a snapshot and a feature: its bins worked out, its distribution against the
    reference, every feature's drift over time, the performance on labelled claims, and the snapshot history."""
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
    performance_banner(snapshots[0])  # the newest snapshot: what production looks like now
    pick_snap, pick_feature = st.columns([2.2, 1])
    chosen = pick_snap.selectbox("Snapshot", list(by_id), key="snapshot",
                                 format_func=lambda i: snapshot_label(by_id[i]))
    feature = pick_feature.selectbox("Feature", options, key="feature")
    st.query_params["snapshot"], st.query_params["feature"] = str(chosen), feature
    left, right = st.columns([1.4, 1], gap="large")
    with left:
        worked_bins(by_id[chosen], feature)
    with right:
        distribution(by_id[chosen], feature)
        st.markdown("**Drift per feature over time** (PSI of every feature, snapshot by snapshot)")
        st.altair_chart(feature_psi_chart(feature_psi_frame(snapshots)), width="stretch")
    st.divider()
    performance_section(by_id[chosen])
    st.divider()
    history(lab, snapshots)


def distribution(snapshot: dict, feature: str) -> None:
    """A numeric feature's distribution in the snapshot's window against the champion's reference."""
    st.markdown(f"**{feature}: reference against current**")
    frame = distribution_frame(snapshot, feature) if feature in NUMERIC else None
    if frame is not None:
        st.altair_chart(distribution_chart(frame, feature), width="stretch")
        st.caption("Share of rows per value range: grey the champion's training reference, blue the snapshot's "
                   "window (values beyond the outer ranges are counted in them).")
    elif feature in CATEGORICAL:
        st.caption("A categorical feature's distribution is its share of rows per category: the bars on the left.")
    elif feature == PREDICTION:
        st.caption("P(Approved)'s distribution is in its bins on the left: reference shares are the champion's "
                   "own predictions on its holdout.")
    else:
        st.caption(f"Snapshot {snapshot['id']} stored no distribution for {feature}.")


def history(lab, snapshots: list[dict]) -> None:
    """The snapshot history table (the page's full width, so every column shows) and its CSV download."""
    st.markdown("**Snapshot history** (newest first)")
    frame = pd.DataFrame(snapshot_rows(snapshots))
    shown = frame[list(HISTORY_COLUMNS)]
    st.dataframe(shown, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(shown)),
                 key="history_table", column_config={
                     "id": st.column_config.NumberColumn("id", format="%d", width=50),
                     "seq": st.column_config.NumberColumn("claim", format="%d", width=70),
                     "level": st.column_config.TextColumn("drift", width=75),
                     "performance_level": st.column_config.TextColumn("performance", width=90),
                     "champion_version": st.column_config.NumberColumn("version", format="%d", width=60),
                     **{c: st.column_config.NumberColumn(HISTORY_COLUMNS[c], format="%.4f",
                                                         width=100 if c == "prediction_psi" else 80) for c in
                        ("max_psi", "prediction_psi", "realised_accuracy", "estimated_accuracy", "live_ece",
                         "cost_per_claim", "agreement")}})
    st.download_button("Download snapshots (CSV)", data=lambda: snapshots_csv(lab), file_name="snapshots.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:", key="snapshots_csv")
    st.caption(f"Snapshot every {SNAPSHOT_EVERY:,} claims over the latest {WINDOW:,}, against the champion's own "
               f"training reference; below {MIN_ROWS:,} claims a snapshot says \"not enough data\". Drift level: "
               f"the worst feature's PSI. The per-feature KS and chi-square tests are corrected for their number by "
               f"{CORRECTION_TEXT[TEST_CORRECTION]} at a family-wise {TEST_ALPHA:.0%}, so a snapshot without drift "
               f"calls some feature significant at most {TEST_ALPHA:.0%} of the time.")

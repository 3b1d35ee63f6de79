"""Renderers for the CD and deploy steps' outputs: comparison, approval, alias moves, shadow traffic and drift."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.ml.gates import Check, Direction, read_check
from ui import charts, common, icons

LOWER_IS_BETTER = {"false_denial_rate"}
COMPARED = (("f1", "F1"), ("roc_auc", "ROC-AUC"), ("accuracy", "Accuracy"), ("precision", "Precision"),
            ("recall", "Recall"), ("false_denial_rate", "False denials"))
VERDICTS = {"pass": (st.success, icons.DONE), "fail": (st.error, icons.STATUS["failed"]),
            "hold": (st.warning, icons.STATUS["held"])}


def _name(model: dict | None, fallback: str) -> str:
    if not model:
        return fallback
    return f"v{model['version']}" if model.get("version") is not None else model.get("policy", fallback)


def gate(g: dict) -> None:
    """A gate: its rule, each check with value, 95% interval, threshold and margin, the verdict, and the decision
    threshold each model was scored at."""
    verdict = g.get("verdict", "?")
    show, icon = VERDICTS.get(verdict, (st.info, icons.INFO))
    show(f"Gate verdict: **{verdict.upper()}**", icon=icon)
    st.caption("Rule: " + g.get("rule", ""))
    checks = [read_check(c) for c in g.get("checks") or []]
    for c in checks:
        st.markdown(f"{icons.DONE if c.passed else icons.STATUS['failed']} {check_sentence(c)}")
    rows = [{"passed": c.passed, "check": c.name, "value": c.value, "95% interval": interval_text(c.interval),
             "rule": f"{c.op} {c.threshold}", "margin": c.margin} for c in checks]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"passed": st.column_config.CheckboxColumn(width="small"),
                                "value": st.column_config.NumberColumn(format="%.4f"),
                                "95% interval": st.column_config.TextColumn(help=bootstrap_text(g.get("bootstrap"))),
                                "margin": st.column_config.NumberColumn(
                                    format="%+.4f", help="how far inside (+) or outside (-) the threshold")})
    if g.get("thresholds"):
        st.caption(thresholds_text(g["thresholds"]))


def interval_text(interval: tuple[float, float] | None) -> str:
    """A check's 95% interval as '[-0.0123, +0.0456]', or '—' when the check has none (e.g. max input PSI)."""
    return "—" if not interval else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


def bootstrap_text(bootstrap: dict | None) -> str:
    """How the gate's intervals were made, for the interval column's help."""
    if not bootstrap:
        return "95% interval of the value"
    return (f"95% interval of the value: {bootstrap.get('method', 'bootstrap')}, "
            f"{bootstrap.get('resamples', 0):,} resamples, seed {bootstrap.get('seed')}")


def thresholds_text(thresholds: dict) -> str:
    """Each model's decision threshold ('challenger 0.4123, champion 0.3987'); a model that was not there is left
    out (no champion yet)."""
    shown = ", ".join(f"{model} {value:.4f}" for model, value in thresholds.items() if value is not None)
    return f"Decision thresholds (a claim is approved when P(Approved) is at or above its model's): {shown}"


def check_sentence(c: Check) -> str:
    """One gate check as a sentence. A rise or a fall against a reference is said as "rose" or "fell" ("ROC-AUC rose
    by 0.3980 (no drop)", never "drop -0.3980" or "change is -0.0040"); a level is said as its value."""
    if c.value is None or c.threshold is None:
        return f"{c.name}: no value recorded."
    if c.direction is Direction.LEVEL:
        said = f"{c.name} is {c.value:.4f}"
    else:
        rise = -c.value if c.direction is Direction.FALL else c.value
        said = (f"{c.metric} {'rose' if rise > 0 else 'fell'} by {abs(rise):.4f} {c.against}" if round(rise, 4)
                else f"{c.metric} did not change {c.against}")
        said += " (no drop)" if c.direction is Direction.FALL and rise > 0 else ""
    limit = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}.get(c.op, c.op)
    verdict = f"passes with {abs(c.margin):.4f} to spare" if c.passed else f"fails by {abs(c.margin):.4f}"
    return f"{said}; the gate needs {c.name} {limit} {c.threshold:g}: {verdict}."


def comparison(o: dict) -> None:
    """Challenger against the champion (or the approve-everything baseline) on the same holdout."""
    challenger, reference = o["challenger"], o.get("champion") or o.get("baseline")
    ref_label = ("champion " if o.get("champion") else "baseline: ") + _name(reference, "none")
    st.markdown(f"**Challenger v{challenger.get('version')}** vs **{ref_label}** on "
                f"{o.get('holdout_rows', 0):,} fresh holdout claims")
    metric_table(challenger.get("metrics") or {}, (reference or {}).get("metrics") or {}, ref_label)


def metric_table(challenger: dict, reference: dict, ref_label: str) -> None:
    """One row per metric: challenger, reference and the difference."""
    rows = []
    for key, label in COMPARED:
        c, r = challenger.get(key), reference.get(key)
        rows.append({"metric": label, "challenger": c, ref_label: r,
                     "difference": None if c is None or r is None else round(c - r, 4),
                     "challenger is": better_or_worse(key, c, r)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"difference": st.column_config.NumberColumn(
                     format="%+.4f", help=f"challenger minus {ref_label}")})


def better_or_worse(key: str, value: float | None, reference: float | None) -> str:
    """'better by 0.0123', 'worse by ...' or 'the same', minding that fewer false denials is better."""
    if value is None or reference is None:
        return "—"
    diff = value - reference
    if round(diff, 4) == 0:
        return "the same"
    better = diff < 0 if key in LOWER_IS_BETTER else diff > 0
    return f"{'better' if better else 'worse'} by {abs(diff):.4f}"


def decision(o: dict) -> None:
    """Who approved or rejected, when, and why."""
    approved = o.get("decision") == "approved"
    (st.success if approved else st.warning)(f"Manual gate: {o.get('decision', '?')}", icon=icons.REVIEWER)
    st.text(f"by:      {o.get('by', '')}\nat:      {common.fmt_ts(o.get('at'))}\ncomment: {o.get('comment') or '—'}")


def evidence(lab, o: dict) -> None:
    """What the reviewer decides on: the gate, the metrics against the reference, the top SHAP features."""
    ev = o["evidence"]
    st.markdown(f"**Evidence for model version {ev.get('model_version')}**")
    if ev.get("gate"):
        gate(ev["gate"])
    ref = ev.get("reference") or {}
    ref_label = f"champion v{ref['version']}" if ref.get("version") is not None else _name(ref, "reference")
    metric_table(ev.get("challenger_metrics") or {}, ref.get("metrics") or {}, ref_label)
    if ev.get("top_features"):
        st.altair_chart(charts.importance_bars(ev["top_features"]), width="stretch")
    if ev.get("mlflow_run_id"):
        url = common.mlflow_run_url(lab, ev["mlflow_run_id"])
        st.caption(f"MLflow run {ev['mlflow_run_id']}" + (f" · [open in MLflow UI]({url})" if url else ""))


def alias_move(o: dict) -> None:
    """A registry alias moved: deployment is exactly this."""
    before = o.get("previous") if "previous" in o else o.get("previous_champion")
    st.success(f"Alias **@{o.get('alias')}** → version **{o.get('version')}**"
               + (f" (was v{before})" if before else " (it had no version before)"), icon=icons.ALIAS)
    st.caption(f"From this step on, models:/claims-settlement-rf@{o.get('alias')} loaded version "
               f"{o.get('version')}.")


def shadow(o: dict) -> None:
    """Staging and champion on the same fresh claims: agreement, accuracy, and where they disagree."""
    acc = o.get("accuracy") or {}
    a, b, c = st.columns(3)
    a.metric("Shadow claims", f"{o.get('rows', 0):,}")
    staging, champion = acc.get("staging"), acc.get("champion")
    compared = staging is not None and champion is not None
    moved = compared and round(staging - champion, 4) != 0
    b.metric(f"Staging v{o.get('staging_version', '?')} accuracy", _num(staging),
             delta=f"{staging - champion:+.4f} vs champion" if moved else None)
    if "champion" in acc:
        c.metric(f"Champion v{o.get('champion_version', '?')} accuracy", _num(champion))
    else:
        c.caption("No champion yet: staging is checked against the accuracy floor alone.")
    if compared:
        verdict = better_or_worse("accuracy", staging, champion)
        st.markdown("On the same claims, staging's accuracy is **"
                    + ("equal to the champion's**" if verdict == "the same" else f"{verdict}** than the champion's"))
    if o.get("agreement_rate") is not None:
        st.markdown(f"Staging and champion agree on **{o['agreement_rate']:.1%}** of claims.")
    if o.get("disagreement"):
        table = pd.DataFrame.from_dict(o["disagreement"], orient="index")
        table.index.name = "staging \\ champion"
        st.dataframe(table, width="stretch")


def _num(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def drift(d: dict) -> None:
    """Input drift: summary, PSI per feature, and the bins of one feature."""
    feats = [_flat(f) for f in d.get("features") or []]
    a, b, c = st.columns(3)
    a.metric("Drift level", d.get("level", "?"))
    b.metric("Max PSI", _num(d.get("max_psi")))
    c.metric("Features drifting", f"{d.get('drift_share', 0):.0%}")
    if not feats:
        return
    st.altair_chart(charts.psi_bars(feats), width="stretch")
    table = pd.DataFrame(feats).drop(columns=["bins"], errors="ignore")
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"psi": st.column_config.NumberColumn(format="%.4f"),
                                "statistic": st.column_config.NumberColumn(format="%.4f"),
                                "p_value": st.column_config.NumberColumn(format="%.2e")})
    with_bins = [f["feature"] for f in feats if f.get("bins")]
    if with_bins:
        name = st.selectbox("Bins of feature", with_bins, key="drift_feature")
        bins = next(f["bins"] for f in feats if f["feature"] == name)
        st.altair_chart(charts.bin_shares(bins), width="stretch")


def _flat(f: dict) -> dict:
    """A feature's drift as one flat row, whether PSI/test come nested ({value, level}) or flat."""
    psi, test = f.get("psi"), f.get("test")
    out = {"feature": f.get("feature"), "kind": f.get("kind"),
           "psi": psi.get("value") if isinstance(psi, dict) else psi,
           "level": psi.get("level") if isinstance(psi, dict) else f.get("level"),
           "test": test.get("name") if isinstance(test, dict) else test,
           "statistic": test.get("statistic") if isinstance(test, dict) else f.get("statistic"),
           "p_value": test.get("p_value") if isinstance(test, dict) else f.get("p_value"),
           "significant": f.get("significant"), "drifted": f.get("drifted"),
           "bins": (psi.get("bins") if isinstance(psi, dict) else None) or f.get("bins")}
    return out

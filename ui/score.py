"""Score a claim: one claim goes to the champion; its decision, P(Approved), threshold, version and the claim's own
SHAP contributions as a waterfall. Every bad field gets its own message under it, from the engine's checks."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from engine import BadInput, Refused
from engine.lab import MAX_NUMBER_CHARS, claim_errors
from engine.ml.claims import APPROVED, CATEGORICAL, CATEGORIES, FEATURES
from engine.tracking import MlflowUnreachable
from ui import errors
from ui.charts import BLUE, GREEN, GREY, RED, rows_height

EXAMPLE = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Cardiovascular",
           "billed_amount": "4200", "allowed_amount": "3100", "patient_age": "61"}
LABELS = {"cpt_bucket": "CPT bucket", "provider_type": "Provider type", "diagnosis_group": "Diagnosis group",
          "billed_amount": "Billed amount ($)", "allowed_amount": "Allowed amount ($)", "patient_age": "Patient age"}
RESULT = "score_result"  # ("ok", result) | ("errors", {field: message}) | ("refused", message)


def _key(field: str) -> str:
    return f"score_{field}"


def render(lab) -> None:
    """The form, then the champion's answer (or what was wrong)."""
    st.subheader("Score a claim")
    st.caption("The claim goes to the model that holds **@champion** now, through the same pyfunc the live "
               "stream uses. Categories can be picked or typed; amounts and age are typed.")
    for field, value in EXAMPLE.items():
        st.session_state.setdefault(_key(field), value)
    kind, payload = st.session_state.get(RESULT, (None, None))
    wrong = payload if kind == "errors" else {}
    with st.form("score_form"):
        # One column per field, categories on the first row and numbers on the second: a message sits under
        # its own field.
        for field, column in zip(FEATURES, [*st.columns(3), *st.columns(3)]):
            with column:
                if field in CATEGORICAL:
                    st.selectbox(LABELS[field], CATEGORIES[field], index=None, key=_key(field),
                                 accept_new_options=True, placeholder="choose or type")
                else:
                    st.text_input(LABELS[field], key=_key(field), placeholder="e.g. 1234.5",
                                  max_chars=MAX_NUMBER_CHARS)
                if field in wrong:
                    st.error(wrong[field], icon=":material/error:")
        st.form_submit_button("Score with the champion", type="primary", icon=":material/gavel:",
                              on_click=_score, args=(lab,))
    if kind == "refused":
        st.error(payload, icon=":material/block:")
    elif kind == "errors":
        st.warning(f"Nothing was scored: fix the {len(wrong)} field(s) marked above.", icon=":material/edit:")
    elif kind == "ok":
        show_result(payload)


def _score(lab) -> None:
    claim = {}
    for field in FEATURES:
        value = st.session_state.get(_key(field))
        claim[field] = value.strip() if isinstance(value, str) else value
    _, wrong = claim_errors(claim, names=LABELS)  # each message says its field as the form labels it
    if wrong:
        st.session_state[RESULT] = ("errors", wrong)
        return
    try:
        st.session_state[RESULT] = ("ok", lab.score(claim, explain=True))
    except (BadInput, Refused, MlflowUnreachable) as exc:
        st.session_state[RESULT] = ("refused", errors.first_line(exc, errors.REFUSAL_CHARS))
    except Exception as exc:  # a callback runs before the page, outside its guard: the same short message
        errors.log_error(exc, "score form")
        st.session_state[RESULT] = ("refused", errors.message(exc))


def show_result(result: dict) -> None:
    """Decision, P(Approved), threshold and version; then the waterfall from the base value to P(Approved)."""
    approved = result["decision"] == APPROVED
    colour = "green" if approved else "red"
    icon = ":material/check_circle:" if approved else ":material/cancel:"
    st.markdown(f"### :{colour}[{icon} {result['decision']}]")
    a, b, c = st.columns(3)
    a.metric("P(Approved)", f"{result['p_approved']:.3f}")
    b.metric("Threshold", f"{result['threshold']:.3f}",
             help="Approved when P(Approved) is at or above the model's own decision threshold.")
    c.metric("Deciding version", f"v{result['version']}", help=f"{result['model']} @champion")
    st.altair_chart(waterfall(result), width="stretch")
    total = result["base_value"] + sum(c["shap"] for c in result["contributions"])
    st.caption(f"Exact SHAP (TreeExplainer) of this claim: base value {result['base_value']:.3f} (the mean "
               f"P(Approved) over the background data) plus the contributions = {total:.3f} = P(Approved). "
               "Green pushes toward Approved, red toward Denied; the dashed line is the threshold.")


def waterfall_frame(result: dict) -> pd.DataFrame:
    """Bars of the waterfall: the base value, each feature's step (largest first), the final P(Approved)."""
    steps = sorted(result["contributions"], key=lambda c: -abs(c["shap"]))
    rows = [{"step": "base value", "start": 0.0, "end": result["base_value"], "kind": "base"}]
    level = result["base_value"]
    for c in steps:
        value = f"{c['value']:g}" if isinstance(c["value"], (int, float)) else str(c["value"])
        rows.append({"step": f"{c['feature']} = {value}", "start": level, "end": level + c["shap"],
                     "kind": "toward Approved" if c["shap"] >= 0 else "toward Denied"})
        level += c["shap"]
    rows.append({"step": "P(Approved)", "start": 0.0, "end": result["p_approved"], "kind": "result"})
    frame = pd.DataFrame(rows)
    frame["shap"] = frame["end"] - frame["start"]
    return frame


def waterfall(result: dict) -> alt.LayerChart:
    """The waterfall as horizontal bars on the probability axis, with the threshold as a rule."""
    frame = waterfall_frame(result)
    kinds = alt.Scale(domain=["base", "toward Approved", "toward Denied", "result"], range=[GREY, GREEN, RED, BLUE])
    bars = alt.Chart(frame).mark_bar(height=18).encode(
        y=alt.Y("step:N", sort=None, title=None, axis=alt.Axis(labelLimit=220)),
        x=alt.X("start:Q", title="P(Approved)", scale=alt.Scale(domain=[0, 1])), x2="end:Q",
        color=alt.Color("kind:N", scale=kinds, legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["step", alt.Tooltip("shap:Q", format="+.4f", title="step"),
                 alt.Tooltip("end:Q", format=".4f", title="running total")])
    rule = alt.Chart(pd.DataFrame({"x": [result["threshold"]]})).mark_rule(strokeDash=[4, 3], color=GREY) \
        .encode(x="x:Q")
    return (bars + rule).properties(height=rows_height(len(frame), 28), title="Why: this claim's SHAP contributions")

"""The claims panel: the selected run's training data as its steps see it. The live stream comes later."""
from __future__ import annotations

import streamlit as st

from ui import charts

SAMPLE_ROWS = 2000   # enough for stable histograms; generating them takes milliseconds
TABLE_ROWS = 50


@st.cache_data(ttl=60, show_spinner=False, max_entries=16)
def _sample(_lab, db_url: str, run_id: int, modes: tuple, rows: int):
    # Keyed on the run's failure modes too: a retry with other modes changes what its feed looks like.
    return _lab.claims_sample(run_id, rows)


def render(lab, run: dict | None) -> None:
    """A table of claims and their distributions for `run` (a hint when there is none)."""
    st.markdown("#### Claims")
    st.caption("The live claims stream, scored by the champion with a drift monitor, arrives in a later release; "
               "this panel shows the data feed a run trains on.")
    if run is None:
        st.info("No run yet: after + Fake Commit, this panel shows that run's training claims.")
        return
    frame = _sample(lab, lab.settings.database_url, run["id"], tuple(run["failure_modes"] or ()), SAMPLE_ROWS)
    st.markdown(f"**Training data of run {run['id']}** (seed {run['seed']}, window {run['dataset_window']}) · "
                f"first {TABLE_ROWS} of {len(frame):,} sampled claims")
    if "schema_validation" in (run["failure_modes"] or ()):
        st.warning("This run's feed lacks diagnosis_group (schema_validation failure mode).", icon="🧨")
    table, plots = st.columns([1.2, 1])
    with table:
        st.dataframe(frame.head(TABLE_ROWS), hide_index=True, width="stretch", height=430,
                     column_config={"billed_amount": st.column_config.NumberColumn(format="$%.2f"),
                                    "allowed_amount": st.column_config.NumberColumn(format="$%.2f"),
                                    "service_date": st.column_config.DateColumn(format="YYYY-MM-DD"),
                                    "claim_id": st.column_config.TextColumn()})
    with plots:
        a, b = st.columns(2)
        a.altair_chart(charts.log_histogram(frame, "billed_amount", "billed amount (log scale)"), width="stretch")
        b.altair_chart(charts.histogram(frame, "patient_age", "patient age"), width="stretch")
        c, d = st.columns([1.6, 1])
        c.altair_chart(charts.category_bars(frame, "provider_type", "provider type"), width="stretch")
        if "outcome" in frame:
            d.altair_chart(charts.outcome_share(frame), width="stretch")
        st.caption("Bars are stacked by outcome: :green[■] Approved :red[■] Denied")

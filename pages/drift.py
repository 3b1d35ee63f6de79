"""Drift and scoring: any snapshot's PSI bins worked out by hand, the snapshot history, and score a claim."""
import streamlit as st

from ui import drift, score
from ui.common import get_lab

lab = get_lab()
st.title("Drift and scoring")
st.caption("Each snapshot compares the latest claims the champion served with the data that champion was trained "
           "on. Pick a snapshot and a feature: every number behind its PSI is below, so you can recompute it.")
drift.explorer(lab)
st.divider()
score.render(lab)

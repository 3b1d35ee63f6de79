"""Claim ML CI/CD Lab: the Streamlit entry point. Page config, navigation, and the engine once per process."""
import streamlit as st

from ui.common import get_lab
from ui.walkthrough import TOUR

st.set_page_config(page_title="Claim ML CI/CD Lab", page_icon="🩺", layout="wide")
get_lab()  # starts the background runner once per server process

pages = {
    "Lab": [
        st.Page("pages/dashboard.py", title="Dashboard", icon="🧪", default=True),
        st.Page("pages/runs.py", title="Run history", icon="📜"),
        st.Page("pages/registry.py", title="Model registry", icon="🏷️"),
        st.Page("pages/drift.py", title="Drift and scoring", icon=":material/monitoring:"),
        st.Page("pages/demo.py", title="Demo autopilot", icon="▶️"),
    ],
    "Walkthrough": [st.Page(fn, title=title, url_path=path) for title, fn, path in TOUR],
}
st.navigation(pages).run()

"""Claim ML CI/CD Lab: the Streamlit entry point. Page config, navigation, and the engine once per process.

Navigation sits at the top: `client.showSidebarNavigation = false` (.streamlit/config.toml) keeps Streamlit from
showing the raw list of the pages/ folder before st.navigation has run, and it hides sidebar navigation too.
"""
from pathlib import Path

import streamlit as st

from ui import icons
from ui.common import get_lab
from ui.tour import TOUR

HERE = Path(__file__).parent
# The favicon is a file served by the app: a Material icon favicon is fetched from fonts.gstatic.com (a console
# error wherever that is unreachable), and a page's own icon is not used once page_icon is set.
st.set_page_config(page_title="Claim ML CI/CD Lab", page_icon=str(HERE / "ui" / "favicon.svg"), layout="wide")
st.html(f"<style>{(HERE / 'ui' / 'theme.css').read_text()}</style>")
get_lab()  # starts the background runner once per server process

pages = {
    "Lab": [
        st.Page("pages/dashboard.py", title="Dashboard", icon=icons.DASHBOARD, default=True),
        st.Page("pages/runs.py", title="Run history", icon=icons.HISTORY),
        st.Page("pages/registry.py", title="Model registry", icon=icons.REGISTRY),
        st.Page("pages/drift.py", title="Drift and scoring", icon=icons.DRIFT),
        st.Page("pages/demo.py", title="Demo autopilot", icon=icons.DEMO),
    ],
    "Walkthrough": [st.Page(fn, title=title, url_path=path, icon=icons.TOUR) for title, fn, path in TOUR],
}
st.navigation(pages, position="top").run()

"""Claim ML CI/CD Lab: the page script that app.py's server runs for every visitor. Page config and navigation.

Navigation sits at the top: `client.showSidebarNavigation = false` (.streamlit/config.toml) keeps Streamlit from
showing the raw list of the pages/ folder before st.navigation has run, and it hides sidebar navigation too.
"""
from pathlib import Path

import streamlit as st

from ui import busy, errors, icons, pagekit
from ui.tour import TOUR

HERE = Path(__file__).parent
# The favicon is a file served by the app: a Material icon favicon is fetched from fonts.gstatic.com (a console
# error wherever that is unreachable), and a page's own icon is not used once page_icon is set.
st.set_page_config(page_title="Claim ML CI/CD Lab", page_icon=str(HERE / "ui" / "favicon.svg"), layout="wide")
st.html(f"<style>{(HERE / 'ui' / 'theme.css').read_text()}</style>")

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
page = st.navigation(pages, position="top")
pagekit.note_visit(page.url_path)
with busy.page_slot():  # a few full page runs at once; a visitor in line is told why the page waits
    errors.run(page)  # what escapes a page: a short message, no traceback

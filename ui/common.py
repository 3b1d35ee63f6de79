"""What every page shares: the one Lab per server process, cached reads, and formatting helpers."""
from __future__ import annotations

import streamlit as st

from engine import Lab


@st.cache_resource
def get_lab() -> Lab:
    """The lab of this server process, its runner started once."""
    return Lab().start()

"""Claim ML CI/CD Lab: the server. `streamlit run app.py` serves this st.App (Streamlit's ASGI entry point).

The pages are drawn by navigation.py, for every visitor, and nothing else happens in this process: in embedded
mode its lifespan starts the lab's worker (`python -m engine worker`, engine/supervisor.py), which runs the steps
and the live stream, and stops it with the server. With LAB_APP_WORKER=0 (compose runs its own workers) it starts
none, so app replicas and workers scale apart.
"""
import asyncio
import logging
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware
from streamlit.runtime.pages_manager import PagesManager

from api import ROUTES  # the JSON API and GitHub webhook under /api (api/__init__.py)
from api.page_root import PageRoot
from api.static_cache import StaticCache
from engine.config import Settings
from engine.errors import BadInput
from engine.supervisor import Supervisor
from ui import busy, errors  # importing errors masks passwords in every log record of this process

# Until the first st.navigation call, Streamlit treats an app with a pages/ folder beside its script in its older
# multipage mode: the first visitor after a start who opened /registry got pages/registry.py alone, without
# navigation.py (no page config, theme, menu or error guard). The pages here are only ever reached through
# navigation.py. (An internal attribute: tests/test_app.py pins it.)
PagesManager.uses_pages_directory = False

log = logging.getLogger("lab.app")


def embedded_worker() -> Supervisor | None:
    """The supervised worker of this data directory, or None when this deployment runs its workers elsewhere."""
    try:
        settings = Settings.from_env()
    except BadInput as exc:  # the pages say the same to every visitor; the server log says it once
        log.error("no worker started: %s", exc)
        return None
    if not settings.app_worker:
        log.info("LAB_APP_WORKER is off: this server starts no worker; `python -m engine worker` processes run steps")
        return None
    return Supervisor(settings).start()


@asynccontextmanager
async def lifespan(_app):
    """Start the embedded worker with the server, its pages running below its steps (ui/busy.py); stop it (its
    steps finish or go back to the queue) at the end."""
    supervisor = embedded_worker()
    if supervisor is not None:
        busy.yield_to_steps(supervisor.settings.page_nice)
    try:
        yield
    finally:
        if supervisor is not None:
            await asyncio.to_thread(supervisor.stop)


# on_script_error: what escapes a page, a callback or a fragment's timer rerun is shown as a short message and
# logged masked (ui/errors.py); showErrorDetails = "none" in .streamlit/config.toml is the backstop.
# StaticCache: Streamlit's immutable static files from memory (most of a fresh visitor's cost to the server).
# PageRoot: a page's address opened cold connects at the root at once, not after two 404s (api/page_root.py).
app = st.App("navigation.py", lifespan=lifespan, on_script_error=errors.on_script_error, routes=ROUTES,
             middleware=[Middleware(StaticCache), Middleware(PageRoot, base=st.get_option("server.baseUrlPath"))])

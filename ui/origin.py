"""Where a run came from, as the header and the run history say it: a GitHub push (repository, branch, a link to
the commit), the CLI, the dashboard, the HTTP API, the closed loop (drift) or the demo autopilot.

Runs record it when they are committed (Lab.commit's `trigger` and `detail`, kept in the store's run_origin);
runs from before that, or from code that records none, say "not recorded".
"""
from __future__ import annotations

from urllib.parse import quote

from engine import Run
from ui.common import md_escape

SOURCES = {
    "webhook": "GitHub push",
    "cli": "CLI",
    "dashboard": "dashboard",
    "api": "HTTP API",
    "drift": "closed loop (drift)",
    "autopilot": "demo autopilot",
}
NOT_RECORDED = "not recorded"
SAFE_IN_URL = ":/?#[]@!$&'()*+,;=%~"  # what a link keeps as is; anything else is percent-encoded


def source(run: Run) -> str:
    """The run's source in a few words, e.g. "GitHub push octo-org/claims-model (main)" or "CLI"."""
    trigger = run.trigger or "commit"
    label = SOURCES.get(trigger, trigger if trigger != "commit" else NOT_RECORDED)
    origin = run.origin or {}
    if trigger == "webhook" and origin.get("repository"):
        branch = f" ({origin['branch']})" if origin.get("branch") else ""
        return f"{label} {origin['repository']}{branch}"
    return label


def commit_link(run: Run) -> str | None:
    """The commit's page (a webhook run's), when the run recorded an http(s) link to it."""
    url = (run.origin or {}).get("commit_url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def markdown(run: Run) -> str:
    """`source` for st.markdown: user text escaped, the commit linked when the run has its link; "" for a run
    that recorded no source (a status line does not say "from not recorded"; the run history does)."""
    said = source(run)
    if said == NOT_RECORDED:
        return ""
    text = f"from {md_escape(said)}"
    url = commit_link(run)
    if url:
        # Inside <...> a link ends only at ">"; quoting leaves none in it (nor spaces, "<" or newlines).
        text += f" · [view the commit](<{quote(url, safe=SAFE_IN_URL)}>)"
    return text

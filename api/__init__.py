"""The lab's HTTP API and GitHub push webhook, served beside the pages by the dashboard's own server.

app.py passes ROUTES to `st.App(..., routes=ROUTES)`: one Mount at /api of a small Starlette application, so
`streamlit run app.py` answers /api/... with JSON and every other path as before. Bare Starlette rather than a
FastAPI sub-application: Starlette is what st.App itself is built on (FastAPI is here only as an MLflow
dependency, not pinned by the lab), every input is already checked by engine.Lab with the CLI's own messages (a
pydantic layer would be a second set of rules and messages to keep in step), and the webhook must read the raw
body before parsing it anyway. GET /api/ lists the endpoints in place of an OpenAPI page.

Nothing here imports streamlit or ui: the API calls engine.Lab only (api/http.py holds this server's one).
"""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from api.http import refusal
from api.routes import ROUTES as API_ROUTES


async def _http_error(request, exc: HTTPException):
    """Unknown paths and methods under /api answer JSON too (the routes' own errors are made in api/http.py)."""
    if exc.status_code == 405:
        return refusal(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}; "
                                                  "GET /api/ lists the endpoints", dict(exc.headers or {}))
    return refusal(exc.status_code, "not_found" if exc.status_code == 404 else "http_error",
                   f"no endpoint {request.method} {request.url.path}; GET /api/ lists the endpoints")


api_app = Starlette(routes=API_ROUTES, exception_handlers={HTTPException: _http_error})
ROUTES = [Route("/api", lambda _request: RedirectResponse("/api/", 308)), Mount("/api", app=api_app)]
"""What app.py adds to its st.App: the API and the webhook under /api."""

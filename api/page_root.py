"""A page's own address opened cold (/drift, /runs?run=3): Streamlit's frontend is told where the app's root is.

Before any script runs, the frontend guesses the server's root from the address it was opened at: opened at /drift
it asks /drift/_stcore/health and /drift/_stcore/host-config first, and only after both answered 404 (two errors
in the browser console) the root's. Answering those two under the page is no cure: the frontend then takes /drift
for the root, opens its websocket at /drift/_stcore/stream (refused, 403) and keeps retrying: the page never
draws. So the HTML shell answered at a page's address carries the root instead, in the frontend's own setting for
it (`window.__streamlit.BACKEND_BASE_URL`, its hook for hosts that serve the app elsewhere): the address's folder,
worked out in the browser so that a proxy's path prefix is kept. A page's address is one path segment below the
root (Streamlit allows no nested page paths) and has no dot (a file's name, /favicon.png, has one and keeps its
compression); the root's own shell is answered as it is.
"""
from __future__ import annotations

import re

# Before the frontend's module script; a host's own settings, if it gave any, win.
SCRIPT = (b'<script>window.__streamlit = {BACKEND_BASE_URL: new URL(".", window.location.href).href, '
          b'...window.__streamlit}</script>')
HEAD = b"<head>"


class PageRoot:
    """ASGI middleware: the HTML shell answered at a page's address names the app's root for the frontend."""

    def __init__(self, app, base: str = ""):
        self.app = app
        base = base.strip("/")
        self.page = re.compile("^" + (re.escape("/" + base) if base else "") + "/[^/.]+$")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or not self.page.match(scope["path"]):
            return await self.app(scope, receive, send)
        # Uncompressed and in body messages (not a server-side file send), so that the shell (about 7 KB) can be
        # read and written here.
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"],
                 "extensions": {k: v for k, v in (scope.get("extensions") or {}).items()
                                if k != "http.response.pathsend"}}
        start, chunks = {}, []

        async def rewrite(message):
            if message["type"] == "http.response.start":
                named = {bytes(k).lower(): bytes(v).lower() for k, v in message.get("headers") or []}
                if message["status"] == 200 and named.get(b"content-type", b"").startswith(b"text/html"):
                    start.update(message)  # held until the whole shell is here
                    return
            elif message["type"] == "http.response.body" and start:
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._send_shell(start, b"".join(chunks), send)
                return
            await send(message)
        await self.app(scope, receive, rewrite)

    @staticmethod
    async def _send_shell(start: dict, body: bytes, send) -> None:
        at = body.find(HEAD)
        if at >= 0:
            body = body[:at + len(HEAD)] + SCRIPT + body[at + len(HEAD):]
        headers = [(k, v) for k, v in start.get("headers") or [] if bytes(k).lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

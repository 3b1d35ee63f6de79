"""Streamlit's own static files (its JavaScript chunks, fonts, icons) answered from memory.

A fresh browser asks the dashboard's server for about 140 files (5 MB) before it can draw anything: three times
what a one-line Streamlit page needs, because the dashboard uses dataframes, charts, code and custom components.
Through Streamlit's middleware stack and a file read each, that was most of the server's CPU per arriving visitor.
These files are content-hashed and served as `immutable`, so the first answer for a path is the answer for ever:
it is kept, and later requests for it get the same bytes at once. Only complete 200 answers marked immutable
without a content encoding are kept (the same bytes are right for every client); range, conditional and other
requests go through as before.
"""
from __future__ import annotations

MAX_FILE = 4 << 20     # bytes: a bigger file is served from disk as before
MAX_TOTAL = 64 << 20   # bytes kept in all (Streamlit's whole static folder is about 26 MB)
_BYPASS = (b"range", b"if-none-match", b"if-modified-since")


class StaticCache:
    """ASGI middleware: GET /static/... answered from memory once Streamlit has answered it once."""

    def __init__(self, app, prefix: str = "/static/"):
        self.app, self.prefix = app, prefix
        self.kept: dict[str, tuple[int, list, bytes]] = {}
        self.size = 0

    async def __call__(self, scope, receive, send):
        if not self._cacheable(scope):
            return await self.app(scope, receive, send)
        hit = self.kept.get(scope["path"])
        if hit is None:
            return await self._fill(scope, receive, send)
        status, headers, body = hit
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _cacheable(self, scope) -> bool:
        return (scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(self.prefix)
                and not any(name in _BYPASS for name, _ in scope["headers"]))

    async def _fill(self, scope, receive, send):
        start, chunks = {}, []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self._keep(scope["path"], start, b"".join(chunks))
            await send(message)
        await self.app(scope, receive, capture)

    def _keep(self, path: str, start: dict, body: bytes) -> None:
        headers = start.get("headers") or []
        named = {bytes(k).lower(): bytes(v).lower() for k, v in headers}
        if (start.get("status") != 200 or b"immutable" not in named.get(b"cache-control", b"")
                or b"content-encoding" in named or len(body) > MAX_FILE or self.size + len(body) > MAX_TOTAL):
            return
        self.kept[path] = (200, list(headers), body)
        self.size += len(body)

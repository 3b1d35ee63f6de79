"""Streamlit's immutable static files answered from memory after their first answer; anything else untouched."""
from __future__ import annotations

from api.static_cache import StaticCache


class Files:
    """A downstream app that counts its calls and answers like Streamlit's static route."""

    def __init__(self, cache_control=b"public, immutable, max-age=31536000", status=200, encoding=None):
        self.calls, self.cache_control, self.status, self.encoding = 0, cache_control, status, encoding

    async def __call__(self, scope, receive, send):
        self.calls += 1
        headers = [(b"content-type", b"text/javascript"), (b"cache-control", self.cache_control)]
        if self.encoding:
            headers.append((b"content-encoding", self.encoding))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"part one,", "more_body": True})
        await send({"type": "http.response.body", "body": b" part two"})


def _drive(coroutine) -> None:
    """Run a coroutine that never waits (these fakes never do) without an event loop: a test process may have one
    running already (the browser tests' driver)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("the coroutine waited for something")


def get(app, path="/static/js/index.abc123.js", headers=()):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}
    scope = {"type": "http", "method": "GET", "path": path, "headers": list(headers)}
    _drive(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_an_immutable_file_is_read_once_and_then_answered_from_memory():
    files = Files()
    cache = StaticCache(files)
    assert get(cache) == (200, b"part one, part two")
    assert get(cache) == (200, b"part one, part two") and get(cache)[1] == b"part one, part two"
    assert files.calls == 1
    get(cache, "/static/js/other.def456.js")
    assert files.calls == 2


def test_other_answers_and_requests_go_through_every_time():
    for files in (Files(cache_control=b"no-cache"), Files(status=404), Files(encoding=b"gzip")):
        cache = StaticCache(files)
        get(cache), get(cache)
        assert files.calls == 2 and not cache.kept
    files = Files()
    cache = StaticCache(files)
    get(cache, headers=[(b"range", b"bytes=0-3")])
    get(cache, "/_stcore/health"), get(cache, "/_stcore/health")
    assert files.calls == 3 and not cache.kept

"""api/http.py's error answers, called as Starlette calls an endpoint (no server): every error the Lab raises maps
to the status its CLI exit code stands for, and an unexpected one answers 500 in one line, no traceback, no
password or key. A body that is not a JSON object, however it fails to be one, is a 400 saying why.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from starlette.requests import Request

from api.http import ApiError, endpoint, parse_object
from engine.errors import BadInput, Limited, NotFound, Refused
from engine.states import IllegalTransition


def answer_to(exc: BaseException) -> tuple[int, dict]:
    """(status, JSON) of a read endpoint whose handler raises `exc`."""
    async def handler(request):
        raise exc

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    scope = {"type": "http", "method": "GET", "path": "/api/x", "raw_path": b"/api/x", "query_string": b"",
             "headers": [], "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": ""}
    # On a thread of its own: a browser test earlier in this process may hold Playwright's loop on this one.
    with ThreadPoolExecutor(1) as pool:
        reply = pool.submit(asyncio.run, endpoint(handler)(Request(scope, receive))).result()
    return reply.status_code, json.loads(reply.body)


@pytest.mark.parametrize("exc, status, kind, message", [
    (BadInput("--sha 'x' is not a git SHA"), 422, "bad_input", "error: --sha 'x' is not a git SHA"),
    (NotFound("there is no run 9"), 404, "not_found", "error: there is no run 9"),
    (Refused("run 1 is promoted"), 409, "refused", "refused: run 1 is promoted (nothing was changed)"),
    (IllegalTransition("run 1", "promoted", "queued"), 409, "refused", None),
    (Limited("this demo allows one commit every 30 s per visitor"), 429, "limited",
     "refused: this demo allows one commit every 30 s per visitor (nothing was changed)"),
    (ApiError(413, "too_large", "the request body is over 1,048,576 bytes"), 413, "too_large",
     "the request body is over 1,048,576 bytes"),
])
def test_a_refusal_answers_its_status_with_the_clis_line(exc, status, kind, message):
    got_status, body = answer_to(exc)
    assert (got_status, body["error"]) == (status, kind)
    assert body["message"] == (message or f"refused: {exc} (nothing was changed)")


def test_an_unexpected_error_answers_500_in_one_masked_line(monkeypatch):
    monkeypatch.setenv("LAB_API_TOKEN", "tok-9f8e7d6c5b")
    try:
        raise KeyError("inner")
    except KeyError as cause:
        exc = RuntimeError("MLflow at http://lab:hunter2@mlflow:5000 said no; token tok-9f8e7d6c5b\nsecond line")
        exc.__cause__ = cause
    status, body = answer_to(exc)
    assert (status, body["error"]) == (500, "failed")
    assert body["message"] == "failed: RuntimeError: MLflow at http://lab:***@mlflow:5000 said no; token ***"


def test_a_database_that_does_not_answer_is_503_naming_it_without_its_password():
    exc = sa.exc.OperationalError("SELECT 1", {}, Exception("could not connect to server: Connection refused"))
    status, body = answer_to(exc)
    assert (status, body["error"]) == (503, "database")
    assert body["message"].startswith("failed: the database at") and "Connection refused" in body["message"]


@pytest.mark.parametrize("body, says", [
    (b"[" * 100_000, "the claim is nested too deeply to read"),                       # not even closed
    (b"[" * 50_000 + b"]" * 50_000, "the claim is nested too deeply to read"),
    (b'{"a": ' * 20_000 + b"1" + b"}" * 20_000, "the claim is nested too deeply to read"),
    (b"{not json", "the claim is not valid JSON; send a JSON object"),
    (b"1" * 5000, "the claim is not valid JSON; send a JSON object"),                 # past int()'s digit limit
    (b"[[1]]", "the claim must be a JSON object"),
], ids=["100k-open-lists", "nested-lists", "nested-objects", "not-json", "5000-digits", "a-list"])
def test_a_body_that_is_no_json_object_is_a_400_saying_why(body, says):
    with pytest.raises(ApiError) as refused:  # deep nesting raised RecursionError: a 500
        parse_object(body, "the claim")
    assert (refused.value.status, refused.value.kind) == (400, "bad_request") and str(refused.value).startswith(says)
    assert len(str(refused.value)) < 300

"""What every endpoint shares: this server's Lab, bounded request bodies, answers in the CLI's JSON, errors mapped
as the CLI maps them to exit codes (engine/output.py), and the token that writes need.

The API reads and acts through one Lab per server process, its reads shared (engine/shared.py, a one-second
cache that every action clears), like the pages' own. Lab calls block (database, MLflow), so they run in the
server's thread pool, never on the event loop that also serves every visitor's page.
"""
from __future__ import annotations

import hmac
import json
import logging
import threading
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.config import Settings, env_secrets, mask_exception
from engine.output import failure, to_json
from engine.shared import SharedLab

log = logging.getLogger("lab.api")

MAX_BODY = 1 << 20  # bytes a request body may have (a push of a few commits is a few KB; GitHub allows up to 25 MB)
DRAIN = 32 << 20    # bytes of a refused body still read (and dropped): above GitHub's 25 MB cap on deliveries
NO_WRITES = ("this lab's API takes no writes: set LAB_API_TOKEN in the server's environment to a long random value "
             "and restart it, then send it as the header 'Authorization: Bearer <token>'")

_lock = threading.Lock()
_lab: SharedLab | None = None


class ApiError(Exception):
    """A request the API itself refuses (before any Lab call): HTTP `status`, a `kind` and a message saying why."""

    def __init__(self, status: int, kind: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers


def lab() -> SharedLab:
    """This server process's Lab, made on first use (its settings come from the environment, as the CLI's)."""
    global _lab
    with _lock:
        if _lab is None:
            from engine.lab import Lab
            made = Lab(Settings.from_env())
            _lab = SharedLab(made, ttl=made.settings.shared_read_seconds)  # as the pages' (ui/common.get_lab)
        return _lab


def answer(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    """`obj` as JSON exactly as the CLI prints it (ISO 8601 times)."""
    return Response(to_json(obj) + "\n", status, headers, media_type="application/json")


def refusal(status: int, kind: str, message: str, headers: dict | None = None) -> Response:
    """An error answer: {"error": kind, "message": the one line the CLI would print}."""
    return answer({"error": kind, "message": message}, status, headers)


def endpoint(handler: Callable[[Request], Awaitable[Response]], write: bool = False):
    """A route endpoint: checks the token for a write, then answers errors as the CLI reports them (bad input
    422, unknown run 404, refused 409, the demo's limits 429, database 503, anything else 500 in one masked line,
    never a traceback)."""
    async def run(request: Request) -> Response:
        try:
            if write:
                await run_in_threadpool(check_token, request)
            return await handler(request)
        except ApiError as exc:
            return refusal(exc.status, exc.kind, str(exc), exc.headers)
        except Exception as exc:
            failed = failure(exc, _database_url())
            if failed.kind in ("failed", "database"):  # the server's log keeps the whole story, masked
                log.error("%s %s: %s", request.method, request.url.path,
                          mask_exception(exc, env_secrets(), full=True))
            return refusal(failed.http, failed.kind, failed.message)
    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _database_url() -> str | None:
    return _lab.lab.settings.database_url if _lab is not None else None


async def call(fn: Callable, *args, **kwargs):
    """`fn(*args, **kwargs)` in the thread pool (Lab calls block)."""
    return await run_in_threadpool(fn, *args, **kwargs)


def check_token(request: Request) -> None:
    """ApiError unless the request carries `Authorization: Bearer <LAB_API_TOKEN>` (compared in constant time);
    403 when this server has no token, so takes no writes at all."""
    expected = lab().settings.api_token
    if not expected:
        raise ApiError(403, "writes_disabled", NO_WRITES)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="claim-ml-cicd-lab"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "this is a write: send the header 'Authorization: Bearer <LAB_API_TOKEN>'",
                       challenge)
    # Constant time: how long a wrong token takes to refuse says nothing about how much of it was right.
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "that is not this lab's API token (LAB_API_TOKEN); nothing was changed",
                       challenge)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The raw request body, refused with 413 past `limit` bytes (whether or not it declared its length).

    The rest of a refused body is read and dropped, up to DRAIN bytes, so that a client that sends the whole body
    before it reads the answer (GitHub's does) hears the 413 instead of a connection reset."""
    too_big = ApiError(413, "too_large", f"the request body is over {limit:,} bytes, the limit of this lab's API")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > DRAIN):
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN:
            break
    if size > limit:
        raise too_big
    return b"".join(chunks)


def parse_object(body: bytes, what: str = "the request body") -> dict:
    """`body` as a JSON object ({} when empty); 400 saying what is wrong otherwise."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:  # not JSON, not UTF-8, or a number past Python's digit limit
        raise ApiError(400, "bad_request", f"{what} is not valid JSON; send a JSON object") from None
    except RecursionError:  # arrays or objects inside one another past Python's recursion limit (about 1,000)
        raise ApiError(400, "bad_request", f"{what} is nested too deeply to read (arrays or objects inside one "
                                           "another, hundreds of levels down); send a JSON object nested a few "
                                           "levels at most") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", f"{what} must be a JSON object")
    return value


# What a body field may hold, by the name used in messages.
TEXT, WHOLE, NUMBER, FLAG = "text", "a whole number", "a number", "true or false"
_KINDS = {TEXT: (str,), WHOLE: (int,), NUMBER: (int, float), FLAG: (bool,)}


async def fields(request: Request, spec: dict[str, str], required: tuple[str, ...] = ()) -> dict:
    """The JSON body's fields, each checked against `spec` ({name: TEXT, WHOLE, ...}); absent ones are None.
    400 naming the field for an unknown field, a wrong type or a missing required one."""
    body = parse_object(await read_body(request))
    unknown = sorted(set(body) - set(spec))
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field(s) {', '.join(unknown)}; this endpoint takes: "
                                           f"{', '.join(spec) or 'no fields'}")
    for name, kind in spec.items():
        value = body.get(name)
        if value is None:
            if name in required:
                raise ApiError(400, "bad_request", f"the field {name} is missing; give it as {kind}")
            continue
        if isinstance(value, bool) and kind != FLAG or not isinstance(value, _KINDS[kind]):
            raise ApiError(400, "bad_request", f"the field {name} must be {kind}")
    return {name: body.get(name) for name in spec}


def query_int(request: Request, name: str, default: int) -> int:
    """A whole-number query parameter (`default` when absent); 400 when it is anything else."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise ApiError(400, "bad_request", f"{name}={raw[:40]!r} is not a whole number")
    return int(raw)


def query_flag(request: Request, name: str) -> bool:
    """A yes/no query parameter (absent: no); 400 for anything but true/false/1/0."""
    raw = request.query_params.get(name, "false").strip().lower()
    if raw not in ("true", "1", "yes", "false", "0", "no"):
        raise ApiError(400, "bad_request", f"{name}={raw[:40]!r} is not true or false")
    return raw in ("true", "1", "yes")


def csv_wanted(request: Request) -> bool:
    """Whether the caller asked for CSV (?format=csv) instead of JSON; 400 for a format the API does not have."""
    wanted = request.query_params.get("format", "json").lower()
    if wanted not in ("json", "csv"):
        raise ApiError(400, "bad_request", f"format={wanted[:40]!r} is not json or csv")
    return wanted == "csv"


def csv_answer(text: str, name: str) -> Response:
    """CSV text as a download named `name`."""
    return Response(text, 200, {"Content-Disposition": f'attachment; filename="{name}"'}, media_type="text/csv")

"""A JSON endpoint for every verb of the CLI (`python -m engine`), with its shapes, limits and messages.

Reads are open wherever the dashboard is; writes need `Authorization: Bearer <LAB_API_TOKEN>` (api/http.py). A
write answers what the CLI prints for it (a run with its steps, the failure modes, the stream's status, ...);
nothing waits for a run to rest (the CLI's --wait): poll GET /api/runs/{run} until its status is a resting one.
The operator's `reset` and the `worker` process stay with the CLI. The token holder acts like the CLI's user: no
visitor pacing or operator key (the demo's cap on active runs still applies).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import webhook
from api.http import (
    FLAG,
    NUMBER,
    TEXT,
    WHOLE,
    answer,
    call,
    csv_answer,
    csv_wanted,
    endpoint,
    fields,
    lab,
    parse_object,
    query_flag,
    query_int,
    read_body,
)
from engine import Run
from engine.output import runs_csv

RUN = "{run}"  # a run id, or "latest" for the newest run (the CLI's `status` without RUN)


async def runs(request: Request) -> Response:
    """`runs [--limit N] [--csv]`: run history, newest first."""
    rows = await call(lab().runs, query_int(request, "limit", 50))
    return csv_answer(runs_csv(rows), "runs.csv") if csv_wanted(request) else answer(rows)


async def status(request: Request) -> Response:
    """`status [RUN]`: a run with its steps, outputs and timings."""
    return answer(await call(_run, request.path_params["run"]))


def _run(run: str) -> Run:
    shared = lab()
    if run == "latest":
        newest = shared.runs(1)
        if not newest:
            from engine.errors import NotFound
            raise NotFound("there are no runs yet: start one with python -m engine commit")
        run = newest[0].id
    return shared.run(run)


def _started(run_id: int, status: int = 202) -> Response:
    return answer(lab().run(run_id), status, {"Location": f"/api/runs/{run_id}"})


async def commit(request: Request) -> Response:
    """`commit [--sha SHA] [--message TEXT] [--author NAME] [--seed N] [--window W]`: start CI (202, the run)."""
    body = await fields(request, {"sha": TEXT, "message": TEXT, "author": TEXT, "seed": WHOLE, "window": TEXT})

    def act() -> Response:
        run_id = lab().commit(body["sha"], body["message"] or "", body["seed"], body["window"], body["author"] or "",
                              trigger="api")
        return _started(run_id)
    return await call(act)


async def continue_run(request: Request) -> Response:
    """`continue RUN`: start CD for a run in ci_complete (202, the run)."""
    body = await fields(request, {"by": TEXT})
    run = request.path_params["run"]

    def act() -> Response:
        lab().continue_run(run, by=body["by"] or "api")
        return _started(run)
    return await call(act)


async def approve(request: Request) -> Response:
    """`approve RUN --by NAME [--comment TEXT]`: pass the manual gate (202, the run)."""
    return await _decide(request, approved=True)


async def reject(request: Request) -> Response:
    """`reject RUN --by NAME [--comment TEXT]`: stop at the manual gate (200, the run)."""
    return await _decide(request, approved=False)


async def _decide(request: Request, approved: bool) -> Response:
    body = await fields(request, {"by": TEXT, "comment": TEXT})
    run = request.path_params["run"]

    def act() -> Response:
        (lab().approve if approved else lab().reject)(run, body["by"] or "", body["comment"] or "")
        return _started(run, 202 if approved else 200)
    return await call(act)


async def retry(request: Request) -> Response:
    """`retry RUN [--from STEP]`: re-run a failed, held or interrupted run (202, the run)."""
    body = await fields(request, {"from": TEXT, "by": TEXT})
    run = request.path_params["run"]

    def act() -> Response:
        lab().retry(run, body["from"], by=body["by"] or "api")
        return _started(run)
    return await call(act)


async def rollback(request: Request) -> Response:
    """`rollback --by NAME [--reason TEXT]`: champion back to the previous version."""
    body = await fields(request, {"by": TEXT, "reason": TEXT})
    return answer(await call(lab().rollback, body["by"] or "", body["reason"] or ""))


async def failure_modes(request: Request) -> Response:
    """`failures`: every failure mode and whether it is on."""
    return answer(await call(lab().failure_modes))


async def set_failure_mode(request: Request) -> Response:
    """`failures MODE on|off`: body {"enabled": true|false}; answers every mode."""
    body = await fields(request, {"enabled": FLAG, "by": TEXT}, required=("enabled",))

    def act() -> Response:
        lab().set_failure_mode(request.path_params["mode"], body["enabled"], body["by"] or "api")
        return answer(lab().failure_modes())
    return await call(act)


async def stream_status(request: Request) -> Response:
    """`stream status`: state, versions, counts and the latest snapshot."""
    return answer(await call(lab().stream.status))


async def stream_start(request: Request) -> Response:
    """`stream start [--rate N] [--scenario NAME] [--ramp N] [--label-delay N]`: turn the stream on."""
    body = await fields(request, {"rate": NUMBER, "scenario": TEXT, "ramp": WHOLE, "label_delay": WHOLE, "by": TEXT})

    def act() -> Response:
        lab().stream.start(body["rate"], body["scenario"], body["ramp"], body["label_delay"], by=body["by"] or "api")
        return answer(lab().stream.status())
    return await call(act)


async def stream_stop(request: Request) -> Response:
    """`stream stop`: turn the stream off (claims and snapshots stay)."""
    body = await fields(request, {"by": TEXT})

    def act() -> Response:
        lab().stream.stop(by=body["by"] or "api")
        return answer(lab().stream.status())
    return await call(act)


async def closed_loop(request: Request) -> Response:
    """`stream closed-loop on|off`: body {"enabled": true|false}; drift-triggered retraining."""
    body = await fields(request, {"enabled": FLAG, "by": TEXT}, required=("enabled",))

    def act() -> Response:
        lab().stream.set_closed_loop(body["enabled"], by=body["by"] or "api")
        return answer(lab().stream.status())
    return await call(act)


async def snapshots(request: Request) -> Response:
    """`stream snapshots [--limit N] [--csv]`: drift snapshots, newest first."""
    limit, csv = query_int(request, "limit", 200), csv_wanted(request)

    def read() -> Response:
        from engine.stream import snapshot_rows  # pandas comes with it: only this endpoint pays
        rows = snapshot_rows(lab().stream.snapshots(limit))
        if csv:
            return csv_answer(runs_csv(rows, fields=list(rows[0]) if rows else ["id"]), "snapshots.csv")
        return answer(rows)
    return await call(read)


async def score(request: Request) -> Response:
    """`score --claim JSON [--explain]`: the champion's decision for the claim in the body (?explain=true: its
    SHAP contributions). Open like the dashboard's form: it changes nothing."""
    explain = query_flag(request, "explain")
    claim = parse_object(await read_body(request), "the claim")
    return answer(await call(lab().score, claim, explain=explain))


async def workers(request: Request) -> Response:
    """`workers`: registered runners and whether each is alive."""
    return answer(await call(lab().workers))


async def index(request: Request) -> Response:
    """Every endpoint: method, path, whether it needs the token, and the CLI verb it answers for."""
    return answer({"endpoints": [
        {"method": method, "path": "/api" + path, "write": write, "does": (fn.__doc__ or "").split("\n")[0]}
        for path, fn, method, write in ENDPOINTS]})


ENDPOINTS = [  # (path, handler, method, needs the token)
    ("/", index, "GET", False),
    ("/runs", runs, "GET", False),
    ("/runs", commit, "POST", True),
    (f"/runs/{RUN}", status, "GET", False),
    (f"/runs/{RUN}/continue", continue_run, "POST", True),
    (f"/runs/{RUN}/approve", approve, "POST", True),
    (f"/runs/{RUN}/reject", reject, "POST", True),
    (f"/runs/{RUN}/retry", retry, "POST", True),
    ("/rollback", rollback, "POST", True),
    ("/failures", failure_modes, "GET", False),
    ("/failures/{mode}", set_failure_mode, "PUT", True),
    ("/stream", stream_status, "GET", False),
    ("/stream/start", stream_start, "POST", True),
    ("/stream/stop", stream_stop, "POST", True),
    ("/stream/closed-loop", closed_loop, "PUT", True),
    ("/stream/snapshots", snapshots, "GET", False),
    ("/score", score, "POST", False),
    ("/workers", workers, "GET", False),
    ("/hooks/github", webhook.github, "POST", False),  # signed by GitHub instead (api/webhook.py)
]

ROUTES = [Route(path, endpoint(fn, write), methods=[method]) for path, fn, method, write in ENDPOINTS]
"""The API's routes, relative to where api/__init__.py mounts them (/api)."""

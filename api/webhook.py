"""GitHub's push webhook (POST /api/hooks/github): a push to a watched branch starts a lab run for its head commit.

In order, before anything else is read or written:
1. no LAB_WEBHOOK_SECRET: 404 (the webhook is off);
2. the body, at most api.http.MAX_BODY bytes (413 past it);
3. `X-Hub-Signature-256` must be HMAC-SHA256(secret, raw body), compared in constant time (401 otherwise);
4. the event: `ping` 200, `push` below, anything else 204.
A push to a branch in LAB_WEBHOOK_BRANCHES (default: the repository's default branch) commits a run with the
head commit's SHA, message and author, its origin (repository, branch, commit link) recorded with it, and
answers 202 with the run and its dashboard link. Each delivery is stored with the run it started
(store.webhook_deliveries), so a redelivery (same X-GitHub-Delivery) or the same signed payload sent again answers
200 with that run instead of starting another, after a restart too. GitHub signs the body, not the delivery
header, so the payload's digest is what stops a captured request from being replayed under a new delivery id.
The demo's cap and pacing apply (the caller's address is the visitor): a refusal answers 429 saying why.
"""
from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from api.http import ApiError, answer, call, lab, parse_object, read_body
from engine.config import LIMITS
from engine.guard import address_visitor

SIGNATURE = "X-Hub-Signature-256"
EVENT = "X-GitHub-Event"
DELIVERY = "X-GitHub-Delivery"
MAX_DELIVERY_ID = 80       # GitHub's are GUIDs (36 characters); the store's column
MAX_DETAIL_CHARS = 300     # each text the run's origin keeps (repository, branch, links, pusher)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def signature(secret: str, body: bytes) -> str:
    """GitHub's X-Hub-Signature-256 for `body`: "sha256=" + HMAC-SHA256(secret, body) in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body` under `secret` (constant time; False when absent)."""
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode("utf-8", "replace"))


@dataclass(frozen=True)
class Push:
    """What a push delivery starts a run with."""

    sha: str
    message: str
    author: str
    origin: dict  # repository, branch, commit_url, compare, pusher: what the dashboard shows as the run's origin


def read_push(payload: dict, branches: tuple[str, ...]) -> Push | str:
    """The run a push payload asks for, or the reason it asks for none (another branch, a tag, a deletion)."""
    repo = payload.get("repository") if isinstance(payload.get("repository"), dict) else {}
    ref = payload.get("ref") if isinstance(payload.get("ref"), str) else ""
    if not ref.startswith("refs/heads/"):
        return f"{ref or 'the ref'} is not a branch; only branch pushes start runs"
    branch = ref.removeprefix("refs/heads/")
    watched = branches or tuple(b for b in [repo.get("default_branch")] if isinstance(b, str))
    if not any(fnmatch.fnmatchcase(branch, pattern) for pattern in watched):
        return (f"branch {branch[:MAX_DETAIL_CHARS]} is not watched (LAB_WEBHOOK_BRANCHES: "
                f"{', '.join(branches) if branches else 'the default branch, ' + (', '.join(watched) or 'unknown')})")
    head = payload.get("head_commit")
    if payload.get("deleted") or not isinstance(head, dict):
        return f"the push deleted branch {branch} or carries no head commit; nothing to build"
    author = head.get("author") if isinstance(head.get("author"), dict) else {}
    pusher = payload.get("pusher") if isinstance(payload.get("pusher"), dict) else {}
    origin = {"repository": _text(repo.get("full_name")), "branch": _text(branch),
              "commit_url": _link(head.get("url")), "repository_url": _link(repo.get("html_url")),
              "compare": _link(payload.get("compare")), "pusher": _text(pusher.get("name"))}
    return Push(sha=head.get("id") if isinstance(head.get("id"), str) else "",
                message=_text(head.get("message"), LIMITS["message"], multiline=True),
                author=_text(author.get("name") or author.get("username"), LIMITS["author"]),
                origin={k: v for k, v in origin.items() if v})


def _text(value, limit: int = MAX_DETAIL_CHARS, multiline: bool = False) -> str:
    """`value` as text the lab accepts: control characters dropped, one line unless `multiline`, cut to `limit`
    (a commit's message is what it is: cut, never refused)."""
    if not isinstance(value, str):
        return ""
    value = _CONTROL.sub("", value)
    if not multiline:
        value = " ".join(value.split())
    return value.strip()[:limit]


def _link(value) -> str:
    """An http(s) link, or "" (a payload's URL ends up as a link on the dashboard)."""
    text = _text(value)
    return text if text.startswith(("https://", "http://")) and " " not in text else ""


async def github(request: Request) -> Response:
    """GitHub's push webhook: ping 200, a watched push 202 (a redelivery 200), any other event 204."""
    secret = (await call(lab)).settings.webhook_secret
    if not secret:
        raise ApiError(404, "not_found", "no webhook here: this lab's GitHub webhook is off (LAB_WEBHOOK_SECRET is "
                                         "not set)")
    body = await read_body(request)
    if not request.headers.get(SIGNATURE):
        raise ApiError(401, "unsigned", f"the delivery has no {SIGNATURE} header: give the webhook the secret in "
                                        "LAB_WEBHOOK_SECRET (GitHub: Settings, Webhooks, Secret)")
    if not verify(secret, body, request.headers.get(SIGNATURE)):
        raise ApiError(401, "bad_signature", f"{SIGNATURE} does not match the body: the webhook's secret is not "
                                             "this lab's LAB_WEBHOOK_SECRET, or the body was changed on the way")
    event = request.headers.get(EVENT, "")
    if not event:
        raise ApiError(400, "bad_request", f"the {EVENT} header is missing: this is not a GitHub delivery")
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ApiError(415, "unsupported", "the webhook sends form data: set its content type to application/json")
    if event == "ping":  # GitHub's hello when a hook is made: the signature checked out, so the secret matches
        return answer({"ok": True, "event": "ping", "hook_id": request.headers.get("X-GitHub-Hook-ID")})
    if event != "push":
        return Response(status_code=204)  # GitHub sends what the hook subscribes to; only pushes start runs
    return await _push(request, body)


async def _push(request: Request, body: bytes) -> Response:
    delivery = request.headers.get(DELIVERY, "").strip()
    if not 0 < len(delivery) <= MAX_DELIVERY_ID:
        raise ApiError(400, "bad_request", f"the {DELIVERY} header is missing or longer than {MAX_DELIVERY_ID} "
                                           "characters: this is not a GitHub delivery")
    shared = await call(lab)
    push = read_push(parse_object(body, "the push"), shared.settings.webhook_branches)
    if isinstance(push, str):
        return answer({"ignored": push})
    digest = hashlib.sha256(body).hexdigest()
    visitor = address_visitor(request.client.host) if request.client else None
    run_id, new = await call(start, shared, push, delivery, digest, visitor)
    run = await call(shared.run, run_id)
    link = f"{str(request.base_url).rstrip('/')}/?run={run_id}"
    return answer({"run": run_id, "status": run.status.value, "sha": run.sha, "url": link,
                   "api": f"/api/runs/{run_id}", "redelivery": not new, **push.origin},
                  202 if new else 200, {"Location": f"/api/runs/{run_id}"})


def start(shared, push: Push, delivery: str, digest: str, visitor: str | None) -> tuple[int, bool]:
    """(run id, whether it is new): the run this delivery (or its payload) started before, else a new one."""
    known = shared.lab.delivered(delivery, digest)
    if known is not None:
        return known, False
    try:
        return shared.commit(push.sha, push.message, author=push.author, trigger="webhook",
                             detail={**push.origin, "delivery": delivery}, visitor=visitor,
                             delivery=(delivery, digest)), True
    except sa.exc.IntegrityError:  # the same delivery, arriving twice at once: the other one started the run
        known = shared.lab.delivered(delivery, digest)
        if known is None:
            raise
        return known, False

"""GitHub's push webhook (api/webhook.py), over HTTP to a real `streamlit run app.py` server.

Expectations come from GitHub's documentation: its test pair for the signature, the shape of a push delivery
(tests/api/push_payload.json), redeliveries that carry the same X-GitHub-Delivery. Every refusal is checked to
have started nothing: the runs the server lists are the same before and after.
"""
from __future__ import annotations

import json

import pytest

from api.webhook import Push, read_push, signature, verify
from tests.api.conftest import PUSH, SECRET, call, call_chunked, server
from tests.conftest import make_settings, serving

GITHUB_EXAMPLE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"  # GitHub's docs
HEAD = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
HOOK = "/api/hooks/github"


def delivery(body: bytes, event: str = "push", delivery_id: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
             secret: str = SECRET, sign: bool = True) -> dict:
    """The headers GitHub sends with `body`."""
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id, "User-Agent": "GitHub-Hookshot/5e0c6c3"}
    if sign:
        headers["X-Hub-Signature-256"] = signature(secret, body)
    return headers


def push_body(**changes) -> bytes:
    """The recorded push with top-level fields changed (a new head commit: head={...})."""
    payload = json.loads(PUSH)
    if "head" in changes:
        payload["head_commit"] = {**payload["head_commit"], **changes.pop("head")}
    payload.update(changes)
    return json.dumps(payload).encode()


# ---- the signature and the payload, as functions ---------------------------------------------------------------
def test_the_signature_is_githubs_for_its_documented_test_pair():
    assert signature(SECRET, b"Hello, World!") == GITHUB_EXAMPLE
    assert verify(SECRET, b"Hello, World!", GITHUB_EXAMPLE)
    assert verify(SECRET, b"Hello, World!", GITHUB_EXAMPLE + "\n")  # header whitespace is not part of it
    assert not verify(SECRET, b"Hello, World?", GITHUB_EXAMPLE)
    assert not verify("It's a secret to everybody", b"Hello, World!", GITHUB_EXAMPLE)
    assert not verify(SECRET, b"Hello, World!", GITHUB_EXAMPLE.replace("sha256=", "sha1="))
    assert not verify(SECRET, b"Hello, World!", None) and not verify("", b"Hello, World!", GITHUB_EXAMPLE)


def test_a_recorded_push_becomes_its_head_commit_with_where_it_came_from():
    push = read_push(json.loads(PUSH), ())
    assert push == Push(
        sha=HEAD, author="Dana Ortiz",
        message="Tune the forest: depth 15, 100 trees\n\nThe cost-based threshold moves with it; see the gate margins.",
        origin={"repository": "octo-org/claims-model", "branch": "main",
                "commit_url": f"https://github.com/octo-org/claims-model/commit/{HEAD}",
                "repository_url": "https://github.com/octo-org/claims-model",
                "compare": "https://github.com/octo-org/claims-model/compare/9049f1265b7d...0d1a26e67d8f",
                "pusher": "dana-ml"})


@pytest.mark.parametrize("changes, branches, starts", [
    ({}, (), True),                                                 # the default branch, by default
    ({"ref": "refs/heads/feature/x"}, (), False),
    ({"ref": "refs/heads/feature/x"}, ("main", "feature/*"), True),  # LAB_WEBHOOK_BRANCHES, globs allowed
    ({"ref": "refs/heads/main"}, ("release",), False),              # set, it replaces the default branch
    ({"ref": "refs/tags/v1.0"}, ("*",), False),                     # a tag is not a branch
    ({"deleted": True, "head_commit": None}, (), False),            # a deleted branch has nothing to build
], ids=["default-branch", "other-branch", "listed-glob", "not-listed", "tag", "deleted"])
def test_which_pushes_start_a_run(changes, branches, starts):
    got = read_push({**json.loads(PUSH), **changes}, branches)
    assert isinstance(got, Push) == starts, got


def test_a_commit_message_is_cut_to_the_limit_and_made_plain_not_refused():
    got = read_push(json.loads(push_body(head={"message": "fix\x07 it" + "!" * 3000,
                                              "author": {"name": "Eve\nMallory", "username": "eve"},
                                              "url": "javascript:alert(1)"})), ())
    assert got.message.startswith("fix it!") and len(got.message) == 2000 and got.author == "Eve Mallory"
    assert "commit_url" not in got.origin  # only http(s) links become links on the dashboard


# ---- over HTTP --------------------------------------------------------------------------------------------------
def test_ping_with_githubs_test_pair_answers_200(quiet_server):
    reply = call(quiet_server.url, "POST", HOOK, b"Hello, World!", delivery(b"Hello, World!", "ping"))
    assert (reply.status, reply.json()["ok"]) == (200, True)


def test_another_event_answers_204_and_starts_nothing(quiet_server):
    before = quiet_server.run_ids()
    reply = call(quiet_server.url, "POST", HOOK, b"Hello, World!", delivery(b"Hello, World!", "issues"))
    assert (reply.status, reply.body) == (204, b"")
    assert quiet_server.run_ids() == before


@pytest.mark.parametrize("make_headers, kind", [
    (lambda body: delivery(body, sign=False), "unsigned"),
    (lambda body: delivery(body, secret="another secret"), "bad_signature"),
    (lambda body: delivery(body + b" "), "bad_signature"),                        # the body changed on the way
    (lambda body: {**delivery(body), "X-Hub-Signature-256": "sha1=" + signature(SECRET, body)[7:]}, "bad_signature"),
], ids=["missing", "wrong-secret", "body-changed", "sha1-prefix"])
def test_a_missing_or_wrong_signature_is_refused_and_starts_nothing(quiet_server, make_headers, kind):
    before = quiet_server.run_ids()
    reply = call(quiet_server.url, "POST", HOOK, PUSH, make_headers(PUSH))
    assert (reply.status, reply.json()["error"]) == (401, kind), reply.body
    assert "LAB_WEBHOOK_SECRET" in reply.json()["message"]
    assert quiet_server.run_ids() == before


@pytest.fixture(scope="module")
def pushed(quiet_server) -> dict:
    """The recorded push, delivered once: the webhook's answer."""
    reply = call(quiet_server.url, "POST", HOOK, PUSH, delivery(PUSH, delivery_id="push-recorded-1"))
    assert reply.status == 202, reply.body
    assert reply.headers["location"] == f"/api/runs/{reply.json()['run']}"
    return reply.json()


def test_a_push_starts_a_run_of_its_head_commit_and_links_it(quiet_server, pushed):
    run = call(quiet_server.url, "GET", f"/api/runs/{pushed['run']}").json()
    assert (run["sha"], run["author"], run["status"], run["trigger"]) == (HEAD, "Dana Ortiz", "queued", "webhook")
    assert run["message"].startswith("Tune the forest: depth 15, 100 trees\n\n")
    assert run["origin"]["repository"] == "octo-org/claims-model" and run["origin"]["delivery"] == "push-recorded-1"
    assert run["origin"]["commit_url"] == f"https://github.com/octo-org/claims-model/commit/{HEAD}"
    assert pushed["url"] == f"{quiet_server.url.rstrip('/')}/?run={run['id']}"  # the dashboard opens on it
    assert (pushed["repository"], pushed["branch"], pushed["redelivery"]) == ("octo-org/claims-model", "main", False)


def test_a_redelivery_returns_the_same_run_even_from_another_server(quiet_server, pushed, tmp_path):
    before = quiet_server.run_ids()
    again = call(quiet_server.url, "POST", HOOK, PUSH, delivery(PUSH, delivery_id="push-recorded-1"))
    assert (again.status, again.json()["run"], again.json()["redelivery"]) == (200, pushed["run"], True)
    # A restarted server (here: a second one over the same lab) knows it too: the delivery is in the store.
    with serving(quiet_server.env, tmp_path / "second.log") as second:
        later = call(second, "POST", HOOK, PUSH, delivery(PUSH, delivery_id="push-recorded-1"))
    assert (later.status, later.json()["run"]) == (200, pushed["run"])
    assert quiet_server.run_ids() == before


def test_a_replayed_payload_under_a_new_delivery_id_returns_the_same_run(quiet_server, pushed):
    before = quiet_server.run_ids()
    replay = call(quiet_server.url, "POST", HOOK, PUSH, delivery(PUSH, delivery_id="replayed-with-a-fresh-id"))
    assert (replay.status, replay.json()["run"], replay.json()["redelivery"]) == (200, pushed["run"], True)
    assert quiet_server.run_ids() == before


@pytest.mark.parametrize("changes", [{"ref": "refs/heads/feature/x"}, {"ref": "refs/tags/v1.0"}],
                         ids=["other-branch", "tag"])
def test_a_push_to_an_unwatched_ref_is_ignored_saying_why(quiet_server, changes):
    before, body = quiet_server.run_ids(), push_body(**changes)
    reply = call(quiet_server.url, "POST", HOOK, body, delivery(body, delivery_id=f"ignored-{changes['ref']}"))
    assert reply.status == 200 and changes["ref"].rsplit("/", 1)[-1] in reply.json()["ignored"], reply.body
    assert quiet_server.run_ids() == before


def test_a_signed_push_nested_too_deeply_is_refused_400_and_starts_nothing(quiet_server):
    before, body = quiet_server.run_ids(), b"[" * 100_000
    reply = call(quiet_server.url, "POST", HOOK, body, delivery(body, delivery_id="nested-too-deeply"))
    assert (reply.status, reply.json()["error"]) == (400, "bad_request"), reply.body  # it was a 500
    assert reply.json()["message"].startswith("the push is nested too deeply to read")
    assert quiet_server.run_ids() == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_is_refused_413(quiet_server, chunked):
    before = quiet_server.run_ids()
    body = push_body(padding="x" * (1 << 20))  # signed correctly: the size alone refuses it
    if chunked:
        assert call_chunked(quiet_server.url, HOOK, body, delivery(body)) == 413
    else:
        reply = call(quiet_server.url, "POST", HOOK, body, delivery(body))
        assert (reply.status, reply.json()["error"]) == (413, "too_large")
    assert quiet_server.run_ids() == before


# ---- the public demo's limits ----------------------------------------------------------------------------------
def test_the_demos_cap_and_pacing_apply_to_the_webhook(tmp_path, mlflow_template):
    token = "demo-token-0123456789"
    settings = make_settings(tmp_path, None, mlflow_template)
    other = push_body(head={"id": "1" * 40, "message": "second push"}, after="1" * 40)
    with server(settings, tmp_path / "streamlit.log", LAB_DEMO="1", LAB_DEMO_MAX_ACTIVE_RUNS="2",
                LAB_WEBHOOK_SECRET=SECRET, LAB_API_TOKEN=token) as demo:
        base = demo.url
        first = call(base, "POST", HOOK, PUSH, delivery(PUSH, delivery_id="demo-1"))
        assert first.status == 202, first.body
        paced = call(base, "POST", HOOK, other, delivery(other, delivery_id="demo-2"))
        assert (paced.status, paced.json()["error"]) == (429, "limited"), paced.body
        assert "one commit every 30 s per visitor" in paced.json()["message"]
        again = call(base, "POST", HOOK, PUSH, delivery(PUSH, delivery_id="demo-1"))  # a redelivery is not paced
        assert (again.status, again.json()["run"]) == (200, first.json()["run"])
        # The token holder is not a visitor (like the CLI's user), but the cap on active runs holds for everyone.
        assert call(base, "POST", "/api/runs", {"message": "operator"}, token=token).status == 202
        capped = call(base, "POST", "/api/runs", {"message": "one too many"}, token=token)
        assert (capped.status, capped.json()["error"]) == (429, "limited")
        assert "at most 2 queued or running pipeline runs" in capped.json()["message"]
        assert len(demo.run_ids()) == 2

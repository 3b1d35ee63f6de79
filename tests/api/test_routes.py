"""The JSON API (api/routes.py) over HTTP to a real `streamlit run app.py` server, against the CLI: for every verb
the API answers what `python -m engine` prints (same JSON, same messages), and refuses what it refuses.

The server (one for the module) runs a copy of the awaiting lifecycle (tests/conftest.py): runs 1 and 2 promoted
(versions 1 and 2), champion rolled back to 1, run 3 failed in data_validation, run 4 waiting at the manual gate
with version 3. Its embedded worker runs what the API starts. A refusal is checked to change nothing: the store,
read in this process, is the same before and after.
"""
from __future__ import annotations

import json

import pytest

from tests.api.conftest import call, server
from tests.conftest import copy_store, engine_cli, store_settings, wait_until

TOKEN = "test-api-token-6f1c2b9a4d"
RESTING = {"ci_complete", "awaiting_approval", "promoted", "failed", "rejected", "held", "interrupted"}
CLAIM = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Cardiovascular",
         "billed_amount": 1200, "allowed_amount": 900, "patient_age": 54}
OLD_CLAIM = {**CLAIM, "patient_age": 300}


@pytest.fixture(scope="module")
def lab_server(awaiting_lifecycle, tmp_path_factory):
    """The server of this module: token set, webhook off (no secret), a worker."""
    data = copy_store(awaiting_lifecycle, tmp_path_factory.mktemp("routes") / "lab")
    with server(store_settings(awaiting_lifecycle, data), data / "streamlit.log", LAB_APP_WORKER="1",
                LAB_API_TOKEN=TOKEN) as up:
        yield up


def state(up) -> dict:
    """What a refused action must leave as it was: runs with steps, audit, failure modes, champion line."""
    lab = up.lab
    return {"runs": [lab.run(r) for r in up.run_ids()], "audit": lab.audit(10_000),
            "modes": lab.failure_modes(), "champions": lab.champion_history()}


def api(up, method: str, path: str, body=None, token: str | None = TOKEN):
    return call(up.url, method, path, body, token=token if method != "GET" else None)


def cli(up, *args: str):
    """`python -m engine ARGS` over the server's lab: (exit code, stdout, the CLI's own stderr lines)."""
    proc = engine_cli(up.env, *args)
    own = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error: ", "refused: ", "failed: "))]
    return proc.returncode, proc.stdout, own


# ---- st.App: what the API relies on ----------------------------------------------------------------------------
def test_the_api_answers_beside_the_pages_and_the_health_check(lab_server):
    health = call(lab_server.url, "GET", "/_stcore/health")
    assert (health.status, health.body) == (200, b"ok")
    page = call(lab_server.url, "GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    index = call(lab_server.url, "GET", "/api/")
    assert index.status == 200 and index.headers["content-type"] == "application/json"
    listed = {(e["method"], e["path"]) for e in index.json()["endpoints"]}
    assert {("POST", "/api/runs"), ("GET", "/api/runs/{run}"), ("POST", "/api/runs/{run}/approve"),
            ("PUT", "/api/failures/{mode}"), ("POST", "/api/score"), ("POST", "/api/hooks/github")} <= listed
    unknown, wrong = call(lab_server.url, "GET", "/api/nothing"), call(lab_server.url, "DELETE", "/api/runs")
    assert (unknown.status, unknown.json()["error"]) == (404, "not_found")
    assert (wrong.status, wrong.json()["error"]) == (405, "method_not_allowed")


def test_the_webhook_is_off_without_a_secret(lab_server):
    reply = call(lab_server.url, "POST", "/api/hooks/github", b"{}", {"X-GitHub-Event": "push"})
    assert (reply.status, reply.json()["error"]) == (404, "not_found") and "LAB_WEBHOOK_SECRET" in reply.body.decode()


# ---- reads: the CLI's JSON ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, args", [
    ("/api/runs?limit=3", ["runs", "--limit", "3"]),
    ("/api/runs/2", ["status", "2"]),
    ("/api/runs/latest", ["status"]),
    ("/api/failures", ["failures"]),
    ("/api/stream/snapshots?limit=5", ["stream", "snapshots", "--limit", "5"]),
], ids=["runs", "status", "status-latest", "failures", "snapshots"])
def test_a_read_answers_the_clis_json(lab_server, path, args):
    code, stdout, _ = cli(lab_server, *args)
    reply = api(lab_server, "GET", path)
    assert (reply.status, code) == (200, 0)
    assert reply.json() == json.loads(stdout) and reply.json()  # something, and the same thing


@pytest.mark.parametrize("path, args", [
    ("/api/runs?format=csv", ["runs", "--csv"]),
    ("/api/stream/snapshots?format=csv&limit=5", ["stream", "snapshots", "--csv", "--limit", "5"]),
], ids=["runs", "snapshots"])
def test_a_csv_read_answers_the_clis_csv(lab_server, path, args):
    code, stdout, _ = cli(lab_server, *args)
    reply = api(lab_server, "GET", path)
    assert (reply.status, code, reply.headers["content-type"].split(";")[0]) == (200, 0, "text/csv")
    assert reply.body.decode() == stdout and stdout.count("\n") > 1


def test_stream_status_and_workers_answer(lab_server):
    code, stdout, _ = cli(lab_server, "stream", "status")
    mine, theirs = api(lab_server, "GET", "/api/stream").json(), json.loads(stdout)
    assert {k: v for k, v in mine.items() if k != "producer"} == {k: v for k, v in theirs.items() if k != "producer"}
    assert mine["enabled"] is False and mine["latest_snapshot"]["id"] > 0
    assert wait_until(lambda: any(w["alive"] for w in api(lab_server, "GET", "/api/workers").json()),
                      what="the server's worker to heartbeat")


@pytest.mark.parametrize("path, args, status", [
    ("/api/runs?limit=0", ["runs", "--limit", "0"], 422),
    ("/api/runs/999", ["status", "999"], 404),
    ("/api/stream/snapshots?limit=0", ["stream", "snapshots", "--limit", "0"], 422),
    ("/api/runs/%D9%A1", ["status", "١"], 422),  # an Arabic-Indic one is not run 1
], ids=["runs-limit", "no-such-run", "snapshots-limit", "arabic-indic-digit"])
def test_a_refused_read_says_what_the_cli_says(lab_server, path, args, status):
    code, _, said = cli(lab_server, *args)
    reply = api(lab_server, "GET", path)
    assert (reply.status, code) == (status, 2)
    assert [reply.json()["message"]] == said


@pytest.mark.parametrize("path", ["/api/runs/abc", "/api/runs?limit=many", "/api/runs?format=xml"])
def test_a_malformed_read_is_refused_saying_why(lab_server, path):
    reply = api(lab_server, "GET", path)
    assert reply.status in (400, 422) and reply.json()["message"], reply.body


# ---- writes: the token ------------------------------------------------------------------------------------------
WRITES = [("POST", "/api/runs", {}), ("POST", "/api/runs/4/continue", {}),
          ("POST", "/api/runs/4/approve", {"by": "mallory"}), ("POST", "/api/runs/4/reject", {"by": "mallory"}),
          ("POST", "/api/runs/3/retry", {}), ("POST", "/api/rollback", {"by": "mallory"}),
          ("PUT", "/api/failures/schema_validation", {"enabled": True}), ("POST", "/api/stream/start", {}),
          ("POST", "/api/stream/stop", {}), ("PUT", "/api/stream/closed-loop", {"enabled": True})]


@pytest.mark.parametrize("method, path, body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_write_without_the_token_or_with_a_wrong_one_changes_nothing(lab_server, method, path, body):
    before = state(lab_server)
    for token in (None, "test-api-token-6f1c2b9a4e", ""):
        reply = api(lab_server, method, path, body, token=token)
        assert (reply.status, reply.json()["error"]) == (401, "unauthorized"), (token, reply.body)
        assert reply.headers["www-authenticate"].startswith("Bearer")
    basic = call(lab_server.url, method, path, body, {"Authorization": f"Basic {TOKEN}"})
    assert basic.status == 401
    assert state(lab_server) == before


def test_a_server_without_a_token_takes_no_writes_and_says_how_to_enable_them(quiet_server):
    before = quiet_server.run_ids()
    reply = call(quiet_server.url, "POST", "/api/runs", {"message": "hello"}, token="anything")
    assert (reply.status, reply.json()["error"]) == (403, "writes_disabled")
    assert "set LAB_API_TOKEN" in reply.json()["message"]
    assert quiet_server.run_ids() == before


# ---- writes: refusals, as the CLI refuses them -----------------------------------------------------------------
@pytest.mark.parametrize("method, path, body, args, status", [
    ("POST", "/api/runs", {"sha": "xyz"}, ["commit", "--sha", "xyz"], 422),
    ("POST", "/api/runs", {"message": "x" * 2001}, ["commit", "--message", "x" * 2001], 422),
    ("POST", "/api/runs/4/continue", {}, ["continue", "4"], 409),
    ("POST", "/api/runs/999/continue", {}, ["continue", "999"], 404),
    ("POST", "/api/runs/2/approve", {"by": "dana"}, ["approve", "2", "--by", "dana"], 409),
    ("POST", "/api/runs/4/approve", {}, ["approve", "4", "--by", ""], 422),
    ("POST", "/api/runs/1/reject", {"by": "dana"}, ["reject", "1", "--by", "dana"], 409),
    ("POST", "/api/runs/2/retry", {}, ["retry", "2"], 409),
    ("POST", "/api/runs/3/retry", {"from": "nosuch"}, ["retry", "3", "--from", "nosuch"], 422),
    ("POST", "/api/rollback", {"by": "dana"}, ["rollback", "--by", "dana"], 409),
    ("PUT", "/api/failures/nosuch", {"enabled": True}, ["failures", "nosuch", "on"], 422),
    ("POST", "/api/stream/start", {"scenario": "nosuch"}, ["stream", "start", "--scenario", "nosuch"], 422),
    ("POST", "/api/score", OLD_CLAIM, ["score", "--claim", json.dumps(OLD_CLAIM)], 422),
    ("POST", "/api/score", {**CLAIM, "patient_age": 110.0000001},
     ["score", "--claim", json.dumps({**CLAIM, "patient_age": 110.0000001})], 422),
    ("POST", "/api/runs/3/retry", {"from": "s" * 50_000}, ["retry", "3", "--from", "s" * 50_000], 422),
], ids=["commit-sha", "commit-message", "continue-state", "continue-no-run", "approve-state", "approve-no-name",
        "reject-state", "retry-state", "retry-step", "rollback-one-champion", "failures-mode", "stream-scenario",
        "score-claim", "score-age-just-past", "retry-huge-step"])
def test_a_refused_write_says_what_the_cli_says_and_changes_nothing(lab_server, method, path, body, args, status):
    before = state(lab_server)
    reply = api(lab_server, method, path, body)
    code, _, said = cli(lab_server, *args)
    assert (reply.status, code) == (status, 2 if status in (404, 422) else 3), reply.body
    assert [reply.json()["message"]] == said
    assert state(lab_server) == before


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/runs", {"seed": "7"}),
    ("POST", "/api/runs", {"seed": True}),
    ("POST", "/api/runs", {"colour": "blue"}),
    ("POST", "/api/runs", b"{not json"),
    ("POST", "/api/runs", b"[1, 2]"),
    ("PUT", "/api/failures/schema_validation", {}),
    ("PUT", "/api/failures/schema_validation", {"enabled": "on"}),
    ("POST", "/api/stream/start", {"rate": "fast"}),
    ("POST", "/api/runs", b"[" * 100_000),
], ids=["seed-text", "seed-bool", "unknown-field", "not-json", "not-an-object", "enabled-missing", "enabled-text",
        "rate-text", "nested-too-deeply"])
def test_a_malformed_write_is_refused_400_naming_the_field(lab_server, method, path, body):
    before = state(lab_server)
    reply = api(lab_server, method, path, body)
    assert (reply.status, reply.json()["error"]) == (400, "bad_request"), reply.body
    assert state(lab_server) == before


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"cpt_bucket": ' * 20_000],
                         ids=["100k-open-lists", "20k-open-objects"])
def test_a_claim_nested_too_deeply_is_refused_400_saying_so(lab_server, body):
    reply = call(lab_server.url, "POST", "/api/score", body)  # it answered 500 (RecursionError)
    assert (reply.status, reply.json()["error"]) == (400, "bad_request"), reply.body
    assert reply.json()["message"].startswith("the claim is nested too deeply to read")


# ---- the lifecycle through the API alone --------------------------------------------------------------------------
def wait_resting(up, run_id: int, status: str) -> dict:
    """Poll the API until the run rests; assert it rests in `status`."""
    run = wait_until(lambda: (r := api(up, "GET", f"/api/runs/{run_id}").json())["status"] in RESTING and r,
                     what=f"run {run_id} to rest")
    assert run["status"] == status, [(s["name"], s["status"], s["error"]) for s in run["steps"]]
    return run


@pytest.fixture(scope="module")
def lifecycle(lab_server) -> dict:
    """Commit, continue and approve a run through the API alone, each time waiting for it to rest: the answers."""
    up, seen = lab_server, {}
    committed = api(up, "POST", "/api/runs", {"message": "api: retrain", "seed": 15, "author": "api-client"})
    assert committed.status == 202, committed.body
    run_id = seen["run"] = committed.json()["id"]
    assert committed.headers["location"] == f"/api/runs/{run_id}"
    seen["committed"] = committed.json()
    wait_resting(up, run_id, "ci_complete")
    seen["continued"] = api(up, "POST", f"/api/runs/{run_id}/continue", {}).json()
    wait_resting(up, run_id, "awaiting_approval")
    approved = api(up, "POST", f"/api/runs/{run_id}/approve", {"by": "dana", "comment": "margins ok"})
    assert approved.status == 202, approved.body
    seen["promoted"] = wait_resting(up, run_id, "promoted")
    return seen


def test_the_whole_lifecycle_through_the_api_alone_matches_the_clis_status(lab_server, lifecycle):
    run_id = lifecycle["run"]
    assert lifecycle["committed"]["status"] == "queued" and lifecycle["committed"]["trigger"] == "api"
    assert lifecycle["continued"]["status"] in ("queued", "running")
    code, stdout, _ = cli(lab_server, "status", str(run_id))
    assert code == 0 and lifecycle["promoted"] == json.loads(stdout)
    approval = next(s for s in lifecycle["promoted"]["steps"] if s["name"] == "manual_approval")
    assert (approval["outputs"]["by"], approval["outputs"]["comment"]) == ("dana", "margins ok")


def test_rollback_after_a_second_promotion(lab_server, lifecycle):
    version = next(s for s in lifecycle["promoted"]["steps"] if s["name"] == "promote_prod")["outputs"]["version"]
    reply = api(lab_server, "POST", "/api/rollback", {"by": "dana", "reason": "false denials up"})
    assert (reply.status, reply.json()) == (200, {"from_version": version, "to_version": 1,
                                                  "model": "claims-settlement-rf"})


def test_reject_stops_a_run_at_the_gate(lab_server):
    reply = api(lab_server, "POST", "/api/runs/4/reject", {"by": "dana", "comment": "too slow"})
    assert (reply.status, reply.json()["status"]) == (200, "rejected"), reply.body
    assert lab_server.lab.run(4).status == "rejected"


def test_failure_modes_turn_on_and_off(lab_server):
    on = api(lab_server, "PUT", "/api/failures/metric_regression", {"enabled": True})
    assert on.status == 200 and {m["name"]: m["enabled"] for m in on.json()}["metric_regression"] is True
    off = api(lab_server, "PUT", "/api/failures/metric_regression", {"enabled": False, "by": "dana"})
    assert off.status == 200 and not any(m["enabled"] for m in off.json())
    assert off.json() == api(lab_server, "GET", "/api/failures").json()


def test_retry_queues_a_failed_run_again(lab_server):
    reply = api(lab_server, "POST", "/api/runs/3/retry", {"by": "dana"})
    assert reply.status == 202 and reply.json()["status"] in ("queued", "running"), reply.body
    assert lab_server.lab.audit(1, run_id=3)[0].action == "retry"


def test_the_stream_starts_loops_and_stops(lab_server):
    started = api(lab_server, "POST", "/api/stream/start", {"rate": 5, "scenario": "inflation", "ramp": 0})
    assert started.status == 200 and (started.json()["enabled"], started.json()["rate"]) == (True, 5)
    looped = api(lab_server, "PUT", "/api/stream/closed-loop", {"enabled": True})
    assert (looped.status, looped.json()["closed_loop"]) == (200, True)
    api(lab_server, "PUT", "/api/stream/closed-loop", {"enabled": False})
    stopped = api(lab_server, "POST", "/api/stream/stop", {})
    assert stopped.status == 200 and (stopped.json()["enabled"], stopped.json()["closed_loop"]) == (False, False)


def test_a_huge_bad_value_is_quoted_cut_short(lab_server):
    reply = call(lab_server.url, "POST", "/api/score", {**CLAIM, "cpt_bucket": "S" * 600_000})
    message = reply.json()["message"]
    assert reply.status == 422 and len(message) < 2000, message[:300]
    assert message.startswith("error: cpt_bucket '" + "S" * 39 + "... (600,002 characters) is not a known category")


def test_score_answers_the_champions_decision_like_the_cli(lab_server):
    reply = call(lab_server.url, "POST", "/api/score?explain=true", CLAIM)  # open, like the dashboard's form
    code, stdout, _ = cli(lab_server, "score", "--claim", json.dumps(CLAIM), "--explain")
    assert (reply.status, code) == (200, 0), reply.body
    mine, theirs = reply.json(), json.loads(stdout)
    exact = ("model", "version", "threshold", "decision", "claim")  # two processes may sum floats in another order
    assert {k: mine[k] for k in exact} == {k: theirs[k] for k in exact} and mine["decision"] in ("Approved", "Denied")
    assert (mine["p_approved"], mine["base_value"]) == pytest.approx((theirs["p_approved"], theirs["base_value"]))
    assert [c["feature"] for c in mine["contributions"]] == [c["feature"] for c in theirs["contributions"]]
    assert [c["shap"] for c in mine["contributions"]] == pytest.approx([c["shap"] for c in theirs["contributions"]])
    # One per field of the claim, and the calibration CD fitted (the forest's SHAP values explain it uncalibrated).
    assert {c["feature"] for c in mine["contributions"]} == set(CLAIM) | {"calibration"}

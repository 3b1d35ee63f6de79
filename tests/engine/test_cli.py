"""`python -m engine` as a user runs it: JSON on stdout, messages on stderr, exit codes 0/1/2/3.

One SQLite lab serves the module: a healthy commit and a commit under training_error run once (fixtures); the
other commands are cheap and read or try to change those two runs. One healthy commit runs on PostgreSQL.
"""
from __future__ import annotations

import csv
import io
import json
import os
import socket

import pytest

from engine.__main__ import RUN_CSV_FIELDS, wait_for
from engine.config import MODEL_NAME
from engine.failures import MODES
from engine.store import Store
from engine.tracking import Tracking
from tests.conftest import cli_env, copy_store, engine_cli, make_settings, store_settings

SHA = "0123456789abcdef0123456789ABCDEF01234567"


@pytest.fixture(scope="module")
def env(tmp_path_factory, mlflow_template):
    settings = make_settings(tmp_path_factory.mktemp("cli"), f"sqlite:///{tmp_path_factory.mktemp('db') / 'lab.db'}",
                             mlflow_template)
    return cli_env(settings)


@pytest.fixture(scope="module")
def snapshot(env):
    """A function returning everything the CLI could change: runs with their steps, audit, failure modes."""
    store = Store(env["DATABASE_URL"])

    def take() -> dict:
        runs = store.list_runs(limit=1000)
        return {"runs": runs, "steps": {r.id: store.steps_of(r.id) for r in runs},
                "audit": store.audit_trail(), "modes": store.failure_modes()}
    yield take
    store.dispose()


def cli(env, *args, expect: int | None = None, cold: bool = False):
    """Run the CLI; check the exit code when `expect` is given (showing stderr when it differs)."""
    proc = engine_cli(env, *args, cold=cold)
    if expect is not None:
        assert proc.returncode == expect, f"{args}: exit {proc.returncode}\n{proc.stderr}"
    return proc


def cli_json(env, *args, expect: int = 0):
    return json.loads(cli(env, *args, expect=expect).stdout)


@pytest.fixture(scope="module")
def healthy(env):
    """`commit --sha --message --wait` on a clean lab, in a new interpreter: (process, its JSON)."""
    proc = cli(env, "commit", "--sha", SHA, "--message", "fix: round amounts", "--seed", "21", "--wait", cold=True)
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="module")
def failing(env, healthy):
    """training_error on, `commit --wait`, training_error off again: (set-output, process, its JSON)."""
    turned_on = cli_json(env, "failures", "training_error", "on")
    proc = cli(env, "commit", "--seed", "22", "--wait")
    store = Store(env["DATABASE_URL"])
    store.set_failure_mode("training_error", False, "tests")  # in-process: a subprocess costs a second
    store.dispose()
    return turned_on, proc, json.loads(proc.stdout) if proc.stdout.strip() else None


# ---- happy path -------------------------------------------------------------------------------------------
def test_commit_wait_exits_0_with_the_run_as_json(healthy):
    proc, run = healthy
    assert proc.returncode == 0, proc.stderr
    assert run["status"] == "ci_complete"
    assert f"run {run['id']}: ci_complete" in proc.stderr and f"run {run['id']} queued" in proc.stderr
    assert len(run["steps"]) == 11
    assert all(s["status"] == "succeeded" for s in run["steps"][:5])


def test_commit_records_the_given_sha_and_message(healthy):
    _, run = healthy
    assert run["sha"] == SHA.lower()
    assert run["message"] == "fix: round amounts" and run["seed"] == 21
    assert run["steps"][0]["outputs"]["sha"] == SHA.lower()


def test_status_shows_the_latest_or_a_given_run(env, healthy, failing):
    _, run = healthy
    latest = cli_json(env, "status")
    assert latest["id"] == failing[2]["id"]
    given = cli_json(env, "status", str(run["id"]))
    assert given["id"] == run["id"] and given["status"] == "ci_complete"
    assert [s["name"] for s in given["steps"]] == [s["name"] for s in run["steps"]]
    assert given["steps"][1]["outputs"]["passed"] > 0


def test_runs_as_json_and_csv(env, healthy, failing):
    rows = cli_json(env, "runs")
    assert [r["id"] for r in rows] == [failing[2]["id"], healthy[1]["id"]]  # newest first
    assert [r["status"] for r in rows] == ["failed", "ci_complete"]
    assert [r["id"] for r in cli_json(env, "runs", "--limit", "1")] == [failing[2]["id"]]
    text = cli(env, "runs", "--csv", expect=0).stdout
    lines = text.splitlines()
    assert lines[0] == ",".join(RUN_CSV_FIELDS)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows) == len(lines) - 1
    for row, run in zip(parsed, rows):
        assert (int(row["id"]), row["sha"], row["status"]) == (run["id"], run["sha"], run["status"])
    assert parsed[0]["failure_modes"] == "training_error" and parsed[1]["failure_modes"] == ""
    assert parsed[1]["message"] == "fix: round amounts"


# ---- failure modes --------------------------------------------------------------------------------------------
def test_failures_lists_the_four_modes(env, failing):
    modes = cli_json(env, "failures")
    assert [m["name"] for m in modes] == [m.name for m in MODES] and len(modes) == 4
    assert all(m["enabled"] is False for m in modes)  # the fixture turned its mode off again
    assert {m["name"]: m["caught_by"] for m in modes}["training_error"] == "ci_tests"


def test_commit_under_training_error_exits_1(failing):
    turned_on, proc, run = failing
    assert {m["name"]: m["enabled"] for m in turned_on}["training_error"] is True
    assert proc.returncode == 1, proc.stderr
    assert run["status"] == "failed" and run["failure_modes"] == ["training_error"]
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["ci_tests"]["status"] == "failed"
    assert "could not convert string to float" in steps["ci_tests"]["error"]
    assert f"run {run['id']}: failed" in proc.stderr


@pytest.mark.parametrize("args", [("status",), ("runs", "--csv"), ("status", "999"), ("approve", "1", "--by", "eve")],
                         ids=["exit 0", "csv", "exit 2", "exit 3"])
def test_the_warm_cli_answers_exactly_as_a_new_interpreter_does(env, healthy, failing, args):
    """The tests run the CLI as forks of a warm interpreter (tests/conftest.py); a new interpreter says the same."""
    warm, cold = cli(env, *args), cli(env, *args, cold=True)
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)


# ---- bad input: exit 2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (("commit", "--sha", "xyz!"), "is not a git SHA: give 4 to 64 hex digits"),
    (("commit", "--window", "2025-13-01..2025-02-01"), "2025-01-01..2025-06-30"),
    (("commit", "--window", "last week"), "must look like 2025-01-01..2025-06-30"),
    (("commit", "--seed", "-1"), "use a whole number from 0"),
    (("failures", "nosuch", "on"), "modes are: schema_validation, training_error"),
    (("failures", "training_error"), "say on or off"),
    (("retry", "999"), "there is no run 999; list runs with: python -m engine runs"),
    (("status", "999"), "there is no run 999"),
    (("runs", "--limit", "0"), "use 1 to 10000"),
    (("commit", "--author", "a" * 300), "--author is 300 characters long; the limit is 200"),
    (("commit", "--message", "m" * 2001), "--message is 2,001 characters long; the limit is 2,000"),
    (("commit", "--message", "ring\x07"), "--message contains the control character '\\x07'"),
    (("commit", "--author", "two\nlines"), "--author contains the control character '\\n'; use plain text on one"),
    (("approve", "1", "--by", "b" * 201), "--by (your name) is 201 characters long; the limit is 200"),
    (("rollback", "--by", "carol", "--reason", "r" * 100_000), "--reason is 100,000 characters long"),
    (("status", "0"), "there is no run 0: run ids are whole numbers from 1"),
    (("status", str(2**64)), f"there is no run {2**64}: run ids are whole numbers from 1"),
    (("retry", str(2**63)), f"there is no run {2**63}"),
    (("reset", "--by", "ops"), "add --yes to confirm"),
    (("status", "١"), "run id '١' is not a whole number written with the digits 0-9"),  # int() reads it as 1
    (("retry", "٣"), "run id '٣' is not a whole number written with the digits 0-9"),
    (("status", "1_0"), "run id '1_0' is not a whole number written with the digits 0-9"),
    (("status", "x" * 100_000), "run id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (100,002 characters) is not"),
    (("retry", "1", "--from", "s" * 100_000), "unknown step 'sssssssssssssssssssssssssssssssssssssss... (100,002"),
], ids=lambda v: " ".join(v)[:60] if isinstance(v, tuple) else None)
def test_bad_input_exits_2_saying_what_to_fix(env, snapshot, healthy, args, says):
    before = snapshot()
    proc = cli(env, *args, expect=2)
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ") and says in proc.stderr, proc.stderr
    assert len(proc.stderr) < 2500  # a bad argument is quoted cut short, never whole
    assert "Traceback" not in proc.stderr
    assert snapshot() == before  # nothing was created or changed


def test_retry_from_an_unknown_or_later_step_exits_2(env, snapshot, failing):
    run_id = str(failing[2]["id"])
    before = snapshot()
    proc = cli(env, "retry", run_id, "--from", "nosuch", expect=2)
    assert "unknown step 'nosuch'; steps are: commit_received" in proc.stderr
    proc = cli(env, "retry", run_id, "--from", "mlflow_log_ci", expect=2)
    assert "retry from ci_tests or an earlier step" in proc.stderr
    assert snapshot() == before


def test_argparse_errors_exit_2(env):
    proc = cli(env, "approve", "1", expect=2)  # --by is required
    assert "--by" in proc.stderr


# ---- illegal actions: exit 3, nothing changed -----------------------------------------------------------------
def test_illegal_actions_exit_3_and_change_nothing(env, snapshot, healthy, failing):
    ok_id, failed_id = str(healthy[1]["id"]), str(failing[2]["id"])
    before = snapshot()
    attempts = [(("continue", failed_id), "ci_complete"), (("approve", ok_id, "--by", "x"), "awaiting_approval"),
                (("reject", ok_id, "--by", "x"), "awaiting_approval"), (("retry", ok_id), "failed")]
    for args, needs in attempts:
        proc = cli(env, *args, expect=3)
        assert proc.stderr.startswith("refused: ") and "(nothing was changed)" in proc.stderr, proc.stderr
        assert needs in proc.stderr and f"run {args[1]} is " in proc.stderr, proc.stderr  # says why
        assert proc.stdout == ""
    after = snapshot()
    assert after == before
    assert [r.status for r in after["runs"]] == ["failed", "ci_complete"]


# ---- PostgreSQL ---------------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_commit_wait_on_postgres(pg_url, tmp_path, mlflow_template):
    env = cli_env(make_settings(tmp_path, pg_url, mlflow_template))
    proc = cli(env, "commit", "--seed", "23", "--wait", expect=0)
    run = json.loads(proc.stdout)
    assert run["status"] == "ci_complete" and run["id"] == 1
    assert [r["id"] for r in cli_json(env, "runs")] == [1]


# ---- every action's success path, on a copy of the awaiting lifecycle (tests/conftest.py) ----------------------
# There, runs 1 and 2 were promoted and champion rolled back to version 1; run 3 failed in data_validation
# (schema_validation, off again since); run 4 waits at the manual gate with version 3.
@pytest.fixture(scope="module")
def story(awaiting_lifecycle, tmp_path_factory):
    """The CLI's actions in turn, each a subprocess: (args, process, its JSON or None, champion after)."""
    data = copy_store(awaiting_lifecycle, tmp_path_factory.mktemp("cli-lifecycle"))
    env = cli_env(store_settings(awaiting_lifecycle, data))
    tracking = Tracking(env["MLFLOW_TRACKING_URI"])
    steps = [("approve", "4", "--by", "alice", "--comment", "ship v3", "--wait"),
             ("rollback", "--by", "bob", "--reason", "false denials up"),
             ("failures", "schema_validation", "on"),
             ("retry", "3", "--from", "data_validation", "--wait"),
             ("failures", "schema_validation", "off"),
             ("retry", "3", "--wait"),
             ("continue", "3", "--wait"),
             ("reject", "3", "--by", "carol", "--comment", "not before the audit")]
    done = []
    for args in steps:
        proc = engine_cli(env, *args)
        output = json.loads(proc.stdout) if proc.stdout.strip() else None
        done.append((args, proc, output, tracking.alias_version("champion")))
    return env, done


def said(proc) -> list[str]:
    """The CLI's own lines on stderr (libraries may warn there too)."""
    return [line for line in proc.stderr.splitlines() if line.startswith(("run ", "error: ", "refused: ", "failed: "))]


def _told(story, *args) -> tuple:
    """The recorded (process, JSON, champion) of the command that started with `args`."""
    return next(rest for recorded, *rest in story[1] if recorded[:len(args)] == args)


def test_approve_wait_deploys_and_promotes(story):
    proc, run, champion = _told(story, "approve", "4")
    assert proc.returncode == 0, proc.stderr
    assert said(proc) == ["run 4: promoted"]
    assert run["status"] == "promoted" and champion == 3
    steps = {s["name"]: s for s in run["steps"]}
    assert (steps["manual_approval"]["outputs"]["by"], steps["manual_approval"]["outputs"]["comment"]) == (
        "alice", "ship v3")
    assert steps["promote_prod"]["outputs"] == {"alias": "champion", "version": 3, "previous_champion": 1,
                                                "shadow_tested_version": 3}


def test_rollback_moves_champion_back_and_prints_the_move(story):
    proc, moved, champion = _told(story, "rollback")
    assert proc.returncode == 0, proc.stderr
    assert moved == {"from_version": 3, "to_version": 1, "model": MODEL_NAME} and champion == 1
    store = Store(story[0]["DATABASE_URL"])
    try:
        last = store.alias_history_of("champion")[-1]
    finally:
        store.dispose()
    assert (last["version"], last["action"], last["moved_by"], last["reason"]) == (
        1, "rollback", "bob", "false denials up")


def test_retry_wait_that_fails_again_exits_1(story):
    proc, run, _ = _told(story, "retry", "3", "--from")
    assert proc.returncode == 1, proc.stderr
    assert said(proc) == ["run 3 queued again from data_validation", "run 3: failed"]
    assert run["status"] == "failed" and run["failure_modes"] == ["schema_validation"]
    steps = {s["name"]: s for s in run["steps"]}
    assert (steps["data_validation"]["status"], steps["data_validation"]["attempt"]) == ("failed", 2)


def test_retry_wait_reruns_from_the_failed_step_to_ci_complete(story):
    proc, run, _ = _told(story, "retry", "3", "--wait")
    assert proc.returncode == 0, proc.stderr
    assert said(proc) == ["run 3 queued again from data_validation", "run 3: ci_complete"]
    assert run["status"] == "ci_complete" and run["failure_modes"] == []
    steps = {s["name"]: s for s in run["steps"]}
    assert [steps[n]["attempt"] for n in ("commit_received", "ci_tests", "data_validation")] == [1, 1, 3]


def test_continue_wait_runs_cd_to_the_manual_gate(story):
    proc, run, champion = _told(story, "continue", "3")
    assert proc.returncode == 0, proc.stderr
    assert said(proc) == ["run 3: awaiting_approval"]
    assert run["status"] == "awaiting_approval" and champion == 1
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["cd_full_train"]["outputs"]["model_version"] == 4
    assert steps["evaluate_vs_champion"]["outputs"]["champion"]["version"] == 1


def test_reject_stops_the_run_and_exits_0(story):
    proc, run, champion = _told(story, "reject", "3")
    assert proc.returncode == 0, proc.stderr
    assert said(proc) == []
    assert run["status"] == "rejected" and champion == 1
    gate = {s["name"]: s for s in run["steps"]}["manual_approval"]
    assert gate["error"] == "rejected by carol: not before the audit"


def test_wait_gives_up_after_its_timeout_while_another_worker_holds_the_step(lab):
    run_id = lab.commit(seed=24)
    lab.store.claim_step("elsewhere:1:abcdef")  # alive (fresh heartbeat), so never reaped here
    with pytest.raises(TimeoutError, match=f"run {run_id} still running after 1 s"):
        wait_for(lab, run_id, timeout=1)
    assert lab.store.step(run_id, "commit_received").worker == "elsewhere:1:abcdef"


def test_an_unexpected_error_exits_1_with_a_message_not_a_traceback(env):
    broken = {**env, "DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:9/nothing"}  # nothing listens
    proc = cli(broken, "runs", expect=1)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("failed: the database at postgresql+psycopg2://postgres@127.0.0.1:9/nothing ")
    assert "Connection refused" in proc.stderr and "DATABASE_URL" in proc.stderr


# ---- settings and paths that cannot work: exit 2 naming them; a hung database: exit 1 naming the host ----------
def _not_a_dir(tmp_path) -> str:
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "data")


@pytest.mark.parametrize("change, says", [
    ({"DATABASE_URL": "mysql://lab:hunter2@db.example:3306/lab"},
     ["DATABASE_URL 'mysql://lab:***@db.example:3306/lab' has the scheme 'mysql'", "sqlite:///"]),
    ({"DATABASE_URL": "postgresql+nosuchdriver://lab:hunter2@db.example/lab"},
     ["DATABASE_URL 'postgresql+nosuchdriver://lab:***@db.example/lab' is not a usable database URL"]),
    ({"LAB_DATA_DIR": _not_a_dir}, ["the data directory", "/a-file/data is not usable", "set LAB_DATA_DIR"]),
    ({"LAB_STALE_SECONDS": "1"}, ["LAB_STALE_SECONDS (1) must be at least 5 heartbeats"]),
    ({"LAB_TICK_SECONDS": "fast"}, ["LAB_TICK_SECONDS='fast' is not a number"]),
], ids=["db-scheme", "db-driver", "data-dir", "stale-window", "tick"])
def test_a_setting_that_cannot_work_exits_2_naming_it(env, snapshot, tmp_path, change, says):
    before = snapshot()
    change = {k: (v(tmp_path) if callable(v) else v) for k, v in change.items()}
    proc = cli({**env, **change}, "status", expect=2)
    for words in says:
        assert words in proc.stderr, proc.stderr
    assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_a_read_only_data_dir_exits_2_naming_it(env, tmp_path):
    data = tmp_path / "ro"
    data.mkdir()
    data.chmod(0o555)
    try:
        proc = cli({**env, "LAB_DATA_DIR": str(data)}, "status", expect=2)
    finally:
        data.chmod(0o755)
    assert f"the data directory {data} is not usable" in proc.stderr and "LAB_DATA_DIR" in proc.stderr


def test_a_hung_database_fails_with_exit_1_naming_the_host_with_the_password_masked(env):
    """A server that accepts the connection and never answers (as a stopped postmaster does)."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        port = hung.getsockname()[1]
        url = f"postgresql+psycopg2://lab:hunter2@127.0.0.1:{port}/lab"
        proc = engine_cli({**env, "DATABASE_URL": url}, "status", timeout=60)  # connect_timeout: 5 s
    assert proc.returncode == 1, proc.stderr
    assert f"the database at postgresql+psycopg2://lab:***@127.0.0.1:{port}/lab did not answer" in proc.stderr
    assert "timeout" in proc.stderr and "hunter2" not in proc.stderr


def test_a_locked_sqlite_store_fails_after_the_busy_timeout_with_exit_1(tmp_path, mlflow_template):
    import sqlite3
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}", mlflow_template)
    Store(settings.database_url).dispose()  # the schema exists
    holder = sqlite3.connect(tmp_path / "lab.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock and never lets go
    try:
        proc = cli({**cli_env(settings), "LAB_DB_STATEMENT_TIMEOUT": "1"}, "commit", expect=1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "database is locked" in proc.stderr and str(tmp_path / "lab.db") in proc.stderr


# ---- CSV: formula cells are neutralised ----------------------------------------------------------------------
def test_runs_csv_neutralises_formula_cells(tmp_path, mlflow_template):
    from engine.lab import Lab
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}", mlflow_template)
    lab = Lab(settings)
    formula = '=HYPERLINK("http://evil.example","open")'
    lab.commit(message=formula, author="@mallory")
    lab.commit(message="-1+2", author="+bob")
    lab.close()
    rows = list(csv.DictReader(io.StringIO(cli(cli_env(settings), "runs", "--csv", expect=0).stdout)))
    assert [(r["message"], r["author"]) for r in rows] == [("'-1+2", "'+bob"), ("'" + formula, "'@mallory")]
    assert rows[0]["seed"].isdigit() and "T" in rows[0]["created_at"]  # numbers stay numbers; ISO 8601 times


# ---- PostgreSQL: a value over a column's size is refused before anything is written --------------------------
@pytest.mark.postgres
def test_commit_with_an_author_over_the_limit_on_postgres_writes_nothing(pg_url, tmp_path, mlflow_template):
    env = cli_env(make_settings(tmp_path, pg_url, mlflow_template))
    proc = cli(env, "commit", "--author", "a" * 300, expect=2)
    assert "--author is 300 characters long; the limit is 200" in proc.stderr
    store = Store(pg_url)
    try:
        assert store.row_counts()["runs"] == 0 and store.audit_trail() == []
    finally:
        store.dispose()


# ---- a newcomer's CLI -------------------------------------------------------------------------------------------
def test_every_command_and_option_has_help_and_the_epilog_lists_exit_codes_and_steps():
    import argparse

    from engine import pipeline
    from engine.__main__ import _parser
    parser = _parser()

    def check(p: argparse.ArgumentParser, path: str) -> None:  # every option and subcommand, at every level
        assert [a.dest for a in p._actions if a.help is None] == [], f"{path}: options without --help text"
        for sub in (a for a in p._actions if isinstance(a, argparse._SubParsersAction)):
            helped = {c.dest: c.help for c in sub._choices_actions}
            assert set(helped) == set(sub.choices) and all(helped.values()), (path, helped)
            for name, command in sub.choices.items():
                check(command, f"{path} {name}")
    check(parser, "python -m engine")
    for code in ("0  done", "1  the run ended", "2  bad input", "3  refused"):
        assert code in parser.epilog
    assert all(step in parser.epilog for step in pipeline.NAMES)


def test_commit_without_wait_says_when_no_worker_is_alive(tmp_path, mlflow_template):
    env = cli_env(make_settings(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}", mlflow_template))
    proc = cli(env, "commit", expect=0)
    assert "note: no worker is alive to pick run 1 up; start one with `python -m engine worker`" in proc.stderr
    assert json.loads(proc.stdout)["created_at"].endswith("+00:00")  # ISO 8601 with its time zone
    assert cli_json(env, "workers") == []
    assert "0 live worker(s)" in cli(env, "workers", "--check", expect=1).stderr


@pytest.mark.parametrize("billed, says", [
    ("1e39", "billed_amount 1e+39 is beyond what the model can read (at most 3.403e+38)"),
    ("1" + "0" * 400, "is not a finite number"),  # a JSON integer float() cannot hold
    ("1" + "0" * 5000, "--json is not valid JSON (a number in it has too many digits)"),  # past int()'s limit
    ("NaN", "billed_amount nan is not a finite number"),
    ('"²"', "billed_amount '²' is not a number"),
    ("1" + "0" * 100_000, "--json is not valid JSON (a number in it has too many digits)"),
    ("[" * 50_000 + "]" * 50_000, "--json is not valid JSON (it is nested too deeply)"),
    ('{"a": ' * 20_000 + "1" + "}" * 20_000, "--json is not valid JSON (it is nested too deeply)"),
    ('"' + "9" * 60_000 + '"', "billed_amount '" + "9" * 39 + "... (60,002 characters) is not a number"),
], ids=["1e39", "400 digits", "5000 digits", "NaN", "superscript two", "100k digits", "nested lists",
        "nested objects", "60k characters"])
def test_score_refuses_a_number_the_model_cannot_read_with_exit_2(env, billed, says):
    claim = ('{"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Renal", '
             f'"billed_amount": {billed}, "allowed_amount": 3100, "patient_age": 45}}')
    proc = cli(env, "score", "--json", claim, expect=2)
    assert proc.stderr.startswith("error: ") and says in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr) < 2500


def test_score_reports_an_age_just_past_the_range_with_its_real_value(env):
    proc = cli(env, "score", "--cpt-bucket", "Surgery", "--provider-type", "Hospital", "--diagnosis-group", "Renal",
               "--billed-amount", "4200", "--allowed-amount", "3100", "--patient-age", "110.0000001", expect=2)
    assert "error: patient_age 110.0000001 is outside 0..110" in proc.stderr, proc.stderr


def test_a_failure_message_is_bounded_whatever_input_it_quotes():
    from engine.errors import BadInput
    from engine.output import MAX_MESSAGE, failure
    said = failure(BadInput("the value " + "v" * 10_000_000 + " is wrong; use a short one"))
    assert (said.exit_code, said.http) == (2, 422) and len(said.message) < MAX_MESSAGE + 100
    assert said.message.startswith("error: the value vvv") and said.message.endswith("is wrong; use a short one")
    assert "(10,000,043 characters in all)" in said.message  # "error: " and the 36 characters around it


def test_commit_wait_leaves_no_live_worker_behind(env, healthy, failing):
    """`commit --wait` ran a worker in its own process; once it exited, that worker is gone from the list at once
    (not listed as alive until its heartbeat goes stale)."""
    assert cli_json(env, "workers") == []


def test_a_run_from_an_older_pipeline_is_listed_shown_and_retried(tmp_path, mlflow_template):
    """A run stored before ci_tests existed, its positions not today's: runs, status and retry --wait all work."""
    from engine.lab import Lab
    from tests.engine.test_lab import failed_in_data_validation
    settings = make_settings(tmp_path, None, mlflow_template)
    lab = Lab(settings)
    try:
        run_id = failed_in_data_validation(lab, 32, without="ci_tests", shift=5)
    finally:
        lab.close()
    env = cli_env(settings)
    assert [r["id"] for r in cli_json(env, "runs")] == [run_id]
    steps = cli_json(env, "status", str(run_id))["steps"]
    assert [s["name"] for s in steps][:2] == ["commit_received", "data_validation"] and steps[1]["position"] == 6
    proc = cli(env, "retry", str(run_id), "--wait", expect=0)
    assert said(proc) == [f"run {run_id} queued again from data_validation", f"run {run_id}: ci_complete"]
    assert json.loads(proc.stdout)["status"] == "ci_complete"

"""The CLI: `python -m engine <command>`. JSON on stdout, messages on stderr.

Exit codes: 0 done; 1 the run ended failed/held/interrupted, or an unexpected error; 2 bad input; 3 an
action the current state does not allow (nothing changed).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time

from engine.config import LIMITS, mask_url
from engine.errors import BadInput
from engine.ml.claims import FEATURES, SCENARIOS
from engine.output import RUN_CSV_FIELDS, failure, runs_csv, to_json  # noqa: F401 (tests import RUN_CSV_FIELDS)
from engine.states import RESTING, UNSUCCESSFUL, RunStatus

EPILOG = f"""\
exit codes:
  0  done (with --wait: the run reached a good resting status)
  1  the run ended failed, held or interrupted; or an unexpected error, such as a database or MLflow that
     does not answer (the message names the address, with any password masked)
  2  bad input: the message says which argument, setting or path is wrong and how to fix it
  3  refused: the current state does not allow the action (nothing was changed)

pipeline steps (CI -> CD -> Deploy):
  commit_received, ci_tests, data_validation, ci_quick_train, mlflow_log_ci   (rests in ci_complete)
  cd_full_train, evaluate_vs_champion, manual_approval                         (rests in awaiting_approval)
  deploy_staging, shadow_monitor, promote_prod                                 (rests in promoted)

failure modes (failures MODE on): every run committed or retried while a mode is on breaks the way it
describes, until you turn it off again (failures MODE off).

limits: --message {LIMITS["message"]}, --comment {LIMITS["comment"]}, --reason {LIMITS["reason"]} characters;
  --author {LIMITS["author"]}, --by {LIMITS["by"]} (one line); --sha 4-64 hex digits.

Without --wait a run only moves when a worker is alive: start one with `python -m engine worker` (the dashboard
runs one too); `python -m engine workers` lists them. Settings come from environment variables (.env.example):
DATABASE_URL, MLFLOW_TRACKING_URI, LAB_DATA_DIR, ...
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="Claim ML CI/CD lab engine",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND",
                           help="what to do (COMMAND --help: its options)")
    wait = dict(action="store_true", help="run the steps in this process until the run rests, then print it")
    run = dict(help="the run id (see: python -m engine runs)")  # checked by Lab: digits 0-9 only
    by_help = f"your name (up to {LIMITS['by']} characters), recorded in the audit"

    c = sub.add_parser("commit", help="start CI for a new commit")
    c.add_argument("--sha", help="the commit's git SHA, 4-64 hex digits (default: a random fake one)")
    c.add_argument("--message", default="", help=f"commit message (up to {LIMITS['message']} characters)")
    c.add_argument("--author", default="", help=f"who committed (up to {LIMITS['author']} characters; default: cli)")
    c.add_argument("--seed", type=int, help="seed of the run's data, 0-2147483647 (default: random)")
    c.add_argument("--window", help="dataset window YYYY-MM-DD..YYYY-MM-DD (default: commit_received.yaml)")
    c.add_argument("--wait", **wait)
    c = sub.add_parser("continue", help="start CD for a run in ci_complete")
    c.add_argument("run", **run), c.add_argument("--wait", **wait)
    for name in ("approve", "reject"):
        c = sub.add_parser(name, help=f"{name} a run waiting at the manual gate")
        c.add_argument("run", **run)
        c.add_argument("--by", required=True, help=by_help)
        c.add_argument("--comment", default="", help=f"why (up to {LIMITS['comment']} characters)")
        if name == "approve":
            c.add_argument("--wait", **wait)
    c = sub.add_parser("rollback", help="champion back to the previous version (needs two promotions)")
    c.add_argument("--by", required=True, help=by_help)
    c.add_argument("--reason", default="", help=f"why (up to {LIMITS['reason']} characters)")
    c = sub.add_parser("retry", help="re-run a failed/held/interrupted run from a step")
    c.add_argument("run", **run)
    c.add_argument("--from", dest="from_step", metavar="STEP",
                   help="the step to start from (default: the first one that did not succeed)")
    c.add_argument("--wait", **wait)
    c = sub.add_parser("status", help="a run with its steps (default: the latest)")
    c.add_argument("run", nargs="?", help="the run id (default: the latest run)")
    c = sub.add_parser("runs", help="run history, newest first")
    c.add_argument("--limit", type=int, default=50, help="how many runs, 1-10000 (default 50)")
    c.add_argument("--csv", action="store_true", help="CSV on stdout instead of JSON (formula cells neutralised)")
    c = sub.add_parser("failures", help="list failure modes, or set one: failures MODE on|off")
    c.add_argument("mode", nargs="?", help="a mode name (see the list)")
    c.add_argument("state", nargs="?", choices=("on", "off"), help="on: every new run breaks until turned off")
    c = sub.add_parser("score", help="the champion's decision for one claim (JSON, or one option per field)")
    c.add_argument("--json", "--claim", dest="claim",
                   help='the claim as a JSON object, e.g. \'{"cpt_bucket": "Surgery", "billed_amount": 1200, ...}\'')
    for field in FEATURES:
        c.add_argument(f"--{field.replace('_', '-')}", dest=field, metavar="VALUE", help=f"the claim's {field}")
    c.add_argument("--explain", action="store_true", help="add the claim's own SHAP contributions")
    c = sub.add_parser("stream", help="the live claims stream: start, stop, status, snapshots")
    ss = c.add_subparsers(dest="stream_cmd", required=True, metavar="ACTION",
                          help="start, stop, status, snapshots, closed-loop or retrain")
    s = ss.add_parser("start", help="turn the stream on (or change its settings)")
    s.add_argument("--rate", type=float, help="claims per second (default 20)")
    s.add_argument("--scenario", help=f"one of: {', '.join(SCENARIOS)}")
    s.add_argument("--ramp", type=int, help="claims over which the scenario ramps in (0: at once)")
    s.add_argument("--label-delay", type=int, help="claims produced before a claim's outcome arrives")
    ss.add_parser("stop", help="turn the stream off (claims and snapshots stay)")
    ss.add_parser("status", help="state, versions, counts and the latest snapshot")
    s = ss.add_parser("snapshots", help="drift snapshots, newest first")
    s.add_argument("--limit", type=int, default=200, help="how many snapshots, 1-100000 (default 200)")
    s.add_argument("--csv", action="store_true", help="CSV on stdout instead of JSON (formula cells neutralised)")
    s = ss.add_parser("closed-loop", help="turn drift-triggered retraining on or off")
    s.add_argument("state", choices=("on", "off"), help="on: a drift alert starts a retraining run")
    s = ss.add_parser("retrain", help="commit a retrain on recent production data (labelled stream claims, split "
                                      "by time: the newest quarter judges it)")
    s.add_argument("--by", default="", help="your name, recorded in the audit")
    s.add_argument("--rows", type=int, help="how many of the newest labelled claims (default 20000, at least 6000)")
    s.add_argument("--wait", action="store_true", help="run a worker here until the run rests")
    sub.add_parser("worker", help="run the scheduler in the foreground (SIGTERM or Ctrl-C stops it cleanly)")
    c = sub.add_parser("workers", help="list registered workers and whether each is alive")
    c.add_argument("--check", action="store_true",
                   help="healthcheck: exit 0 if a worker on this host is alive, else 1 (compose uses it)")
    c = sub.add_parser("reset", help="operator: delete every run, audit row, toggle and MLflow run of this lab")
    c.add_argument("--by", required=True, help="your name, recorded in the audit")
    c.add_argument("--yes", action="store_true", help="confirm; without it nothing is deleted")
    return p


def _out(obj) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def wait_for(lab, run_id: int, timeout: float = 900) -> RunStatus:
    """Work on queued steps in this process until the run rests; return its status."""
    deadline = time.monotonic() + timeout
    while True:
        lab.work_until_idle()
        status = lab.run(run_id).status
        if status in RESTING:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status} after {timeout:.0f} s")
        time.sleep(0.1)  # another process holds the step: poll until it is done


def _finish(lab, run_id: int, wait: bool) -> int:
    if wait:
        status = wait_for(lab, run_id)
        _err(f"run {run_id}: {status}")
    else:
        _say_if_nobody_works(lab, run_id)
    run = lab.run(run_id)
    _out(run)
    return 1 if run.status in UNSUCCESSFUL else 0


def _say_if_nobody_works(lab, run_id: int) -> None:
    if not any(w["alive"] for w in lab.workers()):
        _err(f"note: no worker is alive to pick run {run_id} up; start one with `python -m engine worker` "
             "(or open the dashboard), or pass --wait to run it here")


def _worker(lab) -> int:
    """Run the scheduler until SIGTERM/SIGINT; then let steps finish (a grace period) or release them."""
    from engine import logmask
    logmask.install()  # its log is the server's too: MLflow's errors quote URLs, keys live in the environment
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    lab.start()
    _err(f"worker {lab.worker_id} ticking every {lab.settings.tick_seconds} s on "
         f"{mask_url(lab.settings.database_url)}; Ctrl-C or SIGTERM stops it")
    try:
        while not stop:
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop.append("SIGINT")
    grace = lab.settings.shutdown_grace_seconds
    _err(f"{stop[0]}: stopping; running steps get {grace:g} s to finish, then go back to the queue")
    released = lab.shutdown(grace)
    if released:
        _err(f"released to other workers: {', '.join(released)}")
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(0)  # a released step's thread may still be inside its code; it must not hold the exit


class _Redacted:
    """A text stream that masks the configured passwords in whatever is written to it (prints of libraries
    such as MLflow's "View run at <tracking URI>", log handlers, tracebacks)."""

    def __init__(self, stream, settings):
        self._stream, self._settings = stream, settings

    def write(self, text: str) -> int:
        self._stream.write(self._settings.redact(text))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def run_command(args, lab) -> int:
    """Dispatch one parsed command; return the exit code."""
    from engine.lab import check_run_id
    cmd = args.cmd
    if getattr(args, "run", None) is not None:
        args.run = check_run_id(args.run)
    if cmd == "commit":
        run_id = lab.commit(args.sha, args.message, args.seed, args.window, args.author, trigger="cli")
        _err(f"run {run_id} queued")
        return _finish(lab, run_id, args.wait)
    if cmd == "continue":
        lab.continue_run(args.run)
        return _finish(lab, args.run, args.wait)
    if cmd == "approve":
        lab.approve(args.run, args.by, args.comment)
        return _finish(lab, args.run, args.wait)
    if cmd == "reject":
        lab.reject(args.run, args.by, args.comment)
        return _finish(lab, args.run, False)
    if cmd == "rollback":
        _out(lab.rollback(args.by, args.reason))
        return 0
    if cmd == "retry":
        start = lab.retry(args.run, args.from_step)
        _err(f"run {args.run} queued again from {start}")
        return _finish(lab, args.run, args.wait)
    if cmd == "status":
        run_id = args.run if args.run is not None else next((r.id for r in lab.runs(1)), None)
        if run_id is None:
            raise BadInput("there are no runs yet: start one with python -m engine commit")
        _out(lab.run(run_id))
        return 0
    if cmd == "runs":
        rows = lab.runs(args.limit)
        if args.csv:
            sys.stdout.write(runs_csv(rows))
        else:
            _out(rows)
        return 0
    if cmd == "failures":
        if args.mode and not args.state:
            raise BadInput(f"say on or off: python -m engine failures {args.mode} on")
        if args.mode:
            lab.set_failure_mode(args.mode, args.state == "on")
        _out(lab.failure_modes())
        return 0
    if cmd == "score":
        _out(lab.score(_claim_from_args(args), explain=args.explain))
        return 0
    if cmd == "stream":
        return _stream(lab, args)
    if cmd == "worker":
        return _worker(lab)
    if cmd == "workers":
        rows = lab.workers()
        if args.check:
            host = socket.gethostname()
            mine = [w for w in rows if w["alive"] and w["host"] == host]
            _err(f"{len(mine)} live worker(s) on {host}")
            return 0 if mine else 1
        _out(rows)
        return 0
    if cmd == "reset":
        if not args.yes:
            raise BadInput("reset deletes every run, audit row, failure toggle and MLflow run of this lab; "
                           "add --yes to confirm")
        _out(lab.reset(args.by))
        return 0
    raise BadInput(f"unknown command {cmd}")


def _claim_from_args(args) -> dict:
    fields = {f: getattr(args, f) for f in FEATURES if getattr(args, f) is not None}
    if args.claim is None:
        if not fields:
            raise BadInput("give the claim: --json '{...}', or --cpt-bucket ... --patient-age ... (see --help)")
        return fields
    try:
        claim = json.loads(args.claim)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an integer past 4,300 digits, deep nesting
        reason = exc if isinstance(exc, json.JSONDecodeError) else (
            "it is nested too deeply" if isinstance(exc, RecursionError) else "a number in it has too many digits")
        raise BadInput(f"--json is not valid JSON ({reason}); pass an object like "
                       '\'{"cpt_bucket": "Surgery", "billed_amount": 1200, ...}\'') from None
    if not isinstance(claim, dict):
        raise BadInput("--json must be a JSON object with the claim's fields")
    return {**claim, **fields}  # a field option overrides the same field in the JSON


def _stream(lab, args) -> int:
    stream = lab.stream
    if args.stream_cmd == "start":
        stream.start(args.rate, args.scenario, args.ramp, args.label_delay, by="cli")
        status = stream.status()
        if not status["producer"]["alive"]:
            _err("the stream is on; no runner holds it yet: the dashboard or `python -m engine worker` produces it")
        _out(status)
    elif args.stream_cmd == "stop":
        stream.stop(by="cli")
        _out(stream.status())
    elif args.stream_cmd == "status":
        _out(stream.status())
    elif args.stream_cmd == "closed-loop":
        stream.set_closed_loop(args.state == "on", by="cli")
        _out(stream.status())
    elif args.stream_cmd == "retrain":
        run_id = lab.retrain_on_production(by=args.by or "cli", rows=args.rows)
        return _finish(lab, run_id, args.wait)
    else:  # stream.snapshots checks --limit
        from engine.stream import snapshot_rows  # pandas comes with it: only the commands that need it pay
        rows = snapshot_rows(stream.snapshots(args.limit))
        if args.csv:
            sys.stdout.write(runs_csv(rows, fields=list(rows[0]) if rows else ["id"]))
        else:
            _out(rows)
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    from engine.config import Settings
    from engine.lab import Lab
    lab, settings, streams = None, None, (sys.stdout, sys.stderr)
    try:
        settings = Settings.from_env()
        if settings.secrets():
            sys.stdout, sys.stderr = _Redacted(sys.stdout, settings), _Redacted(sys.stderr, settings)
        lab = Lab(settings)
        return run_command(args, lab)
    except Exception as exc:  # bad input 2, refused 3, anything else 1 with a one-line message, never a traceback
        failed = failure(exc, settings.database_url if settings else None)
        _err(failed.message)
        return failed.exit_code
    finally:
        if lab is not None and args.cmd != "worker":
            lab.release(runner=getattr(args, "wait", False))
        sys.stdout, sys.stderr = streams


if __name__ == "__main__":
    sys.exit(main())

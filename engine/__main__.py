"""The CLI: `python -m engine <command>`. JSON on stdout, messages on stderr.

Exit codes: 0 done; 1 the run ended failed/held/interrupted, or an unexpected error; 2 bad input; 3 an
action the current state does not allow (nothing changed).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import sys
import time

from engine.errors import BadInput, Refused
from engine.ml.claims import FEATURES
from engine.states import RESTING, UNSUCCESSFUL, IllegalTransition, RunStatus
from engine.stream import SCENARIOS, snapshot_rows

RUN_CSV_FIELDS = ("id", "sha", "message", "author", "seed", "dataset_window", "status", "created_at",
                  "finished_at", "failure_modes")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="Claim ML CI/CD lab engine")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    c = sub.add_parser("commit", help="start CI for a new commit")
    c.add_argument("--sha"), c.add_argument("--message", default=""), c.add_argument("--author", default="")
    c.add_argument("--seed", type=int), c.add_argument("--window", help="YYYY-MM-DD..YYYY-MM-DD")
    c.add_argument("--wait", action="store_true")
    c = sub.add_parser("continue", help="start CD for a run in ci_complete")
    c.add_argument("run", type=int), c.add_argument("--wait", action="store_true")
    for name in ("approve", "reject"):
        c = sub.add_parser(name, help=f"{name} a run waiting at the manual gate")
        c.add_argument("run", type=int), c.add_argument("--by", required=True), c.add_argument("--comment", default="")
        if name == "approve":
            c.add_argument("--wait", action="store_true")
    c = sub.add_parser("rollback", help="champion back to the previous version")
    c.add_argument("--by", required=True), c.add_argument("--reason", default="")
    c = sub.add_parser("retry", help="re-run a failed/held/interrupted run from a step")
    c.add_argument("run", type=int), c.add_argument("--from", dest="from_step")
    c.add_argument("--wait", action="store_true")
    c = sub.add_parser("status", help="a run with its steps (default: the latest)")
    c.add_argument("run", type=int, nargs="?")
    c = sub.add_parser("runs", help="run history")
    c.add_argument("--limit", type=int, default=50), c.add_argument("--csv", action="store_true")
    c = sub.add_parser("failures", help="list failure modes, or set one: failures MODE on|off")
    c.add_argument("mode", nargs="?"), c.add_argument("state", nargs="?", choices=("on", "off"))
    c = sub.add_parser("score", help="the champion's decision for one claim (JSON, or one option per field)")
    c.add_argument("--json", "--claim", dest="claim",
                   help='the claim as a JSON object, e.g. \'{"cpt_bucket": "Surgery", "billed_amount": 1200, ...}\'')
    for field in FEATURES:
        c.add_argument(f"--{field.replace('_', '-')}", dest=field, metavar="VALUE", help=f"the claim's {field}")
    c.add_argument("--explain", action="store_true", help="add the claim's own SHAP contributions")
    c = sub.add_parser("stream", help="the live claims stream: start, stop, status, snapshots")
    ss = c.add_subparsers(dest="stream_cmd", required=True, metavar="ACTION")
    s = ss.add_parser("start", help="turn the stream on (or change its settings)")
    s.add_argument("--rate", type=float, help="claims per second (default 20)")
    s.add_argument("--scenario", help=f"one of: {', '.join(SCENARIOS)}")
    s.add_argument("--ramp", type=int, help="claims over which the scenario ramps in (0: at once)")
    s.add_argument("--label-delay", type=int, help="claims produced before a claim's outcome arrives")
    ss.add_parser("stop", help="turn the stream off (claims and snapshots stay)")
    ss.add_parser("status", help="state, versions, counts and the latest snapshot")
    s = ss.add_parser("snapshots", help="drift snapshots, newest first")
    s.add_argument("--limit", type=int, default=200), s.add_argument("--csv", action="store_true")
    s = ss.add_parser("closed-loop", help="turn drift-triggered retraining on or off")
    s.add_argument("state", choices=("on", "off"))
    sub.add_parser("worker", help="run the scheduler in the foreground")
    return p


def _out(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def wait_for(lab, run_id: int, timeout: float = 900) -> str:
    """Work on queued steps in this process until the run rests; return its status."""
    deadline = time.monotonic() + timeout
    while True:
        lab.runner.run_until_idle()
        status = lab.store.get_run(run_id)["status"]
        if RunStatus(status) in RESTING:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status} after {timeout:.0f} s")
        lab.runner.reap_stale()
        time.sleep(0.1)  # another process holds the step: poll until it is done


def _finish(lab, run_id: int, wait: bool) -> int:
    if wait:
        status = wait_for(lab, run_id)
        _err(f"run {run_id}: {status}")
    run = lab.run(run_id)
    _out(run)
    return 1 if RunStatus(run["status"]) in UNSUCCESSFUL else 0


def _worker(lab) -> int:
    lab.start()
    _err(f"worker {lab.runner.worker_id} ticking every {lab.settings.tick_seconds} s on {lab.store.url}; "
         "Ctrl-C stops it")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    lab.close()
    return 0


def run_command(args, lab) -> int:
    """Dispatch one parsed command; return the exit code."""
    cmd = args.cmd
    if cmd == "commit":
        run_id = lab.commit(args.sha, args.message, args.seed, args.window, args.author)
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
        run_id = args.run or next((r["id"] for r in lab.runs(1)), None)
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
    raise BadInput(f"unknown command {cmd}")


def _claim_from_args(args) -> dict:
    fields = {f: getattr(args, f) for f in FEATURES if getattr(args, f) is not None}
    if args.claim is None:
        if not fields:
            raise BadInput("give the claim: --json '{...}', or --cpt-bucket ... --patient-age ... (see --help)")
        return fields
    try:
        claim = json.loads(args.claim)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--json is not valid JSON ({exc}); pass an object like "
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
    else:
        if not 1 <= args.limit <= 100_000:
            raise BadInput(f"--limit {args.limit} is out of range: use 1 to 100000")
        rows = snapshot_rows(stream.snapshots(args.limit))
        if args.csv:
            sys.stdout.write(runs_csv(rows, fields=list(rows[0]) if rows else ["id"]))
        else:
            _out(rows)
    return 0


def runs_csv(rows: list[dict], fields=RUN_CSV_FIELDS) -> str:
    """Runs as CSV text, one row per run, in the given order."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (";".join(v) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


def main(argv=None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    from engine.lab import Lab
    lab = None
    try:
        lab = Lab()
        return run_command(args, lab)
    except BadInput as exc:
        _err(f"error: {exc}")
        return 2
    except (IllegalTransition, Refused) as exc:
        _err(f"refused: {exc} (nothing was changed)")
        return 3
    except Exception as exc:  # an unexpected error still gets a one-line message, not a traceback
        _err(f"failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if lab is not None and args.cmd != "worker":
            lab.store.dispose()


if __name__ == "__main__":
    sys.exit(main())

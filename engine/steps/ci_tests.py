"""Run the ML test suite (ci_tests_suite/) in a child process on this run's CI sample; counts come from JUnit XML."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from engine import failures, warm
from engine.errors import GateFailed
from engine.ml.claims import generate_claims

SUITE = Path(__file__).with_name("ci_tests_suite")
ROOT = Path(__file__).resolve().parents[2]


def run(ctx) -> dict:
    p = ctx.params
    sample = generate_claims(p["sample_rows"], ctx.run.seed, ctx.run.dataset_window)
    if ctx.mode("training_error"):
        sample = failures.format_amounts_as_text(sample)
    sample_path, junit = ctx.run_dir / "ci_sample.pkl", ctx.run_dir / f"junit-{ctx.step.attempt}.xml"
    sample.to_pickle(sample_path)
    args = [str(SUITE), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(ROOT), f"--junitxml={junit}"]
    ctx.log("$ pytest " + " ".join(args))
    # No plugin autoload: the suite needs none, and the installed ones cost a third of a second to import.
    # The repository is on the warm interpreter's path already; PYTHONPATH passes on only the caller's own.
    env = {**os.environ, "LAB_CI_SAMPLE": str(sample_path), "LAB_CI_MIN_ROC_AUC": str(p["min_roc_auc"]),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if not warm.started():
        ctx.log("starting the warm pytest interpreter (once per process: it imports pytest, pandas and "
                "scikit-learn, which takes a few seconds, then forks every suite run from them)")
    # A fresh child of the warm interpreter (engine/warm.py): its own process group, killed with the step (and
    # with the worker, even on kill -9)
    output_path = ctx.run_dir / f"pytest-{ctx.step.attempt}.log"
    proc = ctx.pytest(args, env=env, output=output_path)
    lint_report = lint(ctx) if p.get("lint") else None  # runs while the suite does
    timed_out = False
    try:
        proc.wait(timeout=p["timeout_seconds"])
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        timed_out = True
    output = output_path.read_text(errors="replace") if output_path.exists() else ""
    for line in output.splitlines():
        ctx.log(line, "ERROR" if line.startswith(("FAILED", "E ")) else "INFO")
    if timed_out:
        ctx.log(f"killed after {p['timeout_seconds']} s (timeout_seconds in ci_tests.yaml)")
    tests = parse_junit(junit)
    outputs = {"tests": tests, "passed": sum(t["outcome"] == "passed" for t in tests),
               "failed": sum(t["outcome"] == "failed" for t in tests),
               "skipped": sum(t["outcome"] == "skipped" for t in tests),
               "duration_seconds": round(sum(t["duration"] for t in tests), 3), "exit_code": proc.returncode,
               "sample_rows": len(sample)}
    if lint_report is not None:
        outputs["lint"] = lint_report
    bad = [t for t in tests if t["outcome"] == "failed"]
    if bad or proc.returncode != 0:
        why = f"{bad[0]['name']}: {bad[0]['message']}" if bad else f"pytest exited with code {proc.returncode}"
        raise GateFailed(f"{len(bad)} of {len(tests)} tests failed; first: {why}", outputs)
    issues = outputs.get("lint", {}).get("issues")
    if issues:
        raise GateFailed(f"lint: {len(issues)} ruff issue(s); first: {issues[0]}", outputs)
    return outputs


def parse_junit(path: Path) -> list[dict]:
    """One dict per test case: name, outcome (passed/failed/skipped), duration, failure message."""
    if not path.exists():
        return []
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        skipped = case.find("skipped")
        outcome = "failed" if bad is not None else "skipped" if skipped is not None else "passed"
        message = (bad.get("message") if bad is not None else skipped.get("message") if skipped is not None else "")
        out.append({"name": f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}",
                    "outcome": outcome, "duration": round(float(case.get("time") or 0), 4),
                    "message": (message or "")[:500]})
    return out


def lint(ctx) -> dict:
    """ruff over the ML code the suite tests (only where ruff is installed)."""
    cmd = [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "engine/ml"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    issues = [line for line in proc.stdout.splitlines() if ":" in line and not line.startswith("Found")]
    ctx.log(f"ruff: {len(issues)} issue(s) in engine/ml", "ERROR" if issues else "INFO")
    return {"tool": "ruff", "issues": issues[:50], "exit_code": proc.returncode}

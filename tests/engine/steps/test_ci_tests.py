"""The ci_tests step on its own: its suite in a subprocess on this run's sample, the timeout that kills it, a run
that leaves no JUnit report, and the lint gate. The step gets a plain context (its YAML's parameters, with the
test's changes passed in); tests/engine/test_runner.py runs it inside real pipeline runs."""
from __future__ import annotations

import pytest

from engine import pipeline, warm
from engine.errors import GateFailed
from engine.steps import ci_tests
from tests.conftest import make_run, make_step

WINDOW = pipeline.spec("commit_received").params()["default_window"]


class Context:
    """What ci_tests reads from a StepContext: parameters, the run, its failure modes, a dir and a log."""

    def __init__(self, run_dir, modes=(), **params):
        self.params = {**pipeline.spec("ci_tests").params(), **params}
        self.run = make_run(seed=7, dataset_window=WINDOW)
        self.step = make_step("ci_tests", "running", attempt=1)
        self.run_dir, self.modes, self.lines = run_dir, set(modes), []

    def mode(self, name: str) -> bool:
        return name in self.modes

    def pytest(self, args, env, output):
        return warm.pytest(args, env, warm.ROOT, output)  # what StepContext.pytest does, minus the bookkeeping

    def log(self, message: str, level: str = "INFO") -> None:
        self.lines.append((level, message))


def test_a_healthy_run_passes_every_suite_test_and_the_lint(tmp_path):
    out = ci_tests.run(Context(tmp_path))
    assert out["exit_code"] == 0 and out["failed"] == 0 and out["skipped"] == 0
    assert out["passed"] == len(out["tests"]) >= 3
    assert {t["name"] for t in out["tests"]} >= {
        "test_training::test_the_ci_model_trained_on_this_runs_sample_clears_the_bar",
        "test_validation::test_this_runs_sample_meets_the_data_contract"}
    assert out["sample_rows"] == pipeline.spec("ci_tests").params()["sample_rows"]
    assert out["lint"] == {"tool": "ruff", "issues": [], "exit_code": 0}


def test_training_error_fails_the_suite_with_the_real_error_first(tmp_path):
    with pytest.raises(GateFailed) as failed:
        ci_tests.run(Context(tmp_path, modes={"training_error"}, lint=False))
    out = failed.value.outputs
    assert out["failed"] == 2 and out["exit_code"] == 1  # the model cannot train; the contract names the types
    assert str(failed.value).startswith(f"2 of {len(out['tests'])} tests failed; first: test_training::")
    assert "could not convert string to float" in str(failed.value)
    contract = next(t for t in out["tests"] if t["name"].endswith("meets_the_data_contract"))
    assert contract["outcome"] == "failed" and "billed_amount is str" in contract["message"]


def test_a_bar_the_model_cannot_reach_turns_the_suite_red(tmp_path):
    with pytest.raises(GateFailed, match="below min_roc_auc 0.99"):
        ci_tests.run(Context(tmp_path, min_roc_auc=0.99, lint=False))


def test_a_suite_that_outlives_its_timeout_is_killed(tmp_path, monkeypatch):
    # The suite never finishes by itself: it holds once configured (or is still starting when the time is up).
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p tests.engine.hold_ci_suite")
    monkeypatch.setenv("LAB_TEST_HOLD_FILE", str(tmp_path / "held"))
    ctx = Context(tmp_path, timeout_seconds=3, lint=False)
    with pytest.raises(GateFailed, match=r"0 of 0 tests failed; first: pytest exited with code -9") as failed:
        ci_tests.run(ctx)
    assert failed.value.outputs["tests"] == [] and failed.value.outputs["exit_code"] == -9
    assert ("INFO", "killed after 3 s (timeout_seconds in ci_tests.yaml)") in ctx.lines


def test_a_suite_that_writes_no_junit_report_fails_with_its_exit_code(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "--no-such-option")  # pytest stops at its command line: exit 4
    ctx = Context(tmp_path, lint=False)
    with pytest.raises(GateFailed, match=r"^0 of 0 tests failed; first: pytest exited with code 4$"):
        ci_tests.run(ctx)
    assert not (tmp_path / "junit-1.xml").exists()
    assert any("--no-such-option" in message for _, message in ctx.lines)  # pytest's own complaint is logged


def test_parse_junit_of_a_missing_file_is_no_tests(tmp_path):
    assert ci_tests.parse_junit(tmp_path / "absent.xml") == []


def test_lint_issues_fail_the_step_after_the_tests_pass(tmp_path, monkeypatch):
    issues = ["engine/ml/model.py:1:1: F401 [*] `os` imported but unused"]
    monkeypatch.setattr(ci_tests, "lint", lambda ctx: {"tool": "ruff", "issues": issues, "exit_code": 1})
    with pytest.raises(GateFailed, match=r"^lint: 1 ruff issue\(s\); first: engine/ml/model.py:1:1: F401") as failed:
        ci_tests.run(Context(tmp_path))
    out = failed.value.outputs
    assert out["failed"] == 0 and out["passed"] == len(out["tests"]) and out["lint"]["issues"] == issues


def test_only_the_first_suite_run_of_a_process_says_it_starts_the_warm_interpreter(tmp_path, monkeypatch):
    monkeypatch.setattr(warm._PYTEST, "_helper", None)  # as in a process that has not run a suite yet
    contexts = [Context(tmp_path / f"run{n}", lint=False) for n in (1, 2)]
    try:
        for ctx in contexts:
            ctx.run_dir.mkdir()
            ci_tests.run(ctx)
    finally:
        warm._PYTEST.close()  # this test's own helper ends (and the worker's is put back)
    starting = [[m for _, m in ctx.lines if m.startswith("starting the warm pytest interpreter")] for ctx in contexts]
    assert [len(s) for s in starting] == [1, 0]
    assert "once per process" in starting[0][0]

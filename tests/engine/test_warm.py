"""The warm interpreter the ci_tests step forks its pytest runs from (engine/warm.py), on its own.

The kill -9 and SIGTERM cases of a whole worker (helper and suites die with it) are in tests/faults and
tests/engine/test_scale_out.py.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from engine import warm
from tests.conftest import alive, wait_until


def write_suite(tmp_path, body: str):
    (tmp_path / "test_it.py").write_text(body)
    return [str(tmp_path / "test_it.py"), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]


def start(tmp_path, args, **env):
    return warm.pytest(args, {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env}, tmp_path,
                       tmp_path / "out.log")


def test_a_run_gets_its_own_environment_output_exit_code_and_process_group(tmp_path):
    args = write_suite(tmp_path, "import os\n"
                                 "def test_env():\n    assert os.environ['LAB_WARM_PROBE'] == 'yes'\n"
                                 "def test_group():\n    assert os.getpgid(0) == os.getpid()\n"
                                 "def test_red():\n    assert 1 == 2\n")
    run = start(tmp_path, args, LAB_WARM_PROBE="yes")
    assert run.wait(timeout=300) == 1  # pytest's "tests failed"
    output = (tmp_path / "out.log").read_text()
    assert "1 failed, 2 passed" in output and "assert 1 == 2" in output
    assert "LAB_WARM_PROBE" not in os.environ  # the child's environment stayed in the child


def test_a_killed_run_ends_with_sigkill_and_the_next_run_still_starts(tmp_path):
    args = write_suite(tmp_path, "import threading\n"
                                 "def test_hold():\n    threading.Event().wait()\n")
    run = start(tmp_path, args)
    with pytest.raises(subprocess.TimeoutExpired):
        run.wait(timeout=1)  # it holds for ever
    run.kill()
    assert run.wait(timeout=60) == -signal.SIGKILL
    ok = start(tmp_path, write_suite(tmp_path, "def test_ok():\n    pass\n"))
    assert ok.wait(timeout=300) == 0


def test_a_dead_helper_takes_its_runs_along_and_a_new_one_starts(tmp_path):
    held = start(tmp_path, write_suite(tmp_path, "import threading\n"
                                                 "def test_hold():\n    threading.Event().wait()\n"))
    helper = warm._PYTEST._helper.proc
    helper.kill()  # as if the OOM killer chose it
    assert held.wait(timeout=60) == -signal.SIGKILL
    wait_until(lambda: not alive(held.pid), timeout=60, what="the held run to die with its helper")
    ok = start(tmp_path, write_suite(tmp_path, "def test_ok():\n    pass\n"))
    assert ok.wait(timeout=300) == 0 and warm._PYTEST._helper.proc.pid != helper.pid


@pytest.mark.parametrize("ending, code, said", [("", 0, ""), ("sys.exit(3)", 3, ""),
                                                ("sys.exit('bad input')", 1, "bad input\n"),
                                                ("raise SystemExit", 0, "")])
def test_a_module_run_has_its_own_stdout_stderr_argv_name_and_exit_code(tmp_path, ending, code, said):
    (tmp_path / "probe.py").write_text("import os, sys\n"
                                       "name = open('/proc/self/comm').read()\n"
                                       "print('out', __name__, sys.argv[1:], os.environ['LAB_WARM_PROBE'], name)\n"
                                       "print('err', file=sys.stderr)\n" + ending + "\n")
    cli = warm.Warm(("json",))
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    run = cli.run("probe", ["a", "b c"], {**os.environ, "PYTHONPATH": str(tmp_path), "LAB_WARM_PROBE": "yes"},
                  tmp_path, out, err)
    try:
        assert run.wait(timeout=300) == code
    finally:
        cli.close()
    assert out.read_text() == "out __main__ ['a', 'b c'] yes probe\n\n"  # comm: `ps` shows what the child runs
    assert err.read_text() == "err\n" + said

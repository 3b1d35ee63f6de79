"""A pytest plugin that holds the ci_tests step's suite until its process is killed.

The scale-out crash test starts a worker with PYTEST_ADDOPTS="-p tests.engine.hold_ci_suite"; the step passes its
environment on to the suite's subprocess, so that worker is surely in the middle of ci_tests, with a child
process, when the test kills it. The file named by LAB_TEST_HOLD_FILE says the suite got there.
"""
import os
import threading
from pathlib import Path


def pytest_configure(config):
    Path(os.environ["LAB_TEST_HOLD_FILE"]).write_text(str(os.getpid()))
    threading.Event().wait()  # until the test kills the worker's process group

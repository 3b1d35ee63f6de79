"""The API tests' setup: HTTP to a real `streamlit run app.py` server (tests/conftest.serving), and the one server
both modules use that runs no steps.

Servers here start no worker (LAB_APP_WORKER=0) unless a test needs runs to move, so a run the webhook starts
stays queued and costs nothing.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import cli_env, make_settings, serving

HERE = Path(__file__).parent
SECRET = "It's a Secret to Everybody"  # GitHub's documented test secret, the webhook servers' too
PUSH = (HERE / "push_payload.json").read_bytes()  # a push delivery as GitHub sends it (head commit 0d1a26e...)


@dataclass
class Reply:
    """An HTTP answer: status, headers (lower-case names), raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        """The body as JSON."""
        return json.loads(self.body)


def call(base: str, method: str, path: str, body=None, headers: dict | None = None,
         token: str | None = None) -> Reply:
    """One HTTP request to the server at `base`: `body` bytes as they are, anything else as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return Reply(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except urllib.error.HTTPError as reply:
        return Reply(reply.code, {k.lower(): v for k, v in reply.headers.items()}, reply.read())


def call_chunked(base: str, path: str, body: bytes, headers: dict) -> int:
    """POST `body` in chunks with no Content-Length (Transfer-Encoding: chunked); the status."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request("POST", path, body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                     headers={"Content-Type": "application/json", **headers}, encode_chunked=True)
        return conn.getresponse().status
    finally:
        conn.close()


def server_env(settings, **extra: str) -> dict:
    """The environment of a dashboard server over `settings`: no worker, no token, no webhook, unless `extra`
    says otherwise (the developer's own LAB_* settings never leak in)."""
    return {**cli_env(settings), "LAB_APP_WORKER": "0", "LAB_DEMO": "0", "LAB_API_TOKEN": "",
            "LAB_WEBHOOK_SECRET": "", "LAB_WEBHOOK_BRANCHES": "", **extra}


@dataclass
class Server:
    """A running dashboard server: its base URL, the environment it was started with, and a Lab of this test
    process over the same store (to check what the server did without its one-second read cache)."""

    url: str
    env: dict
    lab: Any

    def run_ids(self) -> list[int]:
        """Every run in the store, newest first."""
        return [r.id for r in self.lab.runs(10_000)]


@contextmanager
def server(settings, log: Path, **extra: str):
    """A Server over `settings` (server_env plus `extra`), stopped on exit."""
    from engine.lab import Lab
    env = server_env(settings, **extra)
    lab = Lab(settings)
    try:
        with serving(env, log) as url:
            yield Server(url, env, lab)
    finally:
        lab.close()


@pytest.fixture(scope="session")
def quiet_server(tmp_path_factory, mlflow_template) -> Server:
    """A server with the webhook on (GitHub's test secret), no API token (so it takes no writes) and no worker.
    Shared by both modules: it runs nothing, so all a test can leave behind is queued runs."""
    data = tmp_path_factory.mktemp("quiet")
    with server(make_settings(data, None, mlflow_template), data / "streamlit.log", LAB_WEBHOOK_SECRET=SECRET) as up:
        yield up

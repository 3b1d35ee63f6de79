"""Shared fixtures: a fresh store on SQLite or PostgreSQL, a fresh MLflow SQLite store, a Lab over both.

PostgreSQL tests create their own database per test and drop it afterwards. When LAB_REQUIRE_POSTGRES=1 (CI
sets it) a missing server fails those tests instead of skipping them.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("LAB_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> str | None:
    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return None
    except Exception as exc:  # the reason is reported by the skip/fail below
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server():
    """The admin URL of a reachable PostgreSQL server (skip or fail otherwise)."""
    reason = _pg_available()
    if reason:
        msg = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {reason}"
        if os.environ.get("LAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg + " (LAB_REQUIRE_POSTGRES=1 makes PostgreSQL tests mandatory)")
        pytest.skip(msg)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server):
    """A URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = f"lab_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh state store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema migrated once; tests copy it (migrating costs ~1.5 s)."""
    from engine.tracking import Tracking
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Tracking(f"sqlite:///{path}").client.search_experiments()
    return path


@pytest.fixture
def settings(tmp_path, db_url, mlflow_template):
    """Settings for a lab in tmp_path over `db_url` and a fresh MLflow store."""
    from engine.config import Settings
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    return Settings.from_env({}, data_dir=tmp_path, database_url=db_url,
                             tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                             artifact_root=(tmp_path / "mlartifacts").as_uri(),
                             tick_seconds=0.2, heartbeat_seconds=0.3, stale_seconds=2.0)


@pytest.fixture
def lab(settings):
    """A Lab over `settings`; its runner is not started (tests drive it)."""
    from engine.lab import Lab
    lab = Lab(settings)
    yield lab
    lab.close()


def cli_env(settings) -> dict:
    """Environment that points `python -m engine` subprocesses at `settings`."""
    return {**os.environ, "LAB_DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.database_url,
            "MLFLOW_TRACKING_URI": settings.tracking_uri, "MLFLOW_ARTIFACT_ROOT": settings.artifact_root,
            "LAB_TICK_SECONDS": str(settings.tick_seconds), "LAB_HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
            "LAB_STALE_SECONDS": str(settings.stale_seconds), "PYTHONPATH": str(Path(__file__).parents[1])}

"""The schema is Alembic's: stores made by earlier commits open with this code, migrate forward in place and keep
their history; a store newer than the code is refused; the migrations and engine/store.py never disagree.

tests/engine/stores/lab-<commit>.sql are SQLite dumps of lab stores made by those commits' own code (a run failed in
data_validation under schema_validation, then a run through CI). On PostgreSQL the same tables and rows are copied
into a fresh database as those commits' `create_all` made them.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import migrations
from engine.lab import Lab
from engine.store import Store, metadata
from tests.conftest import make_settings

STORES = sorted((Path(__file__).parent / "stores").glob("lab-*.sql"))


def load_old_store(dump: Path, url: str) -> None:
    """Recreate the store in `dump` at `url` (an empty database), tables and rows as the old code left them."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript(dump.read_text())
        return
    source = sa.create_engine("sqlite://")
    with source.begin() as c:
        c.connection.driver_connection.executescript(dump.read_text())
    old = sa.MetaData()
    old.reflect(source)
    target = sa.create_engine(url)
    with source.connect() as src, target.begin() as dst:
        old.create_all(dst)
        for table in old.sorted_tables:
            rows = [dict(r) for r in src.execute(sa.select(table)).mappings()]
            if rows:
                dst.execute(sa.insert(table), rows)
            if "id" in table.c and isinstance(table.c.id.type, sa.Integer) and rows:
                dst.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                    f"(SELECT max(id) FROM {table.name}))"))
    target.dispose()


def revision_of(store: Store) -> str | None:
    with store.engine.connect() as c:
        return migrations.current(c)


@pytest.fixture(params=STORES, ids=lambda p: p.stem.removeprefix("lab-"))
def old_lab(request, db_url, tmp_path, mlflow_template):
    load_old_store(request.param, db_url)
    lab = Lab(make_settings(tmp_path / "lab", db_url, mlflow_template))
    yield lab
    lab.close()


def test_an_older_store_opens_migrated_keeps_its_history_retries_and_runs_a_new_lifecycle(old_lab):
    lab = old_lab
    assert revision_of(lab.store) == migrations.known()[0]
    assert {r.id: r.status for r in lab.runs()} == {1: "failed", 2: "ci_complete"}
    failed = lab.run(1)
    assert next(s for s in failed.steps if s.name == "data_validation").status == "failed"
    assert lab.logs(1) and lab.logs(2)  # their logs came along

    lab.retry(1, by="operator")  # schema_validation is off now: the retried step passes
    lab.runner.run_until_idle()
    retried = lab.run(1)
    assert retried.status == "ci_complete"
    assert next(s for s in retried.steps if s.name == "data_validation").attempt == 2

    run_id = lab.commit(message="after the upgrade", seed=91, author="operator")
    assert run_id == 3
    lab.runner.run_until_idle()
    lab.continue_run(run_id, by="operator")
    lab.runner.run_until_idle()
    lab.approve(run_id, by="operator", comment="first model on the migrated store")
    lab.runner.run_until_idle()
    assert lab.run(run_id).status == "promoted"
    assert lab.tracking.alias_version("champion") is not None


def test_a_store_newer_than_the_code_is_refused_and_left_alone(db_url):
    store = Store(db_url)
    with store.tx() as c:
        c.execute(sa.text(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'"))
    store.dispose()
    with pytest.raises(migrations.StoreTooNew, match="newer version of the lab"):
        Store(db_url)
    with sa.create_engine(db_url).connect() as c:
        assert migrations.current(c) == "9999"


def test_migrations_from_scratch_build_exactly_the_tables_the_store_declares(db_url):
    store = Store(db_url)
    with store.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
    store.dispose()


def test_opening_a_migrated_store_again_changes_nothing(db_url):
    Store(db_url).dispose()
    store = Store(db_url)
    assert revision_of(store) == migrations.known()[0]
    store.dispose()


def test_a_demo_session_from_before_visitors_and_leases_reads_after_the_upgrade(db_url, tmp_path):
    """The autopilot made its own table with create_all (no visitor column before 050c770, a heartbeat on its own
    clock until leases): an old finished session survives the migration and reads with no visitor."""
    from engine import autopilot
    old = sa.MetaData()
    sa.Table("autopilot_sessions", old, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("by", sa.String(200), nullable=False), sa.Column("started_at", sa.Float, nullable=False),
             sa.Column("heartbeat_at", sa.Float, nullable=False), sa.Column("finished_at", sa.Float),
             sa.Column("outcome", sa.String(20)), sa.Column("stop_requested", sa.Boolean, nullable=False))
    engine = sa.create_engine(db_url)
    with engine.begin() as c:
        old.create_all(c)
        c.execute(sa.text("INSERT INTO autopilot_sessions (by, started_at, heartbeat_at, stop_requested, outcome, "
                          "finished_at) VALUES ('demo', 1, 1, false, 'done', 2)"))
    engine.dispose()
    lab = Lab(make_settings(tmp_path / "lab", db_url))
    try:
        session = autopilot.latest_session(lab)
        assert (session["by"], session["outcome"], session["visitor"], session["alive"]) == ("demo", "done", None,
                                                                                            False)
        pilot = autopilot.Autopilot(lab, visitor="ip:a")
        pilot.open()
        assert autopilot.latest_session(lab)["visitor"] == "ip:a" and autopilot.is_active(autopilot.latest_session(lab))
    finally:
        lab.close()

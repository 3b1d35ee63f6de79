"""The lab's schema, owned by Alembic: `upgrade(conn)` brings any store made by this repository to the current code.

Revisions live in versions/ and only go forward. A store made before Alembic took over (no `alembic_version` table)
is adopted by the baseline revision, which creates what it lacks and keeps what it has. A store migrated by newer
code than this (its revision unknown here) is refused with StoreTooNew: running old code on it could lose data.

A new revision: change the tables in engine/store.py, then add versions/NNNN_what.py (script.py.mako is the
template; `down_revision` is the previous head) doing the same change with `op`. tests/engine/test_migrations.py
compares a store migrated from scratch with engine/store.py's tables, so a change without its revision fails.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).parent
VERSION_TABLE = "alembic_version"


class StoreTooNew(RuntimeError):
    """The store was migrated by a newer version of the lab than this one."""


def config(conn=None):
    """An Alembic Config for this folder (no ini file needed), handing `conn` to env.py."""
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = conn
    return cfg


@lru_cache(maxsize=1)
def known() -> tuple[str, frozenset[str]]:
    """(head revision, every revision this code knows)."""
    from alembic.script import ScriptDirectory
    script = ScriptDirectory.from_config(config())
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


def current(conn) -> str | None:
    """The store's revision (None: never migrated, empty or made before Alembic)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(conn) -> str:
    """Migrate the store on `conn` (inside the caller's transaction, which holds the schema lock) to head; return
    the revision it was at before (or "none"). Raise StoreTooNew for a store ahead of this code."""
    head, revisions = known()
    before = current(conn)
    if before == head:
        return before
    if before is not None and before not in revisions:
        raise StoreTooNew(
            f"this store's schema is at revision {before}, made by a newer version of the lab than this one "
            f"(which knows up to {head}); run the newer code, or point LAB_DATA_DIR / LAB_DATABASE_URL at another "
            "store")
    from alembic import command
    command.upgrade(config(conn), "head")
    return before or "none"

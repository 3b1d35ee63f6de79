"""Kept so that `from tests.engine.conftest import ...` still works: the helpers live in tests/conftest.py."""
from tests.conftest import (  # noqa: F401
    ROOT,
    alive,
    children_of,
    engine_cli,
    fresh_pg_database,
    group_members,
    kill_group,
    make_settings,
    module_store_url,
    start_worker,
    wait_until,
)

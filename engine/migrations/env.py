"""Alembic's environment for the lab's tables: migrations run on the connection engine.migrations.upgrade hands
over (inside the store's schema lock), never on a URL of their own."""
from alembic import context

from engine.store import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata,
                  render_as_batch=True)  # SQLite alters a table by copying it; batch mode does that for us
with context.begin_transaction():
    context.run_migrations()

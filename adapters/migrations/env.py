"""Alembic's environment: run the migrations on the connection ppk hands over (never from a URL here)."""

from __future__ import annotations

from alembic import context

from ppk.adapters.schema import metadata

connection = context.config.attributes["connection"]
# SQLite alters a table by copying it; Alembic's batch mode does that for us.
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite"
)
with context.begin_transaction():
    context.run_migrations()

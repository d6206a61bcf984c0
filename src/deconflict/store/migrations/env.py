"""Alembic environment: runs on the connection the store hands over."""

from alembic import context

from deconflict.store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - run through deconflict.store.open_store
    raise RuntimeError("run migrations through deconflict.store.open_store")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

"""Alembic's migrations of the SQL store's schema (spec.md#database); `ppk db upgrade` runs them."""

"""Alembic's environment and revisions for the store; `Store.open` upgrades to head with them."""

"""The store: subscriptions, reported records, alert threads and digest runs (SQLite | PostgreSQL).

`Store` (repository.py) is the only way in; it returns the plain values of `models.py` and raises
the exceptions of `exceptions.py`. The schema (`schema.py`) is built by Alembic (`migrations/`).
"""

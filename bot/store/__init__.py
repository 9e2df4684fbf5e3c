"""The store: subscriptions, reported records, alert threads and digest runs (SQLite | PostgreSQL).

`Store` (repository.py) is the only way in: the queries of `subscriptions.py` and
`alert_threads.py` over one `Database` (engine.py). It returns the plain values of
`bot.domain.alerts` and raises the exceptions of `exceptions.py`. The schema (`schema.py`) is
built by Alembic (`migrations/`).
"""

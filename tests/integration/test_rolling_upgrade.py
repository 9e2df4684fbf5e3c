"""Rolling upgrades: while replicas are replaced one by one, the previous release runs on the
schema the new one migrated to. So no revision drops or renames a table or a column the one
before it had, and every column it adds can be left out of an INSERT (nullable or with a
server default) — the previous release's statements never name it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from bot.store.engine import MIGRATIONS


def _config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(_config(None))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _schema(connection: Any) -> dict[str, dict[str, dict[str, Any]]]:
    found = inspect(connection)
    return {
        table: {column["name"]: column for column in found.get_columns(table)}
        for table in found.get_table_names()
    }


def test_the_revisions_are_in_order() -> None:
    assert _revisions() == sorted(_revisions())
    assert len(_revisions()) >= 4


@pytest.mark.parametrize(
    ("before", "after"), list(zip(_revisions(), _revisions()[1:], strict=False))
)
def test_each_revision_keeps_the_previous_release_working(
    before: str, after: str, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        with engine.begin() as connection:
            command.upgrade(_config(connection), before)
            old = _schema(connection)
            command.upgrade(_config(connection), after)
            new = _schema(connection)
    finally:
        engine.dispose()
    for table, columns in old.items():
        assert table in new, f"{after} drops the table {table}"
        gone = set(columns) - set(new[table])
        assert not gone, f"{after} drops or renames {table}.{', '.join(sorted(gone))}"
    for table, columns in new.items():
        for name, column in columns.items():
            if name in old.get(table, {}) or table not in old:
                continue
            assert column["nullable"] or column["default"] is not None, (
                f"{after} adds {table}.{name} NOT NULL without a server default: the previous "
                "release's inserts would fail"
            )

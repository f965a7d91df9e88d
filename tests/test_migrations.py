"""Migrations: all of them apply to an empty SQLite and PostgreSQL database (the `db_url` fixture
starts from nothing), re-running them is a no-op (upgrades run `suggestbox migrate`), and the
models have not drifted from the committed migrations (what `tortoise makemigrations` checks)."""

from __future__ import annotations

import pkgutil
import sys
from pathlib import Path
from typing import Any

from tortoise.cli.cli import tortoise_cli_context
from tortoise.connection import connections
from tortoise.migrations.autodetector import MigrationAutodetector

import suggestbox.migrations
from suggestbox import models
from suggestbox.db import migrate, orm
from suggestbox.settings import MIGRATIONS_MODULE, Settings, tortoise_config


def model_tables() -> set[str]:
    return {
        m._meta.db_table for m in vars(models).values()
        if isinstance(m, type) and issubclass(m, models.Model) and m is not models.Model
        and not m._meta.abstract
    }


def migration_names() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(suggestbox.migrations.__path__)
            if m.name[:4].isdigit()}


async def _tables_and_applied(db_url: str) -> tuple[set[str], set[str]]:
    settings = Settings(database_url=db_url, secret_key="x" * 40)
    async with orm(settings):
        conn = connections.get("default")
        if db_url.startswith("sqlite"):
            _, rows = await conn.execute_query(
                "SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            _, rows = await conn.execute_query(
                "SELECT table_name AS name FROM information_schema.tables "
                "WHERE table_schema = 'public'")
        tables = {r["name"] for r in rows}
        recorder = next(t for t in tables if "migration" in t)
        _, rows = await conn.execute_query(f'SELECT name FROM "{recorder}"')
        return tables, {r["name"] for r in rows}


async def test_all_migrations_apply_to_an_empty_database(db_url: str) -> None:
    tables, applied = await _tables_and_applied(db_url)
    assert model_tables() <= tables, model_tables() - tables
    assert applied == migration_names()
    # Upgrading an up-to-date database changes nothing and does not fail.
    await migrate(db_url)
    assert await _tables_and_applied(db_url) == (tables, applied)


async def _changes(migrations_module: str) -> list[Any]:
    config = tortoise_config("sqlite://:memory:")
    config["apps"]["models"]["migrations"] = migrations_module
    async with tortoise_cli_context(config) as ctx:
        assert ctx.apps is not None
        return await MigrationAutodetector(ctx.apps, config["apps"]).changes()


async def test_models_match_the_committed_migrations() -> None:
    writers = await _changes(MIGRATIONS_MODULE)
    assert writers == [], (
        "models.py differs from suggestbox/migrations: run `.venv/bin/tortoise makemigrations` "
        "and commit the new migration. Pending: "
        + "; ".join(f"{w.name}: {[type(op).__name__ for op in w.operations]}" for w in writers)
    )


async def test_the_drift_check_sees_a_difference(tmp_path: Path, monkeypatch: Any) -> None:
    # Against an empty migrations package every model is "new": the detector is live.
    package = tmp_path / "sb_empty_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        writers = await _changes("sb_empty_migrations")
    finally:
        sys.modules.pop("sb_empty_migrations", None)
    assert len(writers) == 1
    created = {getattr(op, "name", "") for op in writers[0].operations}
    assert {"Case", "Event", "StaffUser"} <= created

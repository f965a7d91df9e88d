"""Migrations: all of them apply to an empty SQLite and PostgreSQL database (the `db_url` fixture
starts from nothing), re-running them is a no-op (upgrades run `suggestbox migrate`), and the
models have not drifted from the committed migrations (what `tortoise makemigrations` checks)."""

from __future__ import annotations

import pkgutil
import sys
from pathlib import Path
from typing import Any

import pytest
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


# ---- order privacy (DESIGN.md §1.3) ----------------------------------------------------------

async def test_sqlite_mixed_tables_have_no_rowid(tmp_path):
    """Submitter rows sit between exact-time staff rows in these tables: no insertion order."""
    import sqlite3

    path = tmp_path / "order.sqlite3"
    await migrate(f"sqlite://{path}")
    conn = sqlite3.connect(path)
    try:
        for table in ("event", "notify_outbox", "photo"):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).fetchone()[0]
            assert sql.upper().rstrip().endswith("WITHOUT ROWID"), (table, sql)
            with pytest.raises(sqlite3.OperationalError):
                conn.execute(f'SELECT rowid FROM "{table}"')
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


async def test_postgres_scrub_gives_a_days_submitter_rows_one_newer_xmin(pg_url):
    """Before: a submitter's rows have an xmin between two staff actions. After the nightly
    scrub: every submitter row of the day shares one xmin, newer than any staff row."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from tortoise import Tortoise

    from suggestbox import cases, privacy
    from suggestbox.models import Case, Event, StaffUser
    from suggestbox.settings import tortoise_config
    from tests.conftest import seed_case, workshop_today

    tz = ZoneInfo("Asia/Shanghai")
    await Tortoise.init(config=tortoise_config(pg_url))
    try:
        lead = await StaffUser.create(username="lead", role="leader", password_hash="x")
        first = await seed_case("第一件事，先提交。")
        await cases.apply(first.id, "note", lead, now=datetime.now(UTC), tz=tz, body="staff 1")
        second = await seed_case("第二件事，在两次工作人员操作之间提交。")
        await cases.apply(first.id, "note", lead, now=datetime.now(UTC), tz=tz, body="staff 2")
        conn = connections.get("default")

        async def xmin(sql: str, *args: object) -> list[int]:
            _, rows = await conn.execute_query(sql, list(args))
            return [int(r["x"]) for r in rows]

        staff = await xmin('SELECT xmin::text::bigint AS x FROM "event" WHERE NOT by_submitter '
                           'ORDER BY seq')
        own = await xmin('SELECT xmin::text::bigint AS x FROM "case" WHERE id = $1', second.id)
        assert staff[0] < own[0] < staff[1]  # the leak the scrub removes
        assert await privacy.scrub_order(workshop_today(), tz)
        rows = await xmin('SELECT xmin::text::bigint AS x FROM "case"') + await xmin(
            'SELECT xmin::text::bigint AS x FROM "event" WHERE by_submitter')
        assert len(set(rows)) == 1 and rows[0] > max(staff)
        assert await Case.all().count() == 2 and await Event.all().count() == 4
    finally:
        await Tortoise.close_connections()

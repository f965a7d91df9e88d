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
        for table in ("event", "notify_outbox", "photo", "case", "used_form_token"):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).fetchone()[0]
            assert sql.upper().rstrip().endswith("WITHOUT ROWID"), (table, sql)
            with pytest.raises(sqlite3.OperationalError):
                conn.execute(f'SELECT rowid FROM "{table}"')
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


async def xmin(sql: str, *args: object) -> list[int]:
    """PostgreSQL transaction ids of the selected rows (column ``x``)."""
    _, rows = await connections.get("default").execute_query(sql, list(args))
    return [int(r["x"]) for r in rows]


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


async def test_storage_order_rebuild_keeps_data_and_foreign_keys(tmp_path):
    """Migration 0010 rebuilds `case` (referenced by events and photos) and `used_form_token`
    WITHOUT ROWID on a database that already holds cases: rows, links and receipts survive."""
    import sqlite3

    from tortoise import Tortoise
    from tortoise.migrations.api import migrate as tortoise_migrate

    from suggestbox.db import migrate
    from suggestbox.settings import tortoise_config

    path = tmp_path / "old.sqlite3"
    url = f"sqlite://{path}"
    await tortoise_migrate(config=tortoise_config(url), target="models.0009_photo")
    await Tortoise.close_connections()
    conn = sqlite3.connect(path)
    try:
        conn.executescript(
            "INSERT INTO category (id, name, deadline_days, sort_order, active) "
            "VALUES (90, '测试', 7, 0, 1);"
            "INSERT INTO \"case\" (id, receipt_hash, category_id, body, status, received_on, "
            "reopen_count, published, show_reply) VALUES ('11111111-1111-1111-1111-111111111111',"
            " 'h1', 90, '旧库里的案件', 'new', '2026-11-01', 0, 0, 0);"
            "INSERT INTO event (id, case_id, seq, action, by_submitter, public, at) VALUES "
            "('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', 1,"
            " 'submit', 1, 1, '2026-11-01T00:00:00+08:00');"
            "INSERT INTO used_form_token (id, wrapped, used_on) VALUES ('t1', '', '2026-11-01');")
        conn.commit()
        before = conn.execute('SELECT * FROM "case"').fetchall()
    finally:
        conn.close()
    await migrate(url)
    conn = sqlite3.connect(path)
    try:
        after = conn.execute('SELECT * FROM "case"').fetchall()
        # Later migrations add columns (0011: unit_id, workshop_id → the default workshop;
        # 0012: source_id → 扫码, supports → 0; 0014: clock_at → NULL, urges → 0).
        assert [row[:len(before[0])] for row in after] == before
        n = len(before[0])
        assert [row[n:n + 4] for row in after] == [(1, 1, 1, 0)]
        # 0015 (落实, adoption review, rewards): its category is not 建议, nothing set.
        cols = [r[1] for r in conn.execute('PRAGMA table_info("case")')]
        row = dict(zip(cols, after[0], strict=True))
        assert row["adoption_review"] == 0 and row["promised_on"] is None
        assert row["reward_state"] is None and row["carried_out_at"] is None
        # 0014 (urgency): no clock, no 催办.
        assert row["clock_at"] is None and row["urges"] == 0
        assert conn.execute("SELECT COUNT(*) FROM used_form_token").fetchone() == (1,)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):  # the event still points at its case
            conn.execute("DELETE FROM \"case\"")
        for table in ("case", "used_form_token"):
            with pytest.raises(sqlite3.OperationalError):
                conn.execute(f'SELECT rowid FROM "{table}"')
    finally:
        conn.close()


async def test_postgres_scrub_covers_older_cases_a_submitter_touched(pg_url):
    """A follow-up today on a case received days ago rewrites that case's row between two staff
    actions; the scrub for today gives it the day's shared xmin too."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from tortoise import Tortoise

    from suggestbox import cases, privacy
    from suggestbox.models import Case, StaffUser
    from suggestbox.settings import tortoise_config
    from tests.conftest import seed_case, workshop_today

    tz = ZoneInfo("Asia/Shanghai")
    today = workshop_today()
    await Tortoise.init(config=tortoise_config(pg_url))
    try:
        lead = await StaffUser.create(username="lead", role="leader", password_hash="x")
        old = await seed_case("上周提交的事。")
        await Case.filter(id=old.id).update(received_on=today - timedelta(days=6))
        other = await seed_case("另一件事。")
        await cases.apply(other.id, "note", lead, now=datetime.now(UTC), tz=tz, body="staff 1")
        # A rating-like touch of the old case: a follow-up that also bumps the case row.
        await cases.apply(old.id, "followup", None, now=datetime.now(UTC), tz=tz, body="补充")
        await Case.filter(id=old.id).update(reopen_count=0)  # as a rating would rewrite it
        await cases.apply(other.id, "note", lead, now=datetime.now(UTC), tz=tz, body="staff 2")

        staff = await xmin('SELECT xmin::text::bigint AS x FROM "event" WHERE NOT by_submitter '
                           'ORDER BY seq')
        touched = await xmin('SELECT xmin::text::bigint AS x FROM "case" WHERE id = $1', old.id)
        assert staff[0] < touched[0] < staff[1]
        assert await privacy.scrub_order(today, tz)
        after = await xmin('SELECT xmin::text::bigint AS x FROM "case" WHERE id = $1', old.id)
        submitter = await xmin('SELECT xmin::text::bigint AS x FROM "event" WHERE by_submitter')
        assert after[0] > max(staff) and set(submitter) == {after[0]}
    finally:
        await Tortoise.close_connections()


async def test_follow_up_numbers_do_not_place_it_among_the_days_staff_events(app):
    """A follow-up between two staff events of the same day: the staff events stay numbered
    1, 2, 3 …, the follow-up's number lies outside them, and the timeline shows it at the start
    of its day (after the submission)."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from suggestbox import cases
    from suggestbox.models import Event
    from tests.conftest import add_user, seed_case

    tz = ZoneInfo("Asia/Shanghai")
    lead = await add_user("lead", "leader")
    case = await seed_case("夜班的热水器坏了。")
    now = datetime.now(UTC)
    await cases.apply(case.id, "note", lead, now=now, tz=tz, body="上午：已联系后勤")
    await cases.apply(case.id, "followup", None, now=now, tz=tz, body="补充：二楼也坏了")
    await cases.apply(case.id, "followup", None, now=now, tz=tz, body="补充：三楼也坏了")
    await cases.apply(case.id, "note", lead, now=now + timedelta(minutes=1), tz=tz,
                      body="下午：已修好")
    events = await Event.filter(case_id=case.id).order_by("seq")
    staff_and_submit = [e.seq for e in events if e.action != "followup"]
    assert staff_and_submit == [1, 2, 3]  # no gap where the follow-ups came
    follow = [e.seq for e in events if e.action == "followup"]
    assert all(s < 0 for s in follow) and follow[1] == follow[0] + 1
    shown = [e.action for e in await cases.timeline(case, public_only=False, tz=tz)]
    assert shown == ["submit", "followup", "followup", "note", "note"]


async def test_events_without_a_status_change_record_no_status(app):
    """A note written after a worker's 不满意 must not say so through its stored status."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from suggestbox import cases
    from suggestbox.models import Event
    from tests.conftest import add_user, seed_case

    tz = ZoneInfo("Asia/Shanghai")
    lead = await add_user("lead", "leader")
    case = await seed_case("更衣室漏水。")
    now = datetime.now(UTC)
    await cases.apply(case.id, "accept", lead, now=now, tz=tz, assignee_id=lead.id)
    await cases.apply(case.id, "reply", lead, now=now, tz=tz, body="已修。")
    await cases.apply(case.id, "note", lead, now=now, tz=tz, body="before")
    await cases.apply(case.id, "rate", None, now=now, tz=tz, rating="unsatisfied", body="没修好")
    await cases.apply(case.id, "note", lead, now=now, tz=tz, body="after")
    notes = await Event.filter(case_id=case.id, action__in=["note", "followup", "transfer"])
    assert notes and all(e.from_status is None and e.to_status is None for e in notes)
    reopened = await Event.get(case_id=case.id, action="rate_unsatisfied")
    assert (reopened.from_status, reopened.to_status) == ("answered", "in_progress")

"""`suggestbox backup` then `suggestbox restore` into a fresh database gives the same data
(SQLite online backup API; pg_dump/pg_restore for PostgreSQL), through the real command line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from suggestbox import cases
from suggestbox.backup import pg_env
from tests.conftest import ROOT, _pg_admin, add_user, pg_base_and_name, seed_case, workshop_today

TZ = ZoneInfo("Asia/Shanghai")


def run_cli(db_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUGGESTBOX_")}
    env.update(SUGGESTBOX_DATABASE_URL=db_url, SUGGESTBOX_DATA_DIR=str(tmp / "cli-data"),
               SUGGESTBOX_SECRET_KEY="backup-test-key-" + "q" * 30)
    return subprocess.run([sys.executable, "-m", "suggestbox.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


async def dump_tables(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted, read with the raw driver (not the ORM)."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split("://", 1)[1])
        try:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
                    for n in names}
        finally:
            conn.close()
    import asyncpg

    pg = await asyncpg.connect(db_url.replace("postgres://", "postgresql://", 1))
    try:
        names = [r[0] for r in await pg.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        out = {}
        for n in names:
            rows = await pg.fetch(f'SELECT * FROM "{n}"')
            out[n] = sorted((tuple(r.values()) for r in rows), key=repr)
        return out
    finally:
        await pg.close()


async def make_history() -> None:
    """Cases with a real timeline: submitted, accepted, started, answered, rated, closed."""
    leader = await add_user("leader1", "leader")
    handler = await add_user("handler1", "handler")
    now = datetime.now(UTC)
    first = await seed_case("车间照明不足，夜班检修看不清。")
    await cases.apply(first.id, "accept", leader, now=now, tz=TZ, assignee_id=handler.id,
                      deadline=workshop_today())
    await cases.apply(first.id, "start", handler, now=now, tz=TZ)
    await cases.apply(first.id, "reply", handler, now=now, tz=TZ, body="已加装两盏灯。")
    await cases.apply(first.id, "rate", None, now=now, tz=TZ, rating="satisfied", body="谢谢")
    await cases.apply(first.id, "close", leader, now=now, tz=TZ)
    second = await seed_case("希望更衣室增加储物柜。")
    await cases.apply(second.id, "reject", leader, now=now, tz=TZ, body="已在计划中，重复。")
    import io

    from PIL import Image

    from suggestbox import photos

    shot = io.BytesIO()
    Image.new("RGB", (300, 200), "orange").save(shot, "JPEG")
    await seed_case("安全隐患：三号台位扶梯松动。", category_id=4,
                    photos=[photos.clean(shot.getvalue())])  # photos are in the backup too


async def test_backup_then_restore_gives_identical_data(
    app: Any, db_url: str, tmp_path: Path
) -> None:
    await make_history()
    source = await dump_tables(db_url)
    assert len(source["case"]) == 3
    assert len(source["event"]) >= 8
    backup_file = tmp_path / "backups" / "suggestbox.backup"

    done = run_cli(db_url, tmp_path, "backup", "--out", str(backup_file))  # service running
    assert done.returncode == 0, done.stderr
    assert "备份不含密钥" in done.stdout
    assert backup_file.stat().st_mode & 0o077 == 0  # holds case text: owner only
    assert not list(backup_file.parent.glob(".*partial"))

    if db_url.startswith("sqlite"):
        target = f"sqlite://{tmp_path / 'restored' / 'suggestbox.sqlite3'}"
        created = None
    else:
        base, created = pg_base_and_name()
        await _pg_admin(f'CREATE DATABASE "{created}"')
        target = f"{base}/{created}"
    try:
        done = run_cli(target, tmp_path, "restore", "--in", str(backup_file))
        assert done.returncode == 0, done.stderr
        restored = await dump_tables(target)
        assert restored == source
        assert restored["case"] and restored["event"]

        # Restoring over data is refused, and leaves the data alone.
        again = run_cli(target, tmp_path, "restore", "--in", str(backup_file))
        assert again.returncode == 1
        assert "不是空的" in again.stderr
        assert await dump_tables(target) == source

        # The restored database knows its migrations: an upgrade run is a no-op.
        migrated = run_cli(target, tmp_path, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert await dump_tables(target) == source
    finally:
        if created:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


async def test_restore_refuses_a_backup_of_the_other_kind(db_url: str, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a backup")
    done = run_cli(db_url, tmp_path, "restore", "--in", str(bogus))
    assert done.returncode == 1
    assert "不是 suggestbox 备份" in done.stderr
    other = tmp_path / "other.backup"
    other.write_bytes(b"PGDMP" if db_url.startswith("sqlite") else b"SQLite format 3\x00")
    done = run_cli(db_url, tmp_path, "restore", "--in", str(other))
    assert done.returncode == 1
    assert "不能恢复到" in done.stderr


def test_pg_env_keeps_the_password_off_the_command_line() -> None:
    env = pg_env("postgres://box%40user:p%2Fw@db.internal:5433/suggest_box")
    assert env == {"PGHOST": "db.internal", "PGPORT": "5433", "PGDATABASE": "suggest_box",
                   "PGUSER": "box@user", "PGPASSWORD": "p/w"}


@pytest.mark.parametrize("url", ["sqlite://{tmp}/missing/none.sqlite3"])
def test_backup_of_a_missing_sqlite_file_fails_cleanly(url: str, tmp_path: Path) -> None:
    out = tmp_path / "x.backup"
    done = run_cli(url.format(tmp=tmp_path), tmp_path, "backup", "--out", str(out))
    assert done.returncode == 1
    assert "没有 SQLite 数据库文件" in done.stderr
    assert not out.exists()

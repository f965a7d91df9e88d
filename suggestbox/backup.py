"""``suggestbox backup`` and ``suggestbox restore``.

- SQLite: the sqlite3 module's online backup API (a consistent copy while the service runs);
  restore copies the backup into the configured file the same way.
- PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --single-transaction`` (the PostgreSQL
  client tools must be installed and at least as new as the server). Connection details go to
  the tools through ``PG*`` environment variables, never on the command line.

Restore refuses a database that already has tables: restore into a fresh, empty database (stop
the service, create or delete the database, restore, start: migrations newer than the backup are
applied on start or by ``suggestbox migrate``).

The secret key is not part of a backup. It keys the receipt hashes: keep
``SUGGESTBOX_SECRET_KEY`` (or ``<data dir>/secret_key``) with the backups, or every receipt code
stops working after a restore.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .settings import Settings

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
KEY_REMINDER = ("注意：备份不含密钥（SUGGESTBOX_SECRET_KEY 或 数据目录/secret_key），"
                "请另行妥善保存。")


class BackupError(Exception):
    """A backup or restore that cannot proceed; the message is for the operator."""


def pg_env(database_url: str) -> dict[str, str]:
    """``PG*`` variables for the client tools from a Tortoise ``postgres://`` URL."""
    parts = urlsplit(database_url)
    env = {
        "PGHOST": parts.hostname or "localhost",
        "PGPORT": str(parts.port or 5432),
        "PGDATABASE": unquote(parts.path.lstrip("/")),
    }
    if parts.username:
        env["PGUSER"] = unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"找不到 {name}：请安装 PostgreSQL 客户端"
                          "（apt-get install postgresql-client）。")
    return path


def _run(cmd: list[str], database_url: str) -> None:
    env = {**os.environ, **pg_env(database_url)}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} 失败：{result.stderr.strip()[-2000:]}")


def _private_tmp(out: Path) -> Path:
    """A new file next to ``out``, readable by the owner only (a backup holds case text)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return tmp



def _sqlite_copy(src: sqlite3.Connection, dst_path: Path) -> None:
    """SQLite's online backup API (consistent while the app writes), to an owner-only file."""
    dst = sqlite3.connect(dst_path)
    try:
        src.backup(dst)
    finally:
        dst.close()
    os.chmod(dst_path, 0o600)

def backup(settings: Settings, out_file: str | os.PathLike[str]) -> str:
    """Write a backup of the configured database to ``out_file``; return a message."""
    out = Path(out_file)
    tmp = _private_tmp(out)
    try:
        if settings.is_sqlite:
            src_path = settings.sqlite_path
            if src_path is None or not src_path.is_file():
                raise BackupError(f"没有 SQLite 数据库文件：{src_path}")
            tmp.unlink()
            src = sqlite3.connect(src_path)
            try:
                _sqlite_copy(src, tmp)
            finally:
                src.close()
        else:
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  f"--file={tmp}"], settings.database_url)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return f"已备份到 {out}（{out.stat().st_size} 字节）。\n{KEY_REMINDER}"


def _kind(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgres"
    raise BackupError(f"{path} 不是 suggestbox 备份"
                      "（既不是 SQLite 文件，也不是 pg_dump 自定义格式）。")


def _sqlite_tables(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        return int(row[0])
    finally:
        conn.close()


async def _pg_tables(database_url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        return int(count)
    finally:
        await conn.close()


def restore(settings: Settings, in_file: str | os.PathLike[str]) -> str:
    """Restore ``in_file`` into the configured (empty) database; return a message."""
    src_path = Path(in_file)
    if not src_path.is_file():
        raise BackupError(f"没有文件 {src_path}。")
    kind = _kind(src_path)
    target = "sqlite" if settings.is_sqlite else "postgres"
    if kind != target:
        raise BackupError(f"这是 {kind} 的备份，不能恢复到 {target} 数据库。")
    not_empty = "目标数据库不是空的：请先停止服务，换一个新的空数据库（或删除旧的）再恢复。"
    if settings.is_sqlite:
        dst_path = settings.sqlite_path
        if dst_path is None:
            raise BackupError("不能恢复到内存数据库。")
        if dst_path.is_file() and _sqlite_tables(dst_path) > 0:
            raise BackupError(not_empty)
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
        try:
            if src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{src_path} 已损坏（PRAGMA quick_check）。")
            _sqlite_copy(src, dst_path)
        finally:
            src.close()
    else:
        if asyncio.run(_pg_tables(settings.database_url)) > 0:
            raise BackupError(not_empty)
        _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
              "--exit-on-error", f"--dbname={pg_env(settings.database_url)['PGDATABASE']}",
              str(src_path)], settings.database_url)
    return ("已恢复。新版本的数据库迁移会在启动服务时自动应用（或运行 suggestbox migrate）。\n"
            + KEY_REMINDER)

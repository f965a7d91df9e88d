"""Rebuilding a SQLite table WITHOUT ROWID (DESIGN.md §1.3), for migrations.

An ordinary SQLite table stores rows in the order of a hidden, ever-increasing rowid, which
keeps the order in which rows were written. A WITHOUT ROWID table is stored in primary-key
order; our keys are random. Used by migrations 0009 and 0010 (0005 carries its own copy).
"""

from __future__ import annotations

from typing import Any


async def rebuild_without_rowid(client: Any, table: str, *, referenced: bool = False) -> None:
    """Rebuild ``table`` WITHOUT ROWID on SQLite (no-op elsewhere or when already so).

    ``referenced``: other tables point at this one, so the rebuild runs with foreign keys off
    and checks them after (SQLite's documented procedure for altering a table).
    """
    if client.capabilities.dialect != "sqlite":
        return
    _, rows = await client.execute_query(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", [table])
    create = next(r["sql"] for r in rows if r["type"] == "table")
    if "WITHOUT ROWID" in create.upper():
        return
    indexes = "".join(r["sql"] + ";" for r in rows if r["type"] == "index")
    head, _, _ = create.partition("(")
    body = create[len(head):].rstrip().rstrip(";")
    # ``table`` is one of our own table names, ``body`` SQLite's own schema text: no user input.
    steps = (f'CREATE TABLE "new__{table}" {body} WITHOUT ROWID;'  # noqa: S608
             f'INSERT INTO "new__{table}" SELECT * FROM "{table}";'  # noqa: S608
             f'DROP TABLE "{table}";'
             f'ALTER TABLE "new__{table}" RENAME TO "{table}";' + indexes)
    if not referenced:
        await client.execute_script(steps)
        return
    await client.execute_script(
        "PRAGMA foreign_keys = OFF;BEGIN;" + steps + "COMMIT;PRAGMA foreign_keys = ON;")
    _, problems = await client.execute_query("PRAGMA foreign_key_check")
    if problems:
        raise RuntimeError(f"foreign keys broken after rebuilding {table}: {problems[:3]}")

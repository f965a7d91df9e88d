"""Hiding the order in which submitters acted from someone who reads the database files.

DESIGN.md §1.3 stores what a submitter does with day precision, but a database also records
*order*: SQLite's hidden rowid (handled by making the mixed tables WITHOUT ROWID, migration 0005)
and PostgreSQL's transaction id (``xmin``) on every row. A row's ``xmin`` comes from a global
counter, so a submitter's rows could be placed between two staff actions with exact times.

``scrub_order(day)`` rewrites, in one transaction, every row that a submitter caused on that
day: afterwards they all carry the same ``xmin``, newer than anything else of that day. The
worker runs it once a day for the day before. What it cannot change: where in the table file a
row sits (an UPDATE that changes no indexed value may stay on its page), PostgreSQL's WAL and
any base backups taken before the scrub. See the README's anonymity section.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.transactions import in_transaction

from .cases import day_start


async def scrub_order(day: date, tz: ZoneInfo) -> bool:
    """Give the day's submitter rows one shared transaction id (PostgreSQL); False elsewhere."""
    if connections.get("default").capabilities.dialect != "postgres":
        return False
    start, end = day_start(day, tz), day_start(day + timedelta(days=1), tz)
    statements: list[tuple[str, list[object]]] = [
        ('UPDATE "case" SET id = id WHERE received_on = $1', [day]),
        # Older cases a submitter touched that day (a follow-up, a rating): their row was
        # rewritten then, between staff actions.
        ('UPDATE "case" SET id = id WHERE id IN (SELECT case_id FROM "event" WHERE by_submitter '
         'AND "at" >= $1 AND "at" < $2)', [start, end]),
        ('UPDATE "event" SET id = id WHERE by_submitter AND "at" >= $1 AND "at" < $2',
         [start, end]),
        ('UPDATE "used_form_token" SET id = id WHERE used_on = $1', [day]),
        ('UPDATE "photo" SET id = id WHERE event_id IN (SELECT id FROM "event" '
         'WHERE by_submitter AND "at" >= $1 AND "at" < $2)', [start, end]),
        ('UPDATE "notify_outbox" SET id = id WHERE created_on = $1', [day]),
        # 我也遇到 presses that day: the counter on the case and the day's row.
        ('UPDATE "case" SET id = id WHERE id IN (SELECT case_id FROM "support" WHERE day = $1)',
         [day]),
        ('UPDATE "support" SET id = id WHERE day = $1', [day]),
    ]
    async with in_transaction() as conn:
        for sql, params in statements:
            await conn.execute_query(sql, params)
    return True

"""A change counter per unit, so that pages can keep figures while nothing changed (issue 19).

Every change to a case appends an event (DESIGN.md §2; cases.apply, cases.submit_case,
intake, the submitter's follow-ups and ratings, and any action added to cases.RULES later), so a
``post_save`` listener on ``Event`` is the one place that sees them all: it adds one to the
case's unit's clock (``queue_clock`` rows), in the same transaction as the event. ``read``
returns the clocks of some units in one small query; equal clocks mean the units' cases did not
change.

No HTTP here. Imported by cases.py so that the listener is registered in every process that
writes events (the server, the command line, the worker).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.signals import post_save

from .models import Case, Event


def _sql(conn: BaseDBAsyncClient, sql: str) -> str:
    if conn.capabilities.dialect != "postgres":
        return sql
    n = 0

    def number(_: Any) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return re.sub(r"\?", number, sql)


# A unit's clock is spread over SLOTS rows (id = unit id × SLOTS + slot, a random slot per
# tick): concurrent submissions to one workshop would otherwise all wait for one row's lock
# until the previous transaction commits (PostgreSQL). Any tick changes the unit's rows.
SLOTS = 32

# Ticks made by this process, for caches that need no query to know that nothing changed here
# (the board's version check, views/board.py); other processes' changes need the rows.
local_ticks = 0


def bump() -> None:
    """Count a change made by this process that appends no event (a 我也遇到 press)."""
    global local_ticks
    local_ticks += 1


async def tick(conn: BaseDBAsyncClient, unit_id: int | None) -> None:
    bump()
    if unit_id is None:
        return
    row = int(unit_id) * SLOTS + random.randrange(SLOTS)  # noqa: S311 (not a secret)
    await conn.execute_query(_sql(conn, (
        "INSERT INTO queue_clock (id, n) VALUES (?, 1) "
        "ON CONFLICT (id) DO UPDATE SET n = queue_clock.n + 1")), [row])


@post_save(Event)
async def _event_saved(_sender: type[Event], event: Event, created: bool,
                       using_db: BaseDBAsyncClient | None, _fields: Any) -> None:
    if not created:
        return
    conn = using_db or connections.get("default")
    case = event.__dict__.get("_case")  # the Case the event was created with, when given
    unit_id = getattr(case, "unit_id", None) if case is not None else None
    if unit_id is None:
        row = await Case.filter(id=event.case_id).using_db(conn).first().values(  # type: ignore[attr-defined]
            "unit_id")
        unit_id = row["unit_id"] if row else None
    await tick(conn, unit_id)


async def read(units: Iterable[int], conn: BaseDBAsyncClient | None = None
               ) -> tuple[tuple[int, int], ...]:
    """The clock rows of ``units`` (units whose cases never changed have none)."""
    ids = sorted({int(u) for u in units})
    if not ids:
        return ()
    conn = conn or connections.get("default")
    ranges = " OR ".join(f"(id >= {i * SLOTS} AND id < {(i + 1) * SLOTS})" for i in ids)
    rows = await conn.execute_query_dict(
        "SELECT id, n FROM queue_clock WHERE " + ranges)  # noqa: S608
    return tuple(sorted((int(r["id"]), int(r["n"])) for r in rows))

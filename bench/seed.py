"""Seed many cases fast, with multi-row INSERTs (not the ORM one by one).

    bench/seed.py sqlite PATH N        # e.g. data/suggestbox.sqlite3 100000
    bench/seed.py postgres URL N

Cases are spread over the 365 days before today, across categories and statuses, with staff
timestamps where the status implies them. Each case gets its "submit" event. Tables must exist
(run migrations first) and hold at least one staff user (used as assignee).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import sqlite3
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta

STATUSES = ["new", "accepted", "in_progress", "answered", "closed", "closed", "closed",
            "rejected", "merged"]
WORDS = ["食堂", "照明", "安全帽", "工具柜", "排班", "休息室", "空调", "台阶", "积水", "配电柜",
         "劳保用品", "夜班", "扳手", "防护网", "通风"]
CASE_COLS = ("id", "receipt_hash", "body", "status", "received_on", "deadline", "responded_at",
             "answered_at", "closed_at", "rating", "reopen_count", "published", "show_reply",
             "assignee_id", "category_id")
EVENT_COLS = ("id", "case_id", "seq", "action", "to_status", "by_submitter", "public", "at")


_RND = random.Random(8)


def _rows(n: int, assignee: int, today: date) -> tuple[list[tuple[object, ...]],
                                                       list[tuple[object, ...]]]:
    rnd = _RND
    cases, events = [], []
    for _ in range(n):
        day = today - timedelta(days=rnd.randrange(365))
        status = rnd.choice(STATUSES)
        staff_at = datetime.combine(day + timedelta(days=rnd.randrange(3)), time(9), tzinfo=UTC)
        worked = status not in ("new",)
        answered = status in ("answered", "closed")
        cid = str(uuid.uuid4())
        body = "，".join(rnd.choice(WORDS) for _ in range(8)) + "的问题，希望尽快解决。"
        cases.append((
            cid, secrets.token_hex(32), body, status, day.isoformat(),
            (day + timedelta(days=7)).isoformat() if worked else None,
            staff_at.isoformat(sep=" ") if worked else None,
            (staff_at + timedelta(days=2)).isoformat(sep=" ") if answered else None,
            (staff_at + timedelta(days=4)).isoformat(sep=" ") if status == "closed" else None,
            rnd.choice([None, "satisfied", "basic", "unsatisfied"]) if answered else None,
            0, 0, 1, assignee if worked else None, 1 + rnd.randrange(5),
        ))
        events.append((str(uuid.uuid4()), cid, 1, "submit", "new", 1, 1,
                       datetime.combine(day, time(0), tzinfo=UTC).isoformat(sep=" ")))
    return cases, events


def _insert_sql(table: str, cols: tuple[str, ...], rows: int, param: str) -> str:
    names = ", ".join(f'"{c}"' for c in cols)
    if param == "?":
        one = "(" + ", ".join("?" for _ in cols) + ")"
        values = ", ".join(one for _ in range(rows))
    else:
        values = ", ".join(
            "(" + ", ".join(f"${r * len(cols) + i + 1}" for i in range(len(cols))) + ")"
            for r in range(rows))
    return f'INSERT INTO "{table}" ({names}) VALUES {values}'


def seed_sqlite(path: str, n: int, batch: int = 500) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        assignee = db.execute("SELECT MIN(id) FROM staff_user").fetchone()[0]
        today = date.today()
        done = 0
        while done < n:
            k = min(batch, n - done)
            cases, events = _rows(k, assignee, today)
            db.execute(_insert_sql("case", CASE_COLS, k, "?"), [v for r in cases for v in r])
            db.execute(_insert_sql("event", EVENT_COLS, k, "?"), [v for r in events for v in r])
            done += k
        db.commit()
        db.execute("ANALYZE")


CASE_TYPES = ("uuid", "text", "text", "text", "date", "date", "timestamptz", "timestamptz",
              "timestamptz", "text", "int", "bool", "bool", "int", "int")
EVENT_TYPES = ("uuid", "uuid", "int", "text", "text", "bool", "bool", "timestamptz")


def _unnest_sql(table: str, cols: tuple[str, ...], types: tuple[str, ...]) -> str:
    """One INSERT of many rows: each column is sent as one array and unnested server-side."""
    names = ", ".join(f'"{c}"' for c in cols)
    arrays = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    return f'INSERT INTO "{table}" ({names}) SELECT * FROM unnest({arrays})'


def _columns(rows: list[tuple[object, ...]], types: tuple[str, ...]) -> list[list[object]]:
    convert = {
        "uuid": lambda v: uuid.UUID(str(v)),
        "date": date.fromisoformat,
        "timestamptz": datetime.fromisoformat,
        "bool": bool,
    }
    out = []
    for i, t in enumerate(types):
        f = convert.get(t)
        out.append([None if r[i] is None else (f(r[i]) if f else r[i]) for r in rows])
    return out


async def seed_postgres(url: str, n: int, batch: int = 20000) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        assignee = await conn.fetchval("SELECT MIN(id) FROM staff_user")
        today = date.today()
        done = 0
        case_sql = _unnest_sql("case", CASE_COLS, CASE_TYPES)
        event_sql = _unnest_sql("event", EVENT_COLS, EVENT_TYPES)
        while done < n:
            k = min(batch, n - done)
            cases, events = _rows(k, assignee, today)
            async with conn.transaction():
                await conn.execute(case_sql, *_columns(cases, CASE_TYPES))
                await conn.execute(event_sql, *_columns(events, EVENT_TYPES))
            done += k
        await conn.execute('ANALYZE "case"')
        await conn.execute('ANALYZE "event"')
    finally:
        await conn.close()


def main() -> None:
    kind, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "sqlite":
        seed_sqlite(target, n)
    else:
        asyncio.run(seed_postgres(target, n))


if __name__ == "__main__":
    main()

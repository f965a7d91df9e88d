"""Seed many cases fast, with multi-row INSERTs (not the ORM one by one).

    bench/seed.py sqlite PATH N        # e.g. data/suggestbox.sqlite3 100000
    bench/seed.py postgres URL N
    bench/seed.py depot URL N          # PostgreSQL: 50 workshops, 2 desks, 500 teams, N cases

Cases are spread over the 365 days before today, across categories and statuses, with staff
timestamps where the status implies them. Each case gets its "submit" event. Tables must exist
(run migrations first) and hold at least one staff user (used as assignee). Plain mode puts every
case in the first workshop (the migrated database's ``main``).

Depot mode (``seed_depot_postgres``) builds the depot tree of issue 14 first (``depot_tree``):
workshops w01..w50 (第01车间..), desks gonghui (段工会) and jijian (纪检), ten teams per workshop,
one leader per workshop and desk (``lead-w01``, ``lead-gonghui``, ...) and a depot leader
(``depot``), all with the password given (hashed once). Cases are spread over the workshops by a
Zipf law (weight 1/rank: w01 gets about 22 %, w50 about 0.4 %), about 2 % are addressed to a desk
(``unit_id`` = the desk, ``workshop_id`` = the box they came through), every case has a team of
its workshop, and each case has the events its status implies (submit, accept, start, reply,
rate, close, reject, merge) by its unit's leader, so that monthly reports have figures.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import random
import secrets
import sqlite3
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

STATUSES = ["new", "accepted", "in_progress", "answered", "closed", "closed", "closed",
            "rejected", "merged"]
WORDS = ["食堂", "照明", "安全帽", "工具柜", "排班", "休息室", "空调", "台阶", "积水", "配电柜",
         "劳保用品", "夜班", "扳手", "防护网", "通风"]
CASE_COLS = ("id", "receipt_hash", "body", "status", "received_on", "deadline", "responded_at",
             "answered_at", "closed_at", "rating", "reopen_count", "published", "show_reply",
             "assignee_id", "category_id", "unit_id", "workshop_id", "team_id")
EVENT_COLS = ("id", "case_id", "seq", "action", "from_status", "to_status", "actor_id",
              "by_submitter", "public", "body", "at")

WORKSHOPS = 50
TEAMS_PER_WORKSHOP = 10
DESKS = (("gonghui", "段工会", 0.015), ("jijian", "纪检", 0.005))  # code, name, share of cases


_RND = random.Random(8)


@dataclass
class Tree:
    """Who handles what: the units cases go to, with their teams and the leader who acts."""

    workshops: list[int]  # unit ids, largest first
    cum_weights: list[float]
    teams: dict[int, list[int]]  # workshop id -> team ids (None: no team)
    leader: dict[int, int]  # unit id -> staff user id acting on its cases
    desks: list[tuple[int, float]] = field(default_factory=list)  # desk unit id, share


def _events_for(cid: str, status: str, day: date, staff_at: datetime, actor: int | None,
                rating: str | None) -> list[tuple[object, ...]]:
    """The events a case in ``status`` went through (submitter events at day precision)."""
    def ev(seq: int, action: str, frm: str | None, to: str | None, at: datetime,
           by_submitter: bool = False, body: str | None = None) -> tuple[object, ...]:
        return (str(uuid.uuid4()), cid, seq, action, frm, to,
                None if by_submitter else actor, int(by_submitter), 1, body,
                at.isoformat(sep=" "))

    out = [ev(1, "submit", None, "new", datetime.combine(day, time(0), tzinfo=UTC), True)]
    if status == "rejected":
        out.append(ev(2, "reject", "new", "rejected", staff_at, body="不属于受理范围。"))
    elif status == "merged":
        out.append(ev(2, "merge", "new", "merged", staff_at))
    elif status != "new":
        out.append(ev(2, "accept", "new", "accepted", staff_at))
        if status == "in_progress":
            out.append(ev(3, "start", "accepted", "in_progress", staff_at + timedelta(hours=2)))
        elif status in ("answered", "closed"):
            answered = staff_at + timedelta(days=2)
            out.append(ev(3, "reply", "accepted", "answered", answered, body="已处理，谢谢。"))
            seq = 4
            if rating in ("satisfied", "basic"):
                rated = datetime.combine(answered.date() + timedelta(days=1), time(0),
                                         tzinfo=UTC)
                out.append(ev(seq, "rate", None, None, rated, True,
                              "满意" if rating == "satisfied" else "基本满意"))
                seq += 1
            if status == "closed":
                out.append(ev(seq, "close", "answered", "closed", staff_at + timedelta(days=4)))
    return out


def _rows(n: int, assignee: int, today: date, unit: int | None = None, tree: Tree | None = None,
          full_events: bool = False) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """``n`` cases and their events: all in ``unit`` (plain), or spread over ``tree`` (depot)."""
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
        rating = rnd.choice([None, "satisfied", "basic", "unsatisfied"]) if answered else None
        team = None
        if tree is not None:
            origin = tree.workshops[bisect.bisect(tree.cum_weights,
                                                  rnd.random() * tree.cum_weights[-1])]
            handler_unit, r = origin, rnd.random()
            for desk, share in tree.desks:
                if r < share:
                    handler_unit = desk
                    break
                r -= share
            team = rnd.choice(tree.teams[origin])
            unit, workshop = handler_unit, origin
            assignee = tree.leader[handler_unit]
            if rating == "unsatisfied":  # the depot seed has no reopen cycle
                rating = "basic"
        else:
            workshop = unit
        cases.append((
            cid, secrets.token_hex(32), body, status, day.isoformat(),
            (day + timedelta(days=7)).isoformat() if worked else None,
            staff_at.isoformat(sep=" ") if worked else None,
            (staff_at + timedelta(days=2)).isoformat(sep=" ") if answered else None,
            (staff_at + timedelta(days=4)).isoformat(sep=" ") if status == "closed" else None,
            rating, 0, 0, 1, assignee if worked else None, 1 + rnd.randrange(5),
            unit, workshop, team,
        ))
        if full_events:
            events += _events_for(cid, status, day, staff_at, assignee, rating)
        else:
            events.append((str(uuid.uuid4()), cid, 1, "submit", None, "new", None, 1, 1, None,
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
        unit = db.execute("SELECT MIN(id) FROM unit WHERE kind = 'workshop'").fetchone()[0]
        today = date.today()
        done = 0
        while done < n:
            k = min(batch, n - done)
            cases, events = _rows(k, assignee, today, unit)
            db.execute(_insert_sql("case", CASE_COLS, k, "?"), [v for r in cases for v in r])
            db.execute(_insert_sql("event", EVENT_COLS, len(events), "?"),
                       [v for r in events for v in r])
            done += k
        db.commit()
        db.execute("ANALYZE")


CASE_TYPES = ("uuid", "text", "text", "text", "date", "date", "timestamptz", "timestamptz",
              "timestamptz", "text", "int", "bool", "bool", "int", "int", "int", "int", "int")
EVENT_TYPES = ("uuid", "uuid", "int", "text", "text", "text", "int", "bool", "bool", "text",
               "timestamptz")


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


async def _connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))


async def _insert_cases(conn: Any, n: int, batch: int, **kw: Any) -> None:
    today = date.today()
    done = 0
    await conn.execute("SET synchronous_commit = off")  # a seed: no need to wait for each flush
    case_sql = _unnest_sql("case", CASE_COLS, CASE_TYPES)
    event_sql = _unnest_sql("event", EVENT_COLS, EVENT_TYPES)
    while done < n:
        k = min(batch, n - done)
        cases, events = _rows(k, today=today, **kw)
        async with conn.transaction():
            await conn.execute(case_sql, *_columns(cases, CASE_TYPES))
            await conn.execute(event_sql, *_columns(events, EVENT_TYPES))
        done += k
    # VACUUM as autovacuum would soon do on a live database: it sets the visibility map, without
    # which the queue's per-status count cannot be an index-only scan (142 ms instead of 15 ms
    # for 44,000 cases of one workshop).
    await conn.execute('VACUUM ANALYZE "case"')
    await conn.execute('VACUUM ANALYZE "event"')


async def seed_postgres(url: str, n: int, batch: int = 20000) -> None:
    conn = await _connect(url)
    try:
        assignee = await conn.fetchval("SELECT MIN(id) FROM staff_user")
        unit = await conn.fetchval("SELECT MIN(id) FROM unit WHERE kind = 'workshop'")
        await _insert_cases(conn, n, batch, assignee=assignee, unit=unit)
    finally:
        await conn.close()


async def depot_tree(conn: Any, password_hash: str) -> Tree:
    """Workshops w01..w50, desks, teams and leader accounts (once: reused when present)."""
    async def unit(code: str, name: str, kind: str, order: int) -> int:
        uid = await conn.fetchval("SELECT id FROM unit WHERE code = $1", code)
        if uid is None:
            uid = await conn.fetchval(
                "INSERT INTO unit (code, name, kind, sort_order, active) "
                "VALUES ($1, $2, $3, $4, TRUE) RETURNING id", code, name, kind, order)
        return int(uid)

    async def leader(username: str, unit_id: int | None) -> int:
        uid = await conn.fetchval("SELECT id FROM staff_user WHERE username = $1", username)
        if uid is None:
            uid = await conn.fetchval(
                "INSERT INTO staff_user (username, display_name, role, password_hash, active, "
                "created_at, unit_id) VALUES ($1, $1, 'leader', $2, TRUE, now(), $3) "
                "RETURNING id", username, password_hash, unit_id)
        return int(uid)

    workshops, teams, leaders = [], {}, {}
    for i in range(1, WORKSHOPS + 1):
        code = f"w{i:02d}"
        wid = await unit(code, f"第{i:02d}车间", "workshop", i)
        workshops.append(wid)
        leaders[wid] = await leader(f"lead-{code}", wid)
        rows = [(f"{code}-t{j:02d}", f"{i:02d}车间{j}班组", j, wid)
                for j in range(1, TEAMS_PER_WORKSHOP + 1)]
        await conn.executemany(
            "INSERT INTO team (code, name, sort_order, active, workshop_id) "
            "VALUES ($1, $2, $3, TRUE, $4) ON CONFLICT (code) DO NOTHING", rows)
        teams[wid] = [int(r["id"]) for r in await conn.fetch(
            "SELECT id FROM team WHERE workshop_id = $1 ORDER BY sort_order", wid)]
    desks = []
    for order, (code, name, share) in enumerate(DESKS, start=100):
        did = await unit(code, name, "desk", order)
        leaders[did] = await leader(f"lead-{code}", did)
        desks.append((did, share))
    await leader("depot", None)
    weights = [1 / rank for rank in range(1, WORKSHOPS + 1)]
    return Tree(workshops, list(itertools.accumulate(weights)), teams, leaders, desks)


async def seed_depot_postgres(url: str, n: int, password_hash: str, batch: int = 10000) -> Tree:
    """The depot tree (``depot_tree``) and ``n`` cases over it with their events."""
    conn = await _connect(url)
    try:
        tree = await depot_tree(conn, password_hash)
        await _insert_cases(conn, n, batch, assignee=0, tree=tree, full_events=True)
        return tree
    finally:
        await conn.close()


def main() -> None:
    kind, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "sqlite":
        seed_sqlite(target, n)
    elif kind == "depot":
        from suggestbox.auth import hash_password

        password = sys.argv[4] if len(sys.argv) > 4 else "bench-password-1"
        asyncio.run(seed_depot_postgres(target, n, hash_password(password)))
    else:
        asyncio.run(seed_postgres(target, n))


if __name__ == "__main__":
    main()

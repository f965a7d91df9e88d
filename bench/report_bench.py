"""Time the monthly summary (月度汇总) on a large PostgreSQL database.

    .venv/bin/python bench/report_bench.py                 # 1,000,000 cases, seeded fresh
    .venv/bin/python bench/report_bench.py --n 100000 --keep
    .venv/bin/python bench/report_bench.py --keep --indexes  # add the proposed indexes, re-time

Seeds N cases with whole event histories (submit, accept/reject/merge, start, reply, ratings,
不满意 and a second reply, close) spread over --months months up to today, with COPY through
asyncpg, into its own database (--db, dropped and re-created unless --keep finds it seeded), then
puts both tables in time order (CLUSTER), as an append-only production table would be.
Then builds the report for the last complete month (or --month) the way the page does: the SQL
aggregates, plus rendering the HTML template. Prints the figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suggestbox.app import _templates  # noqa: E402
from suggestbox.cases import local_today  # noqa: E402
from suggestbox.db import migrate, orm  # noqa: E402
from suggestbox.models import Unit  # noqa: E402
from suggestbox.months import Month  # noqa: E402
from suggestbox.report_export import figures_csv  # noqa: E402
from suggestbox.reports import build_report  # noqa: E402
from suggestbox.settings import Settings  # noqa: E402
from suggestbox.views.reports import report_context  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
TEAMS = 24
CASE_COLS = ["id", "receipt_hash", "category_id", "team_id", "body", "status", "received_on",
             "assignee_id", "deadline", "responded_at", "answered_at", "closed_at",
             "reject_reason", "merged_into_id", "rating", "rated_on", "reopen_count", "published",
             "public_summary", "show_reply", "published_at"]
EVENT_COLS = ["id", "case_id", "seq", "action", "from_status", "to_status", "actor_id",
              "by_submitter", "body", "public", "at"]
WORDS = ["食堂", "照明", "安全帽", "工具柜", "排班", "休息室", "空调", "台阶", "积水", "配电柜",
         "劳保用品", "夜班", "扳手", "防护网", "通风"]
PROPOSED_INDEXES = [
    'CREATE INDEX IF NOT EXISTS "idx_event_action_at_case" ON "event" ("action", "at", "case_id")',
    'CREATE INDEX IF NOT EXISTS "idx_case_deadline" ON "case" ("deadline")',
]


def local_at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ).astimezone(UTC)


class _Life:
    """One case's history: appends events until one would fall after ``now``."""

    def __init__(self, cid: uuid.UUID, now: datetime, staff_id: int,
                 uid: Callable[[], uuid.UUID]) -> None:
        self.cid, self.now, self.staff_id, self.uid = cid, now, staff_id, uid
        self.seq = 0
        self.status = "new"
        self.events: list[tuple[object, ...]] = []

    def ev(self, action: str, to: str | None, at: datetime, body: str | None = None,
           submitter: bool = False) -> bool:
        if at > self.now:
            return False
        self.seq += 1
        self.events.append((
            self.uid(), self.cid, self.seq, action,
            self.status if action != "submit" else None, to,
            None if submitter else self.staff_id, submitter, body, True, at))
        if to is not None:
            self.status = to
        return True


def generate(n: int, months: int, now: datetime, staff_id: int, team_ids: list[int],
             seed: int = 7, chunk: int = 50_000
             ) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    rnd = random.Random(seed)
    today = now.astimezone(TZ).date()
    span = int(months * 30.44)
    cases: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rnd.getrandbits(128))

    for i in range(n):
        received = today - timedelta(days=rnd.randrange(span))
        cid = uid()
        row: dict[str, object] = {
            "deadline": None, "responded_at": None, "answered_at": None, "closed_at": None,
            "reject_reason": None, "rating": None, "rated_on": None, "reopen_count": 0,
            "assignee_id": None,
        }
        life = _Life(cid, now, staff_id, uid)
        ev = life.ev
        ev("submit", "new", midnight(received), submitter=True)
        resp_day = received + timedelta(days=min(rnd.randrange(5), rnd.randrange(5)))
        resp_at = local_at(resp_day, 8 + rnd.randrange(10), rnd.randrange(60))
        roll = rnd.random()
        if roll < 0.08:
            if ev("reject", "rejected", resp_at, "不属于车间职责。"):
                row.update(responded_at=resp_at, reject_reason="不属于车间职责。")
        elif roll < 0.11:
            ev("merge", "merged", resp_at, "重复，已合并")
        elif ev("accept", "accepted", resp_at, "承办"):
            row.update(responded_at=resp_at, assignee_id=staff_id,
                       deadline=resp_day + timedelta(days=7))
            t = resp_at + timedelta(hours=2 + rnd.randrange(30))
            if rnd.random() < 0.5:
                ev("start", "in_progress", t)
            reply_at = resp_at + timedelta(days=1 + rnd.randrange(12), hours=rnd.randrange(6))
            replied = ev("reply", "answered", reply_at, "已处理，谢谢反映。\n详情见班组通知。")
            if replied:
                row["answered_at"] = reply_at
                r = rnd.random()
                rate_day = reply_at.astimezone(TZ).date() + timedelta(days=1 + rnd.randrange(3))
                if r < 0.1 and ev("rate_unsatisfied", "in_progress", midnight(rate_day),
                                  "不满意：还没解决。", submitter=True):
                    row.update(rating="unsatisfied", rated_on=rate_day, reopen_count=1)
                    again = midnight(rate_day) + timedelta(days=2, hours=3)
                    if ev("reply", "answered", again, "再次处理。"):
                        row["answered_at"] = again
                        if ev("close", "closed", again + timedelta(days=8)):
                            row["closed_at"] = again + timedelta(days=8)
                elif r < 0.7:
                    rating = "satisfied" if r < 0.5 else "basic"
                    if ev("rate", None, midnight(rate_day), "满意" if rating == "satisfied"
                          else "基本满意", submitter=True):
                        row.update(rating=rating, rated_on=rate_day)
                        close_at = midnight(rate_day) + timedelta(days=1, hours=9)
                        if ev("close", "closed", close_at):
                            row["closed_at"] = close_at
                elif ev("close", "closed", reply_at + timedelta(days=8)):
                    row["closed_at"] = reply_at + timedelta(days=8)
        body = "，".join(rnd.choice(WORDS) for _ in range(6)) + "的问题，希望尽快解决。"
        cases.append((
            cid, f"{rnd.getrandbits(256):064x}", 1 + rnd.randrange(5),
            rnd.choice(team_ids) if rnd.random() < 0.9 else None, body, life.status, received,
            row["assignee_id"], row["deadline"], row["responded_at"], row["answered_at"],
            row["closed_at"], row["reject_reason"], None, row["rating"], row["rated_on"],
            row["reopen_count"], False, None, True, None,
        ))
        events.extend(life.events)
        if len(cases) >= chunk or i == n - 1:
            yield cases, events
            cases, events = [], []


async def seed(url: str, n: int, months: int) -> None:
    import asyncpg

    await migrate(url)
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        staff_id = await conn.fetchval(
            "INSERT INTO staff_user (username, display_name, role, password_hash, active, "
            "created_at) VALUES ('bench', '压测', 'leader', 'x', true, now()) RETURNING id")
        team_ids = [await conn.fetchval(
            "INSERT INTO team (code, name, sort_order, active) VALUES ($1, $2, $3, true) "
            "RETURNING id", f"t{i:02d}", f"检修{i + 1}班", i) for i in range(TEAMS)]
        now = datetime.now(UTC)
        done = 0
        t0 = time.perf_counter()
        for cases, events in generate(n, months, now, staff_id, team_ids):
            await conn.copy_records_to_table("case", records=cases, columns=CASE_COLS)
            await conn.copy_records_to_table("event", records=events, columns=EVENT_COLS)
            done += len(cases)
            print(f"  seeded {done:,} cases ({time.perf_counter() - t0:.0f} s)", flush=True)
        # A real box appends cases and events in time order; COPY above wrote each case's
        # events together. Put both tables in time order, as production would have them.
        t1 = time.perf_counter()
        await conn.execute('CREATE INDEX "bench_tmp_event_at" ON event (at)')
        await conn.execute('CLUSTER event USING "bench_tmp_event_at"')
        await conn.execute('DROP INDEX "bench_tmp_event_at"')
        received_idx = await conn.fetchval(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'case' "
            "AND indexdef LIKE '%(received_on)'")
        await conn.execute(f'CLUSTER "case" USING "{received_idx}"')
        await conn.execute("VACUUM ANALYZE")
        print(f"ordered by time and analysed in {time.perf_counter() - t1:.0f} s")
        events_n = await conn.fetchval("SELECT COUNT(*) FROM event")
        print(f"seeded {n:,} cases and {events_n:,} events in {time.perf_counter() - t0:.0f} s")
    finally:
        await conn.close()


async def admin(base: str, sql: str) -> object:
    import asyncpg

    conn = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres")
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def seeded_count(url: str) -> int | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    except Exception:  # database missing
        return None
    try:
        return int(await conn.fetchval('SELECT COUNT(*) FROM "case"'))
    except Exception:
        return None
    finally:
        await conn.close()


async def add_indexes(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        for sql in PROPOSED_INDEXES:
            t0 = time.perf_counter()
            await conn.execute(sql)
            print(f"{sql}  ({time.perf_counter() - t0:.1f} s)")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def time_report(url: str, month: Month, repeat: int) -> None:
    settings = Settings(data_dir=Path("/tmp/report-bench-data"), database_url=url,
                        secret_key="bench-" + "x" * 30)
    env = _templates(settings).env
    template = env.get_template("staff/report_file.html")
    async with orm(settings):
        runs: list[float] = []
        sql_runs: list[float] = []
        for i in range(repeat):
            t0 = time.perf_counter()
            # Its COPY seed predates the depot tree (cases without a unit): every workshop.
            units = tuple(u.id for u in await Unit.filter(kind="workshop"))
            report = await build_report(month, units=units, tz=settings.tz)
            t1 = time.perf_counter()
            html = template.render({**report_context(report, settings), "css": ""})
            figures_csv(report)
            t2 = time.perf_counter()
            sql_runs.append(t1 - t0)
            runs.append(t2 - t0)
            print(f"  run {i + 1}: queries {t1 - t0:.3f} s, + render {t2 - t1:.3f} s "
                  f"= {t2 - t0:.3f} s ({len(html):,} bytes of HTML)")
        totals = report.figures.totals
        print(f"report {month}: received {totals['received']:,}, answered "
              f"{totals['answered']:,}, open at end {totals['open_at_end']:,}; rates "
              + ", ".join(f"{k} {r.display}" for k, r in report.figures.rates.items()))
        print(f"RESULT month={month} median {statistics.median(runs):.3f} s "
              f"(queries {statistics.median(sql_runs):.3f} s), best {min(runs):.3f} s, "
              f"first {runs[0]:.3f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="cases to seed (default 1,000,000)")
    p.add_argument("--months", type=int, default=60, help="months the cases are spread over")
    p.add_argument("--base", default="postgres://postgres@127.0.0.1:5432",
                   help="PostgreSQL server URL without a database name")
    p.add_argument("--db", default="sb_report_bench")
    p.add_argument("--keep", action="store_true", help="reuse the database if already seeded")
    p.add_argument("--indexes", action="store_true", help="create the proposed indexes first")
    p.add_argument("--month", default="", help="YYYY-MM (default: last complete month)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    url = f"{args.base}/{args.db}"
    month = Month.parse(args.month) if args.month else Month.last_complete(local_today(TZ))

    async def run() -> None:
        count = await seeded_count(url) if args.keep else None
        if count is None or count < args.n:
            await admin(args.base, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            await admin(args.base, f'CREATE DATABASE "{args.db}"')
            await seed(url, args.n, args.months)
        else:
            print(f"reusing {args.db} with {count:,} cases")
        if args.indexes:
            await add_indexes(url)
        await time_report(url, month, args.repeat)

    asyncio.run(run())


if __name__ == "__main__":
    main()

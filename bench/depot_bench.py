"""Time the depot report (全段月度汇总) on a large PostgreSQL database.

    .venv/bin/python bench/depot_bench.py                       # 1,000,000 cases, 50 workshops
    .venv/bin/python bench/depot_bench.py --n 100000 --keep

Seeds N cases over 12 months up to last month with SQL (generate_series) into its own database
(--db, dropped and re-created unless --keep finds it seeded): 50 workshops and 2 desks (5% of the
cases go to a desk), events submit / accept / reply / rate / close. Then builds the depot report
and one workshop's report for the last complete month. Prints timings; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from suggestbox import depot  # noqa: E402
from suggestbox.cases import local_today  # noqa: E402
from suggestbox.db import migrate, orm  # noqa: E402
from suggestbox.depot_report import build_depot_report  # noqa: E402
from suggestbox.months import Month  # noqa: E402
from suggestbox.reports import build_report  # noqa: E402
from suggestbox.settings import Settings  # noqa: E402

BASE = "postgres://postgres@127.0.0.1:5432"

SEED = """
INSERT INTO unit (code, name, kind, sort_order, active)
SELECT 'ws-' || i, '车间 ' || i, 'workshop', i, true FROM generate_series(2, :W) i;
INSERT INTO unit (code, name, kind, sort_order, active) VALUES
  ('union', '段工会', 'desk', 100, true), ('jijian', '纪检', 'desk', 101, true);
CREATE TEMP TABLE ws AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM unit
  WHERE kind = 'workshop';
CREATE TEMP TABLE dk AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM unit
  WHERE kind = 'desk';
CREATE TEMP TABLE s AS SELECT i, gen_random_uuid() AS id,
  (date :d0 + (i % 365)) AS received_on, (i % :W) AS wk, (hashtext(i::text) & 1023) AS h
  FROM generate_series(1, :N) i;
INSERT INTO "case" (id, receipt_hash, unit_id, workshop_id, category_id, body, status,
  received_on, deadline, reopen_count, published, show_reply)
SELECT s.id, encode(sha256(s.i::text::bytea), 'hex'),
  CASE WHEN s.h < 51 THEN (SELECT id FROM dk WHERE dk.k = s.h % 2) ELSE ws.id END, ws.id,
  1 + s.h % 5, '压测案件', CASE WHEN s.h < 360 THEN 'closed' WHEN s.h < 700 THEN 'answered'
  WHEN s.h < 820 THEN 'accepted' ELSE 'new' END, s.received_on,
  CASE WHEN s.h < 820 THEN s.received_on + 7 END, 0, false, true
FROM s JOIN ws ON ws.k = s.wk;
INSERT INTO event (id, case_id, seq, action, from_status, to_status, by_submitter, public, at)
SELECT gen_random_uuid(), s.id, 1, 'submit', NULL, 'new', true, true,
  (s.received_on + time '00:00') AT TIME ZONE 'Asia/Shanghai' FROM s;
INSERT INTO event (id, case_id, seq, action, from_status, to_status, by_submitter, public, at)
SELECT gen_random_uuid(), s.id, 2, 'accept', 'new', 'accepted', false, true,
  (s.received_on + (s.h % 4) + time '10:00') AT TIME ZONE 'Asia/Shanghai' FROM s WHERE h < 820;
INSERT INTO event (id, case_id, seq, action, from_status, to_status, by_submitter, public, at)
SELECT gen_random_uuid(), s.id, 3, 'reply', 'accepted', 'answered', false, true,
  (s.received_on + 4 + (s.h % 7) + time '15:00') AT TIME ZONE 'Asia/Shanghai' FROM s
  WHERE h < 700;
INSERT INTO event (id, case_id, seq, action, from_status, to_status, by_submitter, body,
  public, at)
SELECT gen_random_uuid(), s.id, 4, 'rate', NULL, NULL, true,
  CASE WHEN s.h % 3 = 0 THEN '基本满意' ELSE '满意' END, true,
  (s.received_on + 12 + time '00:00') AT TIME ZONE 'Asia/Shanghai' FROM s WHERE h < 200;
INSERT INTO event (id, case_id, seq, action, from_status, to_status, by_submitter, public, at)
SELECT gen_random_uuid(), s.id, 5, 'close', 'answered', 'closed', false, true,
  (s.received_on + 20 + time '09:00') AT TIME ZONE 'Asia/Shanghai' FROM s WHERE h < 360;
"""


async def seed(url: str, n: int, workshops: int) -> None:
    await migrate(url)
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        today = datetime.now(UTC).date()
        d0 = Month.of(today).minus(12).first
        sql = (SEED.replace(":W", str(workshops)).replace(":N", str(n))
               .replace(":d0", f"'{d0.isoformat()}'"))
        t = time.perf_counter()
        await conn.execute(sql)
        await conn.execute('VACUUM ANALYZE "case"')
        await conn.execute("VACUUM ANALYZE event")
        print(f"seeded {n} cases in {time.perf_counter() - t:.0f} s")
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--workshops", type=int, default=50)
    ap.add_argument("--db", default="sb_depot_bench")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    url = f"{BASE}/{args.db}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", args.db)
    if not (args.keep and exists):
        await admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{args.db}"')
        await admin.close()
        await seed(url, args.n, args.workshops)
    else:
        await admin.close()
    settings = Settings(data_dir=Path("/tmp/depot-bench-data"), database_url=url,
                        secret_key="bench-" + "x" * 30)
    async with orm(settings.prepare()):
        month = Month.last_complete(local_today(settings.tz))
        ws, ds = await depot.workshops(), await depot.desks()
        for label, build in (
            ("depot report", lambda: build_depot_report(month, tz=settings.tz, workshops=ws,
                                                        desks=ds)),
            ("one workshop", lambda: build_report(month, units=(ws[0].id,), tz=settings.tz)),
        ):
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                r = await build()
                times.append(time.perf_counter() - t)
            print(f"{label} {month}: median {statistics.median(times):.3f} s, "
                  f"min {min(times):.3f} s over {args.repeat} runs "
                  f"(received {r.figures.totals['received']})")


if __name__ == "__main__":
    asyncio.run(main())

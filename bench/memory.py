"""Memory of the monthly and depot reports on a large PostgreSQL database (issue 19).

    .venv/bin/python bench/memory.py --seed 1000000            # once: migrate + depot seed
    .venv/bin/python bench/memory.py                          # in-process: VmRSS / VmHWM
    .venv/bin/python bench/memory.py --fresh --trace          # + tracemalloc, nothing kept read
    .venv/bin/python bench/memory.py --http --idle 120        # uvicorn worker, GET the pages
    .venv/bin/python bench/memory.py --tick                   # the notification worker's scan

A benchmark that prints figures, not a test. The database (``--db``, default
``postgres://postgres@127.0.0.1:5432/sb_mem_1m``) is seeded by ``bench.seed.seed_depot_postgres``,
the dataset ``bench/run --depot-only --cases 1000000`` uses, and kept across runs.

In-process: connects the app's ORM to that database and builds, as ``views/reports.page`` does,
w01's monthly report of the last complete month (``views.reports.build`` and its page context:
previous month, times, breakdowns, team quarter and year tables, case list, trend) and the depot
report (``build_depot``), each twice, rendering each page's template, and prints VmRSS and VmHWM
(``/proc/self/status``) after each. ``--fresh`` uses a new ``reports.KEPT_VERSION`` for the run,
so no kept rows are read: the first print computes everything, as the very first request of a
month does. ``--trace`` also runs tracemalloc and prints its peak and top 15 lines (allocations
still held) after each step; tracemalloc's own bookkeeping inflates RSS, so read RSS from a run
without it.

``--tick``: what the inline notification worker reads each tick for the escalation ladder
(``worker.past_due_batches``; the whole list ``worker._past_due`` before issue 19), twice,
read-only. On this seed 327,320 open cases are past their deadline.

``--http``: starts uvicorn (``bench.baselines:service``, one worker by default, as ``bench/run``
starts it but with ``--workers 1`` so the server process is the worker) on that database, logs in
as the seeded leaders (``lead-w01``, ``depot``), GETs the two pages twice and prints the worker's
VmRSS / VmHWM from ``/proc/<pid>/status`` after each; ``--idle N`` keeps printing them for N
seconds while the inline notification worker ticks (every 30 s). Its escalation steps are
written to the database (events "now", outside the reported month).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB = "postgres://postgres@127.0.0.1:5432/sb_mem_1m"
SECRET = "bench-secret-" + "z" * 32
PASSWORD = "bench-password-1"


def status(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()

    def field(name: str) -> float:
        m = re.search(rf"{name}:\s+(\d+) kB", text)
        return int(m.group(1)) / 1024 if m else float("nan")

    return field("VmRSS"), field("VmHWM")


def line(what: str, pid: int | str = "self", seconds: float | None = None) -> None:
    rss, hwm = status(pid)
    took = f"  ({seconds:.2f} s)" if seconds is not None else ""
    print(f"{what:<44} VmRSS {rss:7.1f} MiB   VmHWM {hwm:7.1f} MiB{took}", flush=True)


def trace_report(what: str, top: int = 15) -> None:
    if not tracemalloc.is_tracing():
        return
    current, peak = tracemalloc.get_traced_memory()
    print(f"  tracemalloc after {what}: current {current / 2**20:.1f} MiB, "
          f"peak {peak / 2**20:.1f} MiB", flush=True)
    snap = tracemalloc.take_snapshot().filter_traces([
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ])
    for stat in snap.statistics("lineno")[:top]:
        frame = stat.traceback[0]
        name = frame.filename.replace(str(ROOT) + "/", "")
        name = re.sub(r".*/site-packages/", "", name)
        print(f"    {stat.size / 2**20:8.2f} MiB {stat.count:8d} blocks  {name}:{frame.lineno}",
              flush=True)
    tracemalloc.reset_peak()


# ---- in-process ---------------------------------------------------------------------------------

async def in_process(db_url: str, workshop: str, fresh: bool, trace: bool, rounds: int) -> None:
    from suggestbox import org, reports
    from suggestbox.cases import local_today
    from suggestbox.db import orm
    from suggestbox.models import StaffUser
    from suggestbox.months import Month
    from suggestbox.settings import Settings
    from suggestbox.templating import make_templates
    from suggestbox.views import reports as views

    settings = Settings.from_env(database_url=db_url, secret_key=SECRET,
                                 data_dir=Path("/tmp/suggestbox-memory-data"))
    if fresh:  # nothing kept is read: the first print computes everything and keeps it
        reports.KEPT_VERSION = int(time.time())
    month = Month.last_complete(local_today(settings.tz))
    env = make_templates(settings).env
    print(f"database {db_url.rsplit('/', 1)[1]}, month {month}, workshop {workshop}, "
          f"{'fresh (new KEPT_VERSION)' if fresh else 'kept rows read when present'}"
          f"{', tracemalloc on' if trace else ''}", flush=True)
    line("start (imports done)")
    async with orm(settings):
        lead = await StaffUser.get(username=f"lead-{workshop}")
        depot_user = await StaffUser.get(username="depot")
        the_org = await org.get_org()
        line("ORM connected")
        if trace:
            tracemalloc.start(25)
        for i in range(1, rounds + 1):
            t0 = time.monotonic()
            who = await views.resolve_target(lead, "")
            assert who.unit is not None
            report = await views.build(month, settings, who.unit)
            context = views.report_context(report, settings)
            html = _render(env, "staff/report.html", context, the_org, unit=who.unit)
            line(f"after monthly report {workshop} #{i} ({len(html) // 1024} KiB)",
                 seconds=time.monotonic() - t0)
            trace_report(f"monthly report #{i}")
            del report, context, html
            t0 = time.monotonic()
            who = await views.resolve_target(depot_user, "")
            depot_report = await views.build_depot(month, settings, who)
            html = _render(env, "staff/depot_report.html", views.depot_context(depot_report),
                           the_org)
            line(f"after depot report #{i} ({len(html) // 1024} KiB)",
                 seconds=time.monotonic() - t0)
            trace_report(f"depot report #{i}")
            del depot_report, html
        gc.collect()
        line("after gc.collect()")
    if trace:
        tracemalloc.stop()


def _render(env: Any, template: str, context: dict[str, Any], the_org: Any, **extra: Any) -> str:
    """The page as the view renders it (a stand-in request: only url_for-free parts are used)."""
    context = {**context, **extra, "org": the_org, "me": None, "csrf": "x", "wq": "", "w": "",
               "prev_month": context["report"].month.prev(), "next_month": None,
               "request": _Request()}
    try:
        return str(env.get_template(template).render(context))
    except Exception as exc:  # noqa: BLE001 - a stand-in request may lack what a page reads
        return f"render failed: {exc!r}"


class _Request:
    class url:  # noqa: N801
        path = "/staff/reports"

    query_params: dict[str, str] = {}  # noqa: RUF012

    def url_for(self, name: str, **params: Any) -> str:
        return "/" + name


async def worker_tick(db_url: str, trace: bool) -> None:
    """What the inline notification worker reads each tick (``worker._past_due``, the cases
    the escalation ladder looks at), read-only: no step is taken."""
    from datetime import UTC, datetime

    from suggestbox import worker
    from suggestbox.db import orm
    from suggestbox.settings import Settings

    settings = Settings.from_env(database_url=db_url, secret_key=SECRET,
                                 data_dir=Path("/tmp/suggestbox-memory-data"))
    local = datetime.now(settings.tz).replace(hour=settings.notify_hour + 1)
    now = local.astimezone(UTC)
    line("start (imports done)")
    async with orm(settings):
        if trace:
            tracemalloc.start(25)
        for i in (1, 2):
            t0 = time.monotonic()
            n = 0
            async for batch in _past_due_batches(worker, settings, now):
                n += len(batch)
            line(f"after reading past-due cases #{i} ({n:,})", seconds=time.monotonic() - t0)
            trace_report(f"past-due cases #{i}")
        gc.collect()
        line("after gc.collect()")


async def _past_due_batches(worker: Any, settings: Any, now: Any) -> Any:
    """``worker._past_due`` as a list (before) or in batches (``worker.past_due_batches``)."""
    if hasattr(worker, "past_due_batches"):
        async for batch in worker.past_due_batches(settings, now, True):
            yield batch
    else:
        yield await worker._past_due(settings, now, True)


# ---- through uvicorn ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workers(pid: int, n: int) -> list[int]:
    if n == 1:
        return [pid]
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return sorted(out)


def through_http(db_url: str, workshop: str, workers: int, rounds: int, inline_worker: bool,
                 idle: int) -> None:
    import httpx

    from suggestbox.cases import local_today
    from suggestbox.months import Month
    from suggestbox.settings import Settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SUGGESTBOX_DATA_DIR": "/tmp/suggestbox-memory-data",
           "SUGGESTBOX_SECRET_KEY": SECRET, "BENCH_SERVICE": "1",
           "SUGGESTBOX_DATABASE_URL": db_url,
           "SUGGESTBOX_INLINE_WORKER": "1" if inline_worker else "0"}
    month = Month.last_complete(local_today(Settings.from_env(database_url=db_url).tz))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.baselines:service", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level",
         "warning", "--http", "suggestbox.serving:NoDelayHTTPProtocol"],
        env=env, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/", timeout=2)
                if len(_workers(proc.pid, workers)) >= workers:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.2)

        def show(what: str, seconds: float | None = None) -> None:
            for pid in _workers(proc.pid, workers):
                line(f"{what} [worker {pid}]", pid, seconds)

        def login(user: str) -> httpx.Client:
            c = httpx.Client(base_url=url, timeout=900)
            r = c.post("/staff/login", data={"username": user, "password": PASSWORD})
            if r.status_code != 303:
                raise RuntimeError(f"login {user}: {r.status_code}")
            return c

        print(f"uvicorn, {workers} worker(s), {url}, month {month}, inline notification "
              f"worker {'on' if inline_worker else 'off'}", flush=True)
        show("started")
        lead, depot_user = login(f"lead-{workshop}"), login("depot")
        show("after two logins")
        for i in range(1, rounds + 1):
            for name, client in ((f"monthly report {workshop}", lead),
                                 ("depot report", depot_user)):
                t0 = time.monotonic()
                r = client.get(f"/staff/reports/{month}")
                r.raise_for_status()
                show(f"after {name} #{i} ({len(r.content) // 1024} KiB)",
                     time.monotonic() - t0)
        t0 = time.monotonic()
        while time.monotonic() - t0 < idle:  # the inline worker ticks every 30 s
            time.sleep(10)
            show(f"idle {time.monotonic() - t0:.0f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- seed ---------------------------------------------------------------------------------------

def seed_db(db_url: str, cases: int) -> None:
    import asyncpg

    from bench import seed
    from suggestbox.auth import hash_password
    from suggestbox.db import migrate

    async def run() -> None:
        base, name = db_url.rsplit("/", 1)
        conn = await asyncpg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await migrate(db_url)
        t0 = time.monotonic()
        await seed.seed_depot_postgres(db_url, cases, hash_password(PASSWORD))
        print(f"seeded {cases:,} cases in {time.monotonic() - t0:.0f} s", flush=True)

    asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default=DB)
    ap.add_argument("--workshop", default="w01")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fresh", action="store_true",
                    help="a new KEPT_VERSION for this run: compute everything (in-process)")
    ap.add_argument("--trace", action="store_true", help="tracemalloc (in-process)")
    ap.add_argument("--http", action="store_true", help="through uvicorn instead")
    ap.add_argument("--tick", action="store_true",
                    help="what the notification worker reads per tick (in-process, read-only)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-inline-worker", action="store_true",
                    help="SUGGESTBOX_INLINE_WORKER=0: no notification worker in the server")
    ap.add_argument("--idle", type=int, default=0, metavar="SECONDS",
                    help="after the pages, keep printing the worker's memory this long")
    ap.add_argument("--seed", type=int, metavar="N", help="migrate and seed N cases, then exit")
    opts = ap.parse_args()
    if opts.seed:
        seed_db(opts.db, opts.seed)
    elif opts.tick:
        asyncio.run(worker_tick(opts.db, opts.trace))
    elif opts.http:
        through_http(opts.db, opts.workshop, opts.workers, opts.rounds,
                     not opts.no_inline_worker, opts.idle)
    else:
        asyncio.run(in_process(opts.db, opts.workshop, opts.fresh, opts.trace, opts.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

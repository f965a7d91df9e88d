"""Several app processes on one PostgreSQL database and one Redis: real `suggestbox serve`
processes (one with 2 uvicorn workers, one with 1, on two ports), sharing nothing in memory.

- a staff login made through one process is valid in every other (sessions live in the database);
- throttling counts across processes (counters live in Redis);
- concurrent submissions spread over all processes all land.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    IN_CI,
    PASSWORD,
    LiveServer,
    csrf_of,
    form_token,
    start_server,
    stop_server,
)

REDIS_DB = 13  # this module's own Redis database, flushed before and after


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2)


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    try:
        _redis(url).ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis is unreachable on 127.0.0.1:6379, and CI=true requires it")
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    _redis(url).flushdb()
    yield url
    _redis(url).flushdb()


@pytest.fixture
def servers(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[list[LiveServer]]:
    """Process A: `serve --workers 2`; process B: `serve --workers 1`; same DB, same Redis."""
    env = {"SUGGESTBOX_REDIS_URL": redis_url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_server(tmp_path / "a", database_url=pg_url, workers=2, extra_env=env)
    try:
        b = start_server(tmp_path / "b", database_url=pg_url, workers=1, extra_env=env)
    except BaseException:
        stop_server(a)
        raise
    try:
        a.cli("user", "add", "leader1", "--role", "leader", "--password-stdin",
              stdin=PASSWORD + "\n")
        yield [a, b]
    finally:
        stop_server(a)
        stop_server(b)


def fresh_get(url: str, **kw: Any) -> httpx.Response:
    """One request over a new connection (so the kernel picks the worker each time)."""
    with httpx.Client(timeout=20) as c:
        return c.get(url, **kw)


def fresh_post(url: str, **kw: Any) -> httpx.Response:
    with httpx.Client(timeout=20) as c:
        return c.post(url, **kw)


def login(server: LiveServer, xff: str) -> str:
    r = fresh_post(server.url + "/staff/login", headers={"X-Forwarded-For": xff},
                   data={"username": "leader1", "password": PASSWORD})
    assert r.status_code == 303, r.text
    token = r.cookies.get("sb_staff")
    assert token
    return token


def worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes: the spawned children of `suggestbox serve`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            pids.append(int(entry))
    return sorted(pids)


def established_on(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port and cols[3] == "01" and cols[9] in inodes:
                count += 1
    return count


def test_a_login_is_valid_in_every_process(servers: list[LiveServer]) -> None:
    a, b = servers
    for origin, other in ((b, a), (a, b)):
        token = login(origin, "10.7.0.1")
        for i in range(30):
            target = other if i % 3 else origin
            r = fresh_get(target.url + "/staff/cases", headers={"Cookie": f"sb_staff={token}"},
                          follow_redirects=False)
            assert r.status_code == 200, (target.url, r.status_code)
            assert csrf_of(r.text)
        # Logging out through the other process ends the session everywhere.
        page = fresh_get(other.url + "/staff/cases", headers={"Cookie": f"sb_staff={token}"})
        out = fresh_post(other.url + "/staff/logout", headers={"Cookie": f"sb_staff={token}"},
                         data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        for target in (a, b, a):
            r = fresh_get(target.url + "/staff/cases", headers={"Cookie": f"sb_staff={token}"},
                          follow_redirects=False)
            assert r.status_code in (302, 303), r.status_code


def test_both_workers_of_one_port_serve_the_same_session(servers: list[LiveServer]) -> None:
    a, _ = servers
    port = int(a.url.rsplit(":", 1)[1])
    pids = worker_pids(a.proc.pid)
    assert len(pids) == 2, pids
    token = login(a, "10.7.0.2")
    seen: set[int] = set()
    for _round in range(10):
        clients = [httpx.Client(timeout=20) for _ in range(16)]
        try:
            with ThreadPoolExecutor(16) as pool:
                responses = list(pool.map(
                    lambda c: c.get(a.url + "/staff/cases", headers={"Cookie": f"sb_staff={token}"},
                                    follow_redirects=False), clients))
            assert all(r.status_code == 200 for r in responses), [
                r.status_code for r in responses]
            # The connections are still open (keep-alive): see which worker holds them.
            seen |= {pid for pid in pids if established_on(pid, port) > 0}
        finally:
            for c in clients:
                c.close()
        if seen == set(pids):
            break
    assert seen == set(pids), f"only {seen} of {pids} served"


def _track_miss(server: LiveServer, xff: str) -> int:
    page = fresh_get(server.url + "/track", headers={"X-Forwarded-For": xff})
    r = fresh_post(server.url + "/track", headers={"X-Forwarded-For": xff},
                   data={"token": form_token(page.text), "receipt": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
    return r.status_code


def test_throttling_counts_across_processes(servers: list[LiveServer]) -> None:
    # The limit is 10 misses per 10-minute window: do not straddle a window boundary.
    if time.time() % 600 > 570:
        time.sleep(600 - time.time() % 600 + 1)
    a, b = servers
    xff = "10.7.0.3"
    codes = [_track_miss(a if i % 2 else b, xff) for i in range(10)]
    assert codes == [422] * 10  # misses, counted: 5 through each process, 10 in total
    assert _track_miss(a, xff) == 429
    assert _track_miss(b, xff) == 429
    assert _track_miss(a, "10.7.0.4") == 422  # another client is not affected


async def test_concurrent_submissions_all_land(servers: list[LiveServer], pg_url: str) -> None:
    import asyncpg

    a, b = servers
    n = 50
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as c:
        # Each "phone" has its own address (throttling is per client) and its own form.
        pages = await asyncio.gather(*[
            c.get((a if i % 2 else b).url + "/", headers={"X-Forwarded-For": f"10.8.{i}.1"})
            for i in range(n)])
        tokens = [form_token(p.text) for p in pages]

        async def post(i: int) -> httpx.Response:
            return await c.post(
                (a if i % 3 else b).url + "/", headers={"X-Forwarded-For": f"10.8.{i}.1"},
                data={"token": tokens[i], "category": str(1 + i % 4),
                      "body": f"第 {i} 条并发提交的建议：工具间需要整理。"})

        responses = await asyncio.gather(*[post(i) for i in range(n)])
    assert [r.status_code for r in responses] == [303] * n
    conn = await asyncpg.connect(pg_url.replace("postgres://", "postgresql://", 1))
    try:
        assert await conn.fetchval('SELECT count(*) FROM "case"') == n
        assert await conn.fetchval('SELECT count(DISTINCT receipt_hash) FROM "case"') == n
        assert await conn.fetchval(
            "SELECT count(*) FROM event WHERE action = 'submit'") == n
        bodies = {r["body"] for r in await conn.fetch('SELECT body FROM "case"')}
    finally:
        await conn.close()
    assert {int(re.search(r"第 (\d+) 条", x).group(1)) for x in bodies} == set(range(n))  # type: ignore[union-attr]

"""Shared fixtures: real databases (a SQLite file, and a PostgreSQL database created per test),
real migrations, the app driven through its lifespan, and a real server process when needed."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from suggestbox.app import create_app
from suggestbox.db import migrate
from suggestbox.settings import Settings

PG_URL = os.environ.get(
    "SUGGESTBOX_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-9"


def _pg_reachable() -> bool:
    m = re.match(r"postgres://[^@]*@([^:/]+):?(\d+)?/", PG_URL)
    host, port = (m.group(1), int(m.group(2) or 5432)) if m else ("127.0.0.1", 5432)
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


PG_AVAILABLE = _pg_reachable()


def pg_base_and_name() -> tuple[str, str]:
    base = PG_URL.rsplit("/", 1)[0]
    return base, f"sb_test_{secrets.token_hex(6)}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def require_pg() -> None:
    if not PG_AVAILABLE:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable, and CI=true requires it")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set SUGGESTBOX_TEST_POSTGRES_URL)")


@contextlib.asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database for one test; dropped afterwards."""
    require_pg()
    base, name = pg_base_and_name()
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = f"{base}/{name}"
        await migrate(url)
        yield url
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database: a SQLite file, or a new PostgreSQL database (dropped after)."""
    # Tortoise caches each model's SQL per connection *name*, not per backend: tests that switch
    # between SQLite and PostgreSQL in one process must clear it (a real process uses one backend).
    EXECUTOR_CACHE.clear()
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'test.sqlite3'}"
        await migrate(url)
        yield url
        return
    async with pg_database() as url:
        yield url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """Only PostgreSQL: a new, migrated database (for multi-process tests)."""
    EXECUTOR_CACHE.clear()
    async with pg_database() as url:
        yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=db_url, secret_key="test-secret-key-" + "x" * 20,
        inline_worker=False,  # tests call the delivery functions directly
        notify_quiet_hours=0,  # tests of batching set it themselves
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as c:
        yield c


def make_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)),
        base_url="http://testserver",
    )


# ---- helpers used by many tests -------------------------------------------------------------

TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
RECEIPT_RE = re.compile(r'data-receipt="([^"]+)"')


def form_token(html: str) -> str:
    m = TOKEN_RE.search(html)
    assert m, "no form token on the page"
    return m.group(1)


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


async def submit(
    client: httpx.AsyncClient, body: str = "食堂的饭菜太咸了，希望改进。", category: int = 1,
    team: str | None = None,
) -> str:
    """Submit through the public form like a browser would; return the receipt shown."""
    page = await client.get("/" + (f"?t={team}" if team else ""))
    data = {"token": form_token(page.text), "category": str(category), "body": body}
    if team:
        data["team"] = team
    r = await client.post("/", data=data)
    assert r.status_code == 303, r.text
    shown = await client.get(r.headers["location"])
    m = RECEIPT_RE.search(shown.text)
    assert m, shown.text
    return m.group(1)


async def track(client: httpx.AsyncClient, receipt: str) -> httpx.Response:
    page = await client.get("/track")
    return await client.post("/track", data={"token": form_token(page.text), "receipt": receipt})


async def add_user(username: str, role: str) -> Any:
    from suggestbox import auth

    return await auth.add_user(username, role, PASSWORD, display_name=username)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log in; return the CSRF token of the new session."""
    r = await client.post("/staff/login", data={"username": username, "password": password})
    assert r.status_code == 303, r.text
    page = await client.get("/staff/cases")
    assert page.status_code == 200
    return csrf_of(page.text)


async def act(
    client: httpx.AsyncClient, csrf: str, case_id: Any, action: str, **data: Any
) -> httpx.Response:
    payload = {"csrf": csrf, "action": action, **{k: str(v) for k, v in data.items()}}
    return await client.post(f"/staff/cases/{case_id}/act", data=payload)


# ---- a real server process ------------------------------------------------------------------

def workshop_today() -> Any:
    """Today in the workshop's zone (the app's default), not the machine's: tests that build
    dates from the machine's date.today() fail from 16:00 to 24:00 UTC."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, url: str, env: dict[str, str], proc: subprocess.Popen[bytes],
                 log: Path) -> None:
        self.url = url
        self.env = env
        self.proc = proc
        self.log = log

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "suggestbox.cli", *args], env=self.env, input=stdin,
            capture_output=True, text=True, timeout=60, check=True,
        )


def start_server(tmp: Path, database_url: str | None = None, workers: int = 1,
                 extra_env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "SUGGESTBOX_DATA_DIR": str(tmp / "data"),
        "SUGGESTBOX_SECRET_KEY": "live-secret-" + "y" * 24,
        **({"SUGGESTBOX_DATABASE_URL": database_url} if database_url else {}),
        **(extra_env or {}),
    }
    log = tmp / f"server-{port}.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "suggestbox.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return LiveServer(url, env, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real `suggestbox serve` process on SQLite, on a free loopback port."""
    server = start_server(tmp_path)
    yield server
    stop_server(server)


async def seed_case(body: str = "通过领域函数直接创建的案件。", category_id: int = 1,
                    team: Any = None, secret_key: str = "seed-secret",
                    photos: Any = (), workshop: Any = None, desk: Any = None) -> Any:
    """Create a case through the domain function (no HTTP, no throttling); return it.
    ``workshop``: the box (default: the oldest workshop); ``desk``: addressed to a depot desk."""
    import secrets as _secrets
    from zoneinfo import ZoneInfo

    from suggestbox.cases import submit_case
    from suggestbox.models import Unit

    if workshop is None:
        workshop = await Unit.filter(kind="workshop").order_by("id").first()
    result = await submit_case(
        secret_key=secret_key, nonce=_secrets.token_urlsafe(18), category_id=category_id,
        team=team, body=body, today=workshop_today(), tz=ZoneInfo("Asia/Shanghai"),
        photos=photos, workshop=workshop, desk=desk,
    )
    return result.case


# ---- Debian's Chromium through Playwright (never `playwright install`) ----------------------

CHROMIUM = os.environ.get("SUGGESTBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "screenshots"  # git-ignored


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing, and CI=true requires the browser tests")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium fonts-wqy-microhei)")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()

"""Issue 12 through the app itself (SQLite and PostgreSQL): bad bytes at the edge on every route,
non-ASCII tokens, atomic limits under concurrency, the login limits that stop guessing without
locking anyone out, the global submission budget, IPv6 /64 keys, follow-up limits, invisible
text, clients going away. Live-server checks (load, timeouts, Redis down, kill -9) are in
tests/test_load.py."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from tortoise import Tortoise

from suggestbox import tokens
from suggestbox.logging_config import RateLimitFilter
from suggestbox.models import Case, Team
from suggestbox.throttle import network_of
from tests.conftest import PASSWORD, add_user, csrf_of, form_token, login, submit, track

ROOT = Path(__file__).resolve().parent.parent


def client_from(app: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 9)),
                             base_url="http://testserver")


async def row_counts() -> dict[str, int]:
    out = {}
    for app_models in Tortoise.apps.values():
        for name, model in app_models.items():
            out[name] = await model.all().count()
    return out


# ---- every route × every field and query parameter -------------------------------------------

def _field_names() -> list[str]:
    names: set[str] = set()
    for path in (ROOT / "templates").rglob("*.html"):
        names |= set(re.findall(r'name="([a-z_0-9]+)"', path.read_text()))
    return sorted(names | {"t", "q", "next", "month", "category", "team", "after", "all"})


FIELDS = _field_names()
BAD = {"nul": "%00", "bad-utf8": "%FF%FE%C0%AF", "nul-in-text": "abc%00def"}


def _concrete(path: str) -> str:
    return (path.replace("{case_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{case_id:uuid}", "00000000-0000-4000-8000-000000000000")
            .replace("{action:str}", "followup").replace("{action}", "followup")
            .replace("{month}", "2026-01").replace("{fmt}", "svg")
            .replace("{user_id:int}", "1").replace("{item_id:int}", "1"))


def _routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "{" + m.group(1) + "}", route.path)
            path = re.sub(r"\{(\w+)\}", lambda m: {"case_id": "00000000-0000-4000-8000-"
                          "000000000000", "action": "followup", "month": "2026-01",
                          "fmt": "svg"}.get(m.group(1), "1"), path)
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append((method, path))
    return out


async def test_bad_bytes_in_every_field_of_every_route_are_refused(settings: Any,
                                                                  caplog: Any) -> None:
    from suggestbox.app import create_app

    lifted = 10**6  # every probe comes from one address: only the edge check may refuse it
    app = create_app(settings.with_(submit_limit=lifted, submit_free=lifted,
                                    track_miss_limit=lifted, followup_limit=lifted))
    async with app.router.lifespan_context(app):
        await _probe_every_field(app, caplog)


async def _probe_every_field(app: Any, caplog: Any) -> None:
    await add_user("admin1", "admin")
    await Team.create(code="w1", name="一号班组")
    routes = _routes(app)
    assert len(routes) > 20
    async with client_from(app, "198.51.100.20") as c:
        csrf = await login(c, "admin1")
        before = await row_counts()
        with caplog.at_level(logging.WARNING):
            for method, path in routes:
                for kind, value in BAD.items():
                    for name in FIELDS:
                        if method == "GET":
                            r = await c.get(f"{path}?{name}={value}")
                        else:
                            body = f"csrf={csrf}&{name}={value}"
                            r = await c.post(path, content=body.encode(), headers={
                                "content-type": "application/x-www-form-urlencoded"})
                        assert r.status_code == 400, (method, path, name, kind, r.status_code)
                        assert "编码错误" in r.text
        assert await row_counts() == before
    assert not app.state.error_digest.counts
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("token", ["a.b.\u00bf", "\u00bf", "1.2.\u4e2d\u6587", "x" * 99 + "\u00e9"])
async def test_non_ascii_tokens_are_refused_not_500(app: Any, client: httpx.AsyncClient,
                                                    token: str) -> None:
    await add_user("leader1", "leader")
    await login(client, "leader1")
    before = await row_counts()
    r = await client.post("/", data={"token": token, "body": "hello world 你好", "category": "1"})
    assert r.status_code == 422 and "表单已过期" in r.text
    r = await client.post("/track", data={"token": token, "receipt": "0000-0000-0000-0000"})
    assert r.status_code == 403
    r = await client.post("/track/followup", data={"token": token, "receipt": "x", "body": "补充"})
    assert r.status_code == 422
    for path in ("/staff/logout", "/staff/account", "/admin/users"):
        r = await client.post(path, data={"csrf": token})
        assert r.status_code in (403, 405), (path, r.status_code)
    assert await row_counts() == before
    assert not app.state.error_digest.counts
    assert not tokens.csrf_ok("abc", token) and tokens.verify("k", token, time_today()) is None


def time_today() -> Any:
    from tests.conftest import workshop_today

    return workshop_today()


# ---- atomic limits -----------------------------------------------------------------------------

async def test_concurrent_receipt_misses_get_only_the_limit(app: Any, settings: Any) -> None:
    async with client_from(app, "198.51.100.30") as c:
        page = await c.get("/track")
        token = form_token(page.text)
        rs = await asyncio.gather(*[
            c.post("/track", data={"token": token, "receipt": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
            for _ in range(100)])
    codes = [r.status_code for r in rs]
    assert codes.count(422) == settings.track_miss_limit, codes
    assert codes.count(429) == 100 - settings.track_miss_limit


async def test_found_receipts_do_not_use_up_the_budget(app: Any, settings: Any) -> None:
    async with client_from(app, "198.51.100.31") as c:
        receipt = await submit(c, "查到的回执不占查询次数。")
        for _ in range(settings.track_miss_limit + 5):
            assert (await track(c, receipt)).status_code == 200


async def test_concurrent_wrong_logins_check_at_most_the_limit(app: Any, settings: Any) -> None:
    await add_user("leader1", "leader")
    async with client_from(app, "198.51.100.40") as c:
        rs = await asyncio.gather(*[
            c.post("/staff/login", data={"username": "leader1", "password": f"wrong-{i}"})
            for i in range(60)])
    codes = [r.status_code for r in rs]
    assert codes.count(422) <= settings.login_fail_limit, codes
    assert set(codes) <= {422, 429}
    # The leader, from another address, is not locked out by that burst.
    async with client_from(app, "198.51.100.41") as other:
        assert await login(other, "leader1")


async def test_guessing_from_many_addresses_stops_but_not_the_leaders_browser(
        app: Any, settings: Any) -> None:
    await add_user("leader1", "leader")
    async with client_from(app, "198.51.100.50") as usual:
        await login(usual, "leader1")  # the leader's browser now carries the account's mark
        assert usual.cookies.get("sb_device")
        await usual.post("/staff/logout", data={"csrf": csrf_of((await usual.get(
            "/staff/cases")).text)})
    per_address = settings.login_fail_limit
    for i in range(-(-settings.login_account_fail_limit // per_address) + 1):
        async with client_from(app, f"203.0.113.{100 + i}") as c:
            for _ in range(per_address):
                await c.post("/staff/login", data={"username": "leader1", "password": "nope"})
    async with client_from(app, "198.51.100.99") as stranger:
        r = await stranger.post("/staff/login", data={"username": "leader1",
                                                      "password": PASSWORD})
        assert r.status_code == 429 and "平时登录的浏览器" in r.text
    async with client_from(app, "198.51.100.51") as usual_elsewhere:
        usual_elsewhere.cookies.set("sb_device", usual.cookies["sb_device"], path="/staff/login")
        r = await usual_elsewhere.post("/staff/login", data={"username": "leader1",
                                                             "password": PASSWORD})
        assert r.status_code == 303, r.text
    # A mark for one account is worth nothing for another.
    assert not tokens.device_ok(app.state.settings.secret_key, "someone-else",
                                usual.cookies["sb_device"])


async def test_password_checks_run_off_the_event_loop(app: Any) -> None:
    await add_user("leader1", "leader")
    async with client_from(app, "198.51.100.60") as c:
        login_task = asyncio.gather(*[
            c.post("/staff/login", data={"username": "leader1", "password": "wrong"})
            for _ in range(4)])
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        r = await c.get("/healthz")
        waited = time.perf_counter() - started
        await login_task
    assert r.status_code == 200
    # Not a timing assertion on speed: a blocked loop would wait for all four hashes (~0.5 s).
    assert waited < 0.4, waited


async def test_hash_gate_refuses_beyond_its_bound() -> None:
    from suggestbox.auth import Busy, HashGate

    gate = HashGate(running=1, waiting=1)
    results = await asyncio.gather(*[gate.run(time.sleep, 0.05) for _ in range(5)],
                                   return_exceptions=True)
    assert sum(isinstance(x, Busy) for x in results) == 3


# ---- submissions: a flood slows itself, not everyone -----------------------------------------

@pytest.fixture
def small_budget(settings: Any) -> Any:
    return settings.with_(submit_limit=8, submit_free=3, submit_global_limit=20)


async def test_a_flood_from_20_addresses_does_not_stop_a_21st(small_budget: Any) -> None:
    from suggestbox.app import create_app

    app = create_app(small_budget)
    async with app.router.lifespan_context(app):
        async def flood(i: int) -> list[int]:
            async with client_from(app, f"192.0.2.{i + 1}") as c:
                codes = []
                for n in range(small_budget.submit_limit + 2):
                    t = tokens.issue(small_budget.secret_key, time_today())
                    r = await c.post("/", data={"token": t, "category": "1",
                                                "body": f"刷屏的第 {i}-{n} 条内容"})
                    codes.append(r.status_code)
                return codes

        results = await asyncio.gather(*[flood(i) for i in range(20)])
        flat = [x for codes in results for x in codes]
        assert 429 in flat  # the heavy senders ran out of the shared budget
        assert all(codes[: small_budget.submit_free] == [303] * small_budget.submit_free
                   for codes in results)
        async with client_from(app, "192.0.2.200") as c:
            for i in range(small_budget.submit_free):
                await submit(c, f"第 21 个地址的工友，第 {i} 条。")
        stored = await Case.all().count()
        assert stored <= 20 * small_budget.submit_free + small_budget.submit_global_limit + \
            small_budget.submit_free


async def test_ipv6_addresses_are_keyed_by_their_64(app: Any, settings: Any) -> None:
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("::ffff:192.0.2.1") == "192.0.2.1" and network_of("192.0.2.1") == "192.0.2.1"
    codes = []
    for i in range(settings.track_miss_limit + 1):
        async with client_from(app, f"2001:db8:77:1::{i + 1:x}") as c:
            codes.append((await track(c, "ZZZZ-ZZZZ-ZZZZ-ZZZZ")).status_code)
    assert codes[-1] == 429, codes


async def test_followups_are_throttled(app: Any, settings: Any) -> None:
    async with client_from(app, "198.51.100.70") as c:
        receipt = await submit(c, "跟进次数的测试内容。")
        codes = []
        for i in range(settings.followup_limit + 3):
            page = await c.get("/track")
            r = await c.post("/track/followup", data={
                "token": form_token(page.text), "receipt": receipt, "body": f"第 {i} 次补充"})
            codes.append(r.status_code)
    assert codes[: settings.followup_limit] == [200] * settings.followup_limit
    assert codes[settings.followup_limit:] == [429] * 3


# ---- text and logs -----------------------------------------------------------------------------

def test_visible_characters_count_for_the_minimum() -> None:
    from suggestbox.cases import DomainError, clean_text

    for text in ("\u200b" * 5, "\u200b\u200c\u200d\u2060\ufeff", "ab\u200b\u200b\u200b",
                 "\u3164\u3164\u3164\u3164\u3164", "e\u0301\u0301\u0301\u0301"):
        with pytest.raises(DomainError):
            clean_text(text, minimum=5, maximum=100, label="内容")
    def ok(text: str) -> str:
        return clean_text(text, minimum=5, maximum=100, label="内容")

    assert ok("\u202e反向内容测试\u202c") == "反向内容测试"
    assert ok("עברית\u200f טקסט") == "עברית\u200f טקסט"
    assert clean_text("👨\u200d👩\u200d👧ok!", minimum=5, maximum=100, label="x")


async def test_a_client_going_away_is_not_logged(app: Any, caplog: Any) -> None:
    messages = [{"type": "http.request", "body": b"token=x&body=", "more_body": True},
                {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [(b"content-type", b"application/x-www-form-urlencoded"),
                         (b"host", b"testserver")],
             "client": ("198.51.100.80", 1), "server": ("testserver", 80), "scheme": "http",
             "http_version": "1.1", "root_path": "", "app": app}
    with caplog.at_level(logging.DEBUG):
        await app(scope, receive, send)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not app.state.error_digest.counts


def test_error_lines_are_rate_limited() -> None:
    f = RateLimitFilter(burst=3, per=60)
    record = logging.LogRecord("suggestbox", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    assert [f.filter(record) for _ in range(10)] == [True] * 3 + [False] * 7
    info = logging.LogRecord("suggestbox", logging.INFO, __file__, 1, "fine", None, None)
    assert all(f.filter(info) for _ in range(10))


async def test_public_errors_are_counted_not_logged_at_once(app: Any, caplog: Any) -> None:
    from starlette.requests import Request

    from suggestbox.app import server_error

    req = Request({"type": "http", "method": "POST", "path": "/track", "headers": [],
                   "query_string": b"", "app": app, "root_path": "", "scheme": "http",
                   "server": ("t", 80)})
    with caplog.at_level(logging.INFO):
        r = await server_error(req, RuntimeError("secret words"))
    assert r.status_code == 500
    assert not [x for x in caplog.records if x.levelno >= logging.ERROR]
    with caplog.at_level(logging.INFO):
        app.state.error_digest.flush()
    [line] = [x for x in caplog.records if x.levelno >= logging.ERROR]
    assert line.fields["errors"] == [  # type: ignore[attr-defined]
        {"method": "POST", "route": "/track", "error": "RuntimeError", "count": 1}]
    assert "secret words" not in str(line.__dict__)

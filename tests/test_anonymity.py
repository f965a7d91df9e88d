"""Anonymity, checked where it matters: in every table and in the log (DESIGN.md §1).

A submitter goes through the whole loop (submit, track with the receipt typed several ways,
follow up, rate) with a recognisable address and User-Agent. Then every row of every table is
dumped and searched for the receipt in any form, the address and the User-Agent; and the server
log for those and for the case text. Nothing may be found.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from tortoise import connections

from suggestbox.models import Case
from suggestbox.settings import Settings
from tests.conftest import (
    CSRF_RE,
    RECEIPT_RE,
    LiveServer,
    act,
    add_user,
    form_token,
    login,
)

ADDRESS = "198.51.100.77"  # TEST-NET-2: never a real client
LIVE_PROXY = "127.0.0.1"  # the live server's real peer, which trusts X-Forwarded-For from it


def user_agent() -> str:
    return f"Mozilla/5.0 (Linux; Android 13) MicroMessenger/8.0.47 Probe/{uuid.uuid4().hex}"


def receipt_forms(receipt: str) -> list[str]:
    bare = receipt.replace("-", "")
    return [receipt, bare, receipt.lower(), bare.lower(), " ".join(receipt.split("-"))]


def as_text(values: Iterable[Any]) -> str:
    out = []
    for v in values:
        if isinstance(v, bytes | bytearray | memoryview):
            b = bytes(v)
            out += [b.hex(), b.decode("latin-1")]
        else:
            out.append(str(v))
    return "\n".join(out)


def assert_absent(haystack: str, needles: dict[str, str], where: str) -> None:
    low = haystack.lower()
    for label, needle in needles.items():
        assert needle.lower() not in low, f"{label} ({needle!r}) found in {where}"


def sqlite_dump(path: Path) -> tuple[list[str], str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [v for t in tables for row in db.execute(f'SELECT * FROM "{t}"') for v in row]
    return tables, as_text(rows)


async def orm_dump(settings: Settings) -> tuple[list[str], str]:
    conn = connections.get("default")
    if settings.is_sqlite:
        sql = "SELECT name AS t FROM sqlite_master WHERE type='table'"
    else:
        sql = "SELECT table_name AS t FROM information_schema.tables WHERE table_schema='public'"
    tables = [r["t"] for r in await conn.execute_query_dict(sql)]
    values: list[Any] = []
    for t in tables:
        for row in await conn.execute_query_dict(f'SELECT * FROM "{t}"'):
            values.extend(row.values())
    return tables, as_text(values)


async def journey(web: httpx.AsyncClient, staff: httpx.AsyncClient, text: str) -> str:
    """Submit, staff reply, then track (typed several ways), follow up, rate. Return receipt."""
    page = await web.get("/")
    r = await web.post("/", data={"token": form_token(page.text), "category": "1", "body": text})
    assert r.status_code == 303
    m = RECEIPT_RE.search((await web.get("/receipt")).text)
    assert m
    receipt = m.group(1)
    csrf = await login(staff, "lead")
    case = await Case.get(body=text)
    lead_id = await _user_id("lead")
    assert (await act(staff, csrf, case.id, "accept", assignee=lead_id)).status_code == 303
    assert (await act(staff, csrf, case.id, "reply", body="已处理，谢谢反映。")).status_code == 303
    for typed in receipt_forms(receipt):
        t = form_token((await web.get("/track")).text)
        shown = await web.post("/track", data={"token": t, "receipt": typed})
        assert shown.status_code == 200 and "已处理，谢谢反映" in shown.text
    for action, extra in (("followup", {"body": "补充：晚上更明显。"}),
                          ("rate", {"rating": "satisfied"})):
        t = form_token((await web.get("/track")).text)
        r = await web.post(f"/track/{action}",
                           data={"token": t, "receipt": receipt.lower(), **extra})
        assert r.status_code == 200, r.text
    return receipt


async def _user_id(name: str) -> int:
    from suggestbox.models import StaffUser

    return (await StaffUser.get(username=name)).id


async def test_no_receipt_address_or_agent_in_any_table(app: Any, settings: Settings) -> None:
    """Through the ASGI app, on SQLite and on PostgreSQL."""
    await add_user("lead", "leader")
    ua = user_agent()
    text = f"锅炉房门口积水结冰，容易滑倒。{uuid.uuid4().hex[:6]}"
    transport = httpx.ASGITransport(app=app, client=(ADDRESS, 61234))
    headers = {"user-agent": ua, "referer": "http://198.51.100.77/qr-scan"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=headers) as web, \
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as staff:
        receipt = await journey(web, staff, text)
    tables, dump = await orm_dump(settings)
    assert {"case", "event", "used_form_token", "staff_session"} <= set(tables)
    assert text in dump  # the dump is real: the case text is in it
    needles = {f"receipt form {i}": f for i, f in enumerate(receipt_forms(receipt))}
    needles.update(address=ADDRESS, user_agent=ua, ua_probe=ua.rsplit("/", 1)[1])
    assert_absent(dump, needles, f"the {'SQLite' if settings.is_sqlite else 'PostgreSQL'} dump")


def assert_server_kept_no_identity(server: LiveServer, receipt: str, ua: str, text: str,
                                   table: str) -> None:
    """The live server's SQLite file (which has ``table`` and the case text: the dump is real)
    and its log hold no receipt, address or agent; the log not the case text either."""
    needles = {f"receipt form {i}": f for i, f in enumerate(receipt_forms(receipt))}
    needles.update(address=ADDRESS, user_agent=ua, ua_probe=ua.rsplit("/", 1)[1])
    tables, dump = sqlite_dump(Path(server.env["SUGGESTBOX_DATA_DIR"]) / "suggestbox.sqlite3")
    assert table in tables and text in dump
    assert_absent(dump, {**needles, "proxy address": LIVE_PROXY}, "the SQLite file")
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert "Uvicorn running" in log or "Application startup complete" in log  # a real log
    assert_absent(log, {**needles, "case text": text, "case text start": text[:8]},
                  "the server log")


def test_live_server_database_and_log_hold_no_identity(live_server: LiveServer) -> None:
    """A real server process: the SQLite file and the server's log."""
    server = live_server
    server.cli("user", "add", "lead", "--role", "leader", "--password-stdin",
               stdin="password123\n")
    ua = user_agent()
    text = f"配电柜旁边堆放杂物，存在火灾隐患。{uuid.uuid4().hex[:6]}"
    web = httpx.Client(base_url=server.url, headers={"user-agent": ua,
                                                     "x-forwarded-for": ADDRESS})
    staff = httpx.Client(base_url=server.url, headers={"x-forwarded-for": ADDRESS})
    try:
        page = web.get("/?t=nope")
        r = web.post("/", data={"token": form_token(page.text), "category": "4", "body": text})
        assert r.status_code == 303
        m = RECEIPT_RE.search(web.get("/receipt").text)
        assert m
        receipt = m.group(1)
        # A failed and a good staff login, a case action, lookups typed several ways.
        assert staff.post("/staff/login", data={"username": "lead",
                                                "password": "wrong"}).status_code == 422
        assert staff.post("/staff/login", data={"username": "lead",
                                                "password": "password123"}).status_code == 303
        queue = staff.get("/staff/cases").text
        csrf_m = CSRF_RE.search(queue)
        assert csrf_m and text[:10] in queue
        for typed in [*receipt_forms(receipt), "WRONG-CODE-0000-0000"]:
            t = form_token(web.get("/track").text)
            web.post("/track", data={"token": t, "receipt": typed})
        t = form_token(web.get("/track").text)
        r = web.post("/track/followup", data={"token": t, "receipt": receipt,
                                              "body": "补充：" + text})
        assert r.status_code == 200
        # Something uvicorn itself logs: an invalid request.
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GARBAGE " + ADDRESS.encode() + b"\r\n\r\n")
            s.recv(100)
    finally:
        web.close()
        staff.close()
    assert_server_kept_no_identity(server, receipt, ua, text, "case")


def test_photo_markers_reach_no_table_file_or_log(live_server: LiveServer, tmp_path: Path) -> None:
    """A phone photo full of identifying metadata: after submitting and following up with it,
    no marker is in any file of the data directory (database, WAL) or in the server's log."""
    from tests.test_photos import MARKERS, evil_photo

    server = live_server
    evil = evil_photo(tmp_path)
    web = httpx.Client(base_url=server.url, headers={"user-agent": user_agent()})
    try:
        token = form_token(web.get("/").text)
        r = web.post("/", files=[("token", (None, token)), ("category", (None, "4")),
                                 ("body", (None, "变电所围栏缺了一段，照片为证。")),
                                 ("photos", ("IMG_20261126_094107.jpg", evil, "image/jpeg"))])
        assert r.status_code == 303, r.text[:300]
        m = RECEIPT_RE.search(web.get("/receipt").text)
        assert m
        t = form_token(web.get("/track").text)
        r = web.post("/track/followup", files=[
            ("token", (None, t)), ("receipt", (None, m.group(1))), ("body", (None, "再补一张")),
            ("photos", ("IMG_20261126_094108.jpg", evil, "image/jpeg"))])
        assert r.status_code == 200 and "已补充" in r.text
    finally:
        web.close()
    data_dir = Path(server.env["SUGGESTBOX_DATA_DIR"])
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    blob = b"".join(p.read_bytes() for p in files)
    assert len(blob) > 2 * 50_000  # the photos are in there
    needles = {**MARKERS, "file name": "IMG_20261126", "gps": "120.15515", "exif": "Exif\x00"}
    for name, needle in needles.items():
        assert needle.encode() not in blob, f"{name} found in the data directory"
    log = server.log.read_text(encoding="utf-8", errors="replace")
    for name, needle in needles.items():
        assert needle not in log, f"{name} found in the server log"


def test_depot_pages_keep_no_identity(live_server: LiveServer) -> None:
    """Issue 14's pages on a real server: the workshop list at /, a workshop's box and board at
    /w/<code>/, a case addressed to a depot desk, the desk's staff acting on it."""
    server = live_server
    server.cli("workshop", "add", "jx2", "检修二车间")
    server.cli("workshop", "add", "jijian", "纪检", "--desk")
    server.cli("user", "add", "jj", "--role", "leader", "--workshop", "jijian",
               "--password-stdin", stdin="password123\n")
    ua = user_agent()
    text = f"反映车间领导吃拿卡要的问题。{uuid.uuid4().hex[:6]}"
    web = httpx.Client(base_url=server.url, headers={"user-agent": ua,
                                                     "x-forwarded-for": ADDRESS})
    staff = httpx.Client(base_url=server.url, headers={"x-forwarded-for": ADDRESS})
    try:
        assert "/w/jx2/" in web.get("/").text
        assert web.get("/w/jx2/board").status_code == 200
        page = web.get("/w/jx2/")
        r = web.post("/w/jx2/", data={"token": form_token(page.text), "category": "1",
                                      "to": "jijian", "body": text})
        assert r.status_code == 303
        m = RECEIPT_RE.search(web.get("/receipt").text)
        assert m
        receipt = m.group(1)
        assert staff.post("/staff/login", data={"username": "jj",
                                                "password": "password123"}).status_code == 303
        queue = staff.get("/staff/cases").text
        assert text[:10] in queue
        t = form_token(web.get("/track").text)
        assert "纪检" in web.post("/track", data={"token": t, "receipt": receipt}).text
    finally:
        web.close()
        staff.close()
    assert_server_kept_no_identity(server, receipt, ua, text, "unit")


async def test_rewards_claimed_or_given_to_the_team_fund_keep_no_identity(
        app: Any, settings: Settings) -> None:
    """Issue 18: two adopted suggestions with rewards; one claimed at the desk with the
    receipt, the other given to the team fund from the worker's phone. No receipt, address or
    agent in any table, and the worker's side of both is stored at day precision only."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from suggestbox import cases
    from suggestbox.models import Event, StaffUser

    tz = ZoneInfo("Asia/Shanghai")
    await add_user("lead", "leader")
    ua = user_agent()
    transport = httpx.ASGITransport(app=app, client=(ADDRESS, 61235))
    headers = {"user-agent": ua, "referer": "http://198.51.100.77/qr-scan"}
    tag = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=headers) as web, \
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as staff:
        receipts = []
        for text in (f"建议食堂增加夜班窗口 {tag}", f"建议工具间加装照明 {tag}"):
            page = await web.get("/")
            r = await web.post("/", data={"token": form_token(page.text), "category": "2",
                                          "body": text})
            assert r.status_code == 303
            m = RECEIPT_RE.search((await web.get("/receipt")).text)
            assert m
            receipts.append(m.group(1))
            case = await Case.get(body=text)
            lead = await StaffUser.get(username="lead")
            now = datetime.now(UTC)
            await cases.apply(case.id, "accept", lead, now=now, tz=tz, assignee_id=lead.id)
            await cases.apply(case.id, "adopt", lead, now=now, tz=tz, body="采纳。")
            await cases.apply(case.id, "reward", lead, now=now, tz=tz, reward_amount=20,
                              reward_unit="yuan")
        csrf = await login(staff, "lead")
        r = await staff.post("/staff/rewards", data={"csrf": csrf, "step": "confirm",
                                                     "receipt": receipts[0], "handed": "1"})
        assert r.status_code == 303
        t = form_token((await web.get("/track")).text)
        r = await web.post("/track/reward_donate", data={"token": t, "receipt": receipts[1],
                                                         "confirm": "1"})
        assert r.status_code == 200 and "捐入班组基金" in r.text
    for event in await Event.filter(action__in=["reward_claim", "reward_donate"]):
        assert event.at.astimezone(tz).time() == datetime.min.time(), event.action
    tables, dump = await orm_dump(settings)
    assert f"建议食堂增加夜班窗口 {tag}" in dump
    needles = {f"receipt {n} form {i}": f for n, rc in enumerate(receipts)
               for i, f in enumerate(receipt_forms(rc))}
    needles.update(address=ADDRESS, user_agent=ua, ua_probe=ua.rsplit("/", 1)[1])
    assert_absent(dump, needles, "the dump after rewards")

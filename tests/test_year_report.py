"""The year summary (年度总结, issue 18 item 6): one whole year hand-computed on both databases
(cases across month and year boundaries, a month with nothing, a rating changed, published and
unpublished cases), the page and the .docx agree number for number, a closed year reprints
identically, a year not yet over is marked partial, the scope matrix, bad input, the command
line."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from docx import Document

from suggestbox import cases
from suggestbox.models import Unit
from suggestbox.months import Month
from suggestbox.reports import build_report
from suggestbox.year_report import YearReport, build_year_report
from tests.conftest import ROOT, login, make_client, workshop_today
from tests.test_reports import World, local

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
D = date
ADOPTION = "adopt" in cases.RULES  # the adoption review exists (after issue 18 item 2)
SECRET_TEXT = "原文绝不能出现在年度总结里"
PUBLISHED = {"X1": "食堂饭菜口味已调整", "X3": "澡堂热水时间延长"}
WITHDRAWN = "检修库照明已更换（已撤销公示）"


async def build_year_world() -> World:
    """Nine cases in 2025 (categories: 1 意见, 2 建议, 3 困难求助, 4 安全隐患, 5 其他)."""
    from tests.conftest import add_user

    w = World(await add_user("lead", "leader"))
    body = {"body": f"案件原文：{SECRET_TEXT}。"}
    # X1: January → February; answered on time, satisfied, closed; published.
    await w.new("X1", D(2025, 1, 30), cat=1, team="a", **body)
    await w.staff("X1", "accept", local(2025, 1, 31), deadline=D(2025, 2, 5))
    await w.staff("X1", "reply", local(2025, 2, 3), body="已调整。")
    await w.staff("X1", "publish", local(2025, 2, 3, 11), summary=PUBLISHED["X1"])
    await w.submitter("X1", "rate", D(2025, 2, 4), rating="satisfied")
    await w.staff("X1", "close", local(2025, 2, 12))
    # X2: received on 1-31, accepted after 3 days (not a response in time), answered late at
    # 23:30 local on 2-28 (February), rated 不满意 on 3-1, answered again, rated 满意 (the
    # rating changed), closed in March. Never published.
    await w.new("X2", D(2025, 1, 31), cat=2, team="a", **body)
    await w.staff("X2", "accept", local(2025, 2, 3), deadline=D(2025, 2, 10))
    if ADOPTION:  # issue 18 item 2 (branch i18): adopted, promised for 3-10
        await w.staff("X2", "adopt", local(2025, 2, 4), body="采纳。")
        await w.staff("X2", "promise", local(2025, 2, 4, 11), promised_on=D(2025, 3, 10))
    await w.staff("X2", "reply", local(2025, 2, 28, 23, 30), body="X2 第一次答复。")
    await w.submitter("X2", "rate_unsatisfied", D(2025, 3, 1), body="没解决。")
    await w.staff("X2", "reply", local(2025, 3, 5), body="X2 第二次答复。")
    await w.submitter("X2", "rate", D(2025, 3, 6), rating="satisfied")
    if ADOPTION:  # carried out on 3-8, before its promise
        await w.staff("X2", "carry_out", local(2025, 3, 8), body="已落实。", benefit="省时。")
    await w.staff("X2", "close", local(2025, 3, 20))
    # X3: March, 基本满意, published.
    await w.new("X3", D(2025, 3, 10), cat=1, team="b", **body)
    await w.staff("X3", "accept", local(2025, 3, 10), deadline=D(2025, 3, 20))
    await w.staff("X3", "reply", local(2025, 3, 15), body="已延长。")
    await w.staff("X3", "publish", local(2025, 3, 15, 11), summary=PUBLISHED["X3"])
    await w.submitter("X3", "rate", D(2025, 3, 16), rating="basic")
    await w.staff("X3", "close", local(2025, 3, 17))
    # April: nothing at all.
    # X4: May, rejected the same day.
    await w.new("X4", D(2025, 5, 6), cat=3, **body)
    await w.staff("X4", "reject", local(2025, 5, 6), body="不属于车间职责。")
    # X5: June, accepted, answered only at 23:00 on 12-31 (December, late); rated and closed in
    # 2026 (not in this year).
    await w.new("X5", D(2025, 6, 10), cat=4, team="a", **body)
    await w.staff("X5", "accept", local(2025, 6, 10), deadline=D(2025, 6, 12))
    await w.staff("X5", "reply", local(2025, 12, 31, 23), body="X5 的答复。")
    await w.submitter("X5", "rate", D(2026, 1, 2), rating="satisfied")
    await w.staff("X5", "close", local(2026, 1, 10))
    # X7: August, merged into X5 the next day (a response).
    await w.new("X7", D(2025, 8, 8), cat=5, team="b", **body)
    await w.staff("X7", "merge", local(2025, 8, 9), merge_into=w.ids["X5"].hex[:8].upper())
    # X8: September, answered on time, never rated, closed after the window; published, then
    # the publication withdrawn: its summary must not appear.
    await w.new("X8", D(2025, 9, 1), cat=1, team="b", **body)
    await w.staff("X8", "accept", local(2025, 9, 1), deadline=D(2025, 9, 5))
    await w.staff("X8", "reply", local(2025, 9, 3), body="已更换。")
    await w.staff("X8", "publish", local(2025, 9, 4), summary=WITHDRAWN)
    await w.staff("X8", "close", local(2025, 9, 20))
    await w.staff("X8", "unpublish", local(2025, 9, 21))
    # X9: October, 不满意 → answered again → closed without a new rating: not resolved.
    await w.new("X9", D(2025, 10, 10), cat=1, **body)
    await w.staff("X9", "accept", local(2025, 10, 10), deadline=D(2025, 10, 20))
    await w.staff("X9", "reply", local(2025, 10, 12), body="X9 第一次答复。")
    await w.submitter("X9", "rate_unsatisfied", D(2025, 10, 13), body="不行。")
    await w.staff("X9", "reply", local(2025, 10, 15), body="X9 第二次答复。")
    await w.staff("X9", "close", local(2025, 10, 25))
    # X6: received 12-30, accepted on 2026-01-01 (2 days: a response, counted in December).
    await w.new("X6", D(2025, 12, 30), cat=2, team="b", **body)
    await w.staff("X6", "accept", local(2026, 1, 1), deadline=D(2026, 1, 10))
    return w


async def workshop() -> Unit:
    unit = await Unit.filter(kind="workshop").order_by("id").first()
    assert unit is not None
    return unit


async def year_report(year: int = YEAR, now: datetime = NOW) -> YearReport:
    unit = await workshop()
    return await build_year_report(year, units=(unit.id,), tz=TZ, unit_label=unit.name, now=now)


def rates(f: Any) -> dict[str, tuple[int, int]]:
    return {k: (r.num, r.den) for k, r in f.rates.items() if k in (
        "response", "on_time", "resolution", "satisfaction")}


# Hand-computed months: received, answered, closed; the four rates as (num, den).
MONTHS: dict[int, tuple[int, int, int, dict[str, tuple[int, int]]]] = {
    1: (2, 0, 0, {"response": (1, 2), "on_time": (0, 0), "resolution": (0, 0),
                  "satisfaction": (0, 0)}),
    2: (0, 2, 1, {"response": (0, 0), "on_time": (1, 2), "resolution": (1, 1),
                  "satisfaction": (1, 1)}),
    3: (1, 2, 2, {"response": (1, 1), "on_time": (1, 1), "resolution": (2, 2),
                  "satisfaction": (2, 2)}),
    4: (0, 0, 0, {"response": (0, 0), "on_time": (0, 0), "resolution": (0, 0),
                  "satisfaction": (0, 0)}),
    5: (1, 0, 0, {"response": (1, 1), "on_time": (0, 0), "resolution": (0, 0),
                  "satisfaction": (0, 0)}),
    6: (1, 0, 0, {"response": (1, 1), "on_time": (0, 1), "resolution": (0, 0),
                  "satisfaction": (0, 0)}),
    7: (0, 0, 0, {"response": (0, 0), "on_time": (0, 0), "resolution": (0, 0),
                  "satisfaction": (0, 0)}),
    8: (1, 0, 0, {"response": (1, 1), "on_time": (0, 0), "resolution": (0, 0),
                  "satisfaction": (0, 0)}),
    9: (1, 1, 1, {"response": (1, 1), "on_time": (1, 1), "resolution": (1, 1),
                  "satisfaction": (0, 0)}),
    10: (1, 1, 1, {"response": (1, 1), "on_time": (1, 1), "resolution": (0, 1),
                   "satisfaction": (0, 1)}),
    11: (0, 0, 0, {"response": (0, 0), "on_time": (0, 0), "resolution": (0, 0),
                   "satisfaction": (0, 0)}),
    12: (1, 1, 0, {"response": (1, 1), "on_time": (0, 0), "resolution": (0, 0),
                   "satisfaction": (0, 0)}),
}
YEAR_TOTALS = {"received": 9, "accepted": 6, "rejected": 1, "answered": 7, "closed": 5,
               "reopened": 2, "merged": 1, "supports": 0, "open_at_end": 1,
               "overdue_at_end": 0}
YEAR_RATES = {"response": (8, 9), "on_time": (4, 6), "resolution": (4, 5),
              "satisfaction": (3, 4)}
CATEGORIES = {"意见": (4, 4, 4), "建议": (2, 2, 1), "困难求助": (1, 0, 0),
              "安全隐患": (1, 1, 0), "其他": (1, 0, 0)}


async def test_year_hand_computed(app):
    w = await build_year_world()
    r = await year_report()
    assert r.complete and not r.missing and r.running is None and r.partial_note == ""
    for row in r.months:
        received, answered, closed, want = MONTHS[row.month.month]
        assert row.figures is not None and not row.running
        got = (row.total("received"), row.total("answered"), row.total("closed"))
        assert got == (received, answered, closed), row.month
        assert rates(row.figures) == want, row.month
    # The months are the monthly report's figures, definition for definition.
    unit = await workshop()
    for m in (3, 4, 12):
        monthly = await build_report(Month(YEAR, m), units=(unit.id,), tz=TZ, now=NOW)
        row = r.months[m - 1]
        assert row.figures is not None
        assert {k: v for k, v in monthly.figures.totals.items()} == row.figures.totals
        assert rates(monthly.figures) == rates(row.figures)
    totals = {k: r.figures.totals[k] for k in YEAR_TOTALS}
    assert totals == YEAR_TOTALS
    assert rates(r.figures) == YEAR_RATES
    # Every flow is the sum of its months.
    for name in ("received", "accepted", "answered", "closed", "reopened", "merged"):
        assert r.figures.totals[name] == sum(
            row.total(name) or 0 for row in r.months)
    cats = {g.label: (g.received, g.answered, g.closed) for g in r.by_category}
    assert cats == CATEGORIES
    # The team table is the monthly report's audited year table, as December prints it.
    december = await build_report(Month(YEAR, 12), units=(unit.id,), tz=TZ, now=NOW)
    table = next(t for t in december.team_periods if t.kind == "year")
    assert r.team_table is not None
    assert [(g.label, g.received) for g in r.team_table.rows] == [
        (g.label, g.received) for g in table.rows]
    assert sum(g.received for g in r.team_table.rows) == 9
    # Typical cases: the published ones only, by their public summary.
    assert [c.summary for c in r.typical] == [PUBLISHED["X1"], PUBLISHED["X3"]]
    assert [c.number for c in r.typical] == [w.ids["X1"].hex[:8].upper(),
                                             w.ids["X3"].hex[:8].upper()]
    assert r.typical_total == 2
    text = json.dumps(r.as_dict(), ensure_ascii=False)
    assert SECRET_TEXT not in text and WITHDRAWN not in text and "第一次答复" not in text
    assert r.opening.startswith(f"2025 年，{unit.name}全年通过“职工百宝箱”")
    assert "响应率：" in r.movable[1] and "（已确定）" in r.movable[1]
    assert "收到职工意见建议 9 件" in r.opening and "办结 5 件" in r.opening
    assert "满意率 75.0%（4 件次评价中满意或基本满意 3 件次）" in r.opening
    # Adoption figures appear when the monthly figures carry them (issue 18 item 5): two 建议
    # received (X2, X6), X2 reviewed and adopted in February, its promise due 3-10 kept (3-8).
    if "suggestions" in r.figures.totals:
        a = r.adoption_totals
        assert (a["suggestions"], a["reviewed"], a["adopted"], a["carried_out"]) == (2, 1, 1, 1)
        assert a["promises_overdue"] == 0
        assert [(k, v.num, v.den) for k, v in r.adoption_rates.items()] == [
            ("adoption", 1, 1), ("carried_out", 1, 1)]
        assert r.months[1].total("adopted") == 1 and r.months[2].total("carried_out") == 1
        assert ("其中建议 2 件，采纳 1 件（采纳率 100.0%），已落实 1 件（落实率 100.0%）"
                in r.opening)
    else:
        assert r.adoption_totals == {} and "建议" not in r.opening.split("。")[1]


async def test_closed_year_reprints_identically(app):
    w = await build_year_world()
    first = await year_report()
    # Later events, and a new case: none may move 2025.
    await w.staff("X6", "reply", local(2026, 1, 5), body="X6 的答复。")
    await w.staff("X9", "reopen", local(2026, 2, 1), body="再办一次。")
    await w.new("Y1", D(2026, 1, 3), cat=1, team="a")
    again = await year_report(now=datetime(2026, 9, 1, 4, tzinfo=UTC))

    def figures(r: YearReport) -> dict[str, Any]:
        d = r.as_dict()
        for key in ("generated_at", "typical", "typical_total"):
            d.pop(key)
        return d

    assert figures(again) == figures(first)


async def test_year_not_over_is_partial(app):
    await build_year_world()
    # On 2025-09-15 (local): September running, October to December missing.
    r = await year_report(now=datetime(2025, 9, 15, 4, tzinfo=UTC))
    assert not r.complete and r.running == Month(2025, 9)
    assert r.missing == [Month(2025, m) for m in (10, 11, 12)]
    assert [row.figures is None for row in r.months] == [False] * 9 + [True] * 3
    assert "9 月尚未结束" in r.partial_note and "10 月、11 月、12 月尚未开始" in r.partial_note
    assert r.opening.startswith("2025 年 1 月 1 日至 9 月 15 日，")
    assert r.team_table is None  # only for a complete year
    # Up to then: X1 … X8 received (7 cases); the running month is the monthly report's
    # figures of September as generated then (the world's later events are in the database
    # already: the report reads whole months, as the monthly report does).
    assert r.figures.totals["received"] == 7
    unit = await workshop()
    september = await build_report(Month(2025, 9), units=(unit.id,), tz=TZ,
                                   now=datetime(2025, 9, 15, 4, tzinfo=UTC))
    assert r.months[8].figures is not None
    assert r.months[8].figures.totals == september.figures.totals


def figure(html: str, name: str) -> str:
    m = re.search(rf'data-figure="{re.escape(name)}">([^<]*)<', html)
    assert m, name
    return m.group(1)


def docx_tables(data: bytes) -> dict[str, list[list[str]]]:
    """The document's tables by their description (w:tblDescription)."""
    from docx.oxml.ns import qn

    doc = Document(io.BytesIO(data))
    out = {}
    for t in doc.tables:
        desc = t._tbl.tblPr.find(qn("w:tblDescription"))
        assert desc is not None
        out[desc.get(qn("w:val"))] = [[c.text for c in row.cells] for row in t.rows]
    return out


def check_docx_matches_page(data: bytes, html: str) -> None:
    """Every number of the .docx equals the page's, compared as parsed values."""
    doc = Document(io.BytesIO(data))
    text = "\n".join(p.text for p in doc.paragraphs)
    opening = re.search(r'id="opening">([^<]*)<', html)
    assert opening and opening.group(1) in text
    assert SECRET_TEXT not in text and WITHDRAWN not in text
    tables = docx_tables(data)

    def page_rows(prefix: str) -> list[tuple[str, str]]:
        return re.findall(rf'<th scope="row">([^<]*)</th><td class="num" '
                          rf'data-figure="{prefix}\.[a-z_.]+">([^<]*)<', html)

    def number(v: str) -> float | None:
        return None if v == "—" else float(v.rstrip("%"))

    # The totals, row for row, as numbers.
    page_totals = page_rows(r"year\.total")
    assert len(page_totals) >= 10
    assert [(label, int(v)) for label, v in page_totals] == [
        (row[0], int(row[1])) for row in tables["year.totals"][1:]]
    # The rates: value and fraction.
    for row in tables["year.rates"][1:]:
        name = {"响应率": "response", "按时答复率": "on_time", "解决率": "resolution",
                "满意率": "satisfaction"}[row[0]]
        assert number(row[1]) == number(figure(html, f"year.rate.{name}"))
        assert row[2] == figure(html, f"year.rate.{name}.frac")
    # Adoption and 落实, when the monthly figures carry them.
    page_adoption = page_rows(r"adoption\.(?:total|rate)")
    if "year.adoption" in tables:
        assert [(label, number(v)) for label, v in page_adoption] == [
            (row[0], number(row[1])) for row in tables["year.adoption"][1:]]
        assert 'id="adoption"' in html
    else:
        assert page_adoption == [] and 'id="adoption"' not in html
    months = tables["year.months"]
    assert months[0][:4] == ["月份", "收到", "答复", "办结"]
    for i, row in enumerate(months[1:13], start=1):
        key = f"month.{YEAR}-{i:02d}"
        for j, col in enumerate(("received", "answered", "closed"), start=1):
            assert number(row[j]) == number(figure(html, f"{key}.{col}")), (key, col)
        for j, name in enumerate(("response", "on_time", "resolution", "satisfaction"),
                                 start=4):
            assert number(row[j]) == number(figure(html, f"{key}.rate.{name}")), (key, name)
    assert months[13][0] == "全年"
    for row in tables["year.categories"][1:]:
        assert int(row[1]) == int(figure(html, f"cat.{row[0]}.received"))
        assert int(row[2]) == int(figure(html, f"cat.{row[0]}.answered"))
        assert int(row[3]) == int(figure(html, f"cat.{row[0]}.closed"))
    if "year.teams" in tables:
        for row in tables["year.teams"][1:]:
            assert int(row[1]) == int(figure(html, f"team.{row[0]}.received"))
    # Chinese renders: the styles name an East Asian font.
    normal = doc.styles["Normal"].element.rPr.rFonts
    assert normal.get(qn("w:eastAsia")) == "宋体"


def qn(tag: str) -> str:
    from docx.oxml.ns import qn as _qn

    return str(_qn(tag))


async def test_year_page_and_docx_agree(app):
    await build_year_world()
    async with make_client(app) as c:
        await login(c, "lead")
        page = await c.get(f"/staff/reports/{YEAR}")
        assert page.status_code == 200
        html = page.text
        assert figure(html, "year.total.received") == "9"
        assert figure(html, "year.rate.satisfaction") == "75.0%"
        assert figure(html, f"month.{YEAR}-04.received") == "0"
        assert figure(html, "cat.建议.answered") == "2"
        assert PUBLISHED["X1"] in html and PUBLISHED["X3"] in html
        assert SECRET_TEXT not in html and WITHDRAWN not in html and "第一次答复" not in html
        assert 'id="partial"' not in html
        assert f'href="/staff/reports/{YEAR}/year.docx"' in html
        assert f'href="/staff/reports/{YEAR}-12"' in html  # to December's monthly report
        got = await c.get(f"/staff/reports/{YEAR}/year.docx")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert f'filename="year-{YEAR}.docx"' in got.headers["content-disposition"]
        check_docx_matches_page(got.content, html)
        # The monthly page links to its year.
        month_page = await c.get(f"/staff/reports/{YEAR}-03")
        assert f'href="/staff/reports/{YEAR}" id="year-link"' in month_page.text


async def test_year_bad_input(app):
    await build_year_world()
    async with make_client(app) as c:
        await login(c, "lead")
        future = workshop_today().year + 2  # two years ahead: never a page
        for path in ("0", "99999", "abcd", "1999", "0000", str(future), "2025%00",
                     "20%0025", "%00", "9" * 5000, "２０２５", "2025.0", "-2025"):
            for suffix in ("", "/year.docx"):
                r = await c.get(f"/staff/reports/{path}{suffix}")
                # A NUL in the path is refused before routing (400, edge.py); else 404.
                want = 400 if "%00" in path else 404
                assert r.status_code == want, (path[:20], suffix, r.status_code)
                assert re.search("[\u4e00-\u9fff]", r.text), r.text[:200]  # a Chinese page
        r = await c.get(f"/staff/reports/{YEAR}?w=%00")
        assert r.status_code == 400
        r = await c.get(f"/staff/reports/{YEAR}/year.docx?w=" + "x" * 5000)
        assert r.status_code == 404


async def test_year_access_matrix(app):
    from tests.test_depot_report import build_depot

    w = await build_depot()
    a, b, desk = w.code("A"), w.code("B"), w.code("D")
    year = "/staff/reports/2026"
    matrix = [
        ("lead-a", "", 200), ("lead-a", a, 200), ("lead-a", b, 404), ("lead-a", desk, 404),
        ("lead-a", "nope", 404),
        ("lead-b", a, 404), ("lead-b", b, 200),
        ("lead-d", "", 200), ("lead-d", desk, 200), ("lead-d", a, 404),
        ("boss", "", 200), ("boss", a, 200), ("boss", b, 200), ("boss", desk, 404),
        ("boss", "nope", 404), ("root", "", 200), ("root", desk, 404),
        ("hand-a", "", 403), ("hand-a", a, 403),
    ]
    clients: dict[str, Any] = {}
    try:
        for user, code, expected in matrix:
            if user not in clients:
                clients[user] = make_client(app)
                await login(clients[user], user)
            for suffix in ("", "/year.docx"):
                url = year + suffix + (f"?w={code}" if code else "")
                got = await clients[user].get(url)
                assert got.status_code == expected, (user, url, got.status_code)

        async def page(user: str, code: str = "") -> str:
            return str((await clients[user].get(year + (f"?w={code}" if code else ""))).text)

        # March 2026 (the depot world): A 4, B 3, C 1 workshop cases, the desk 7.
        depot_html = await page("boss")
        assert "全段" in depot_html and figure(depot_html, "year.total.received") == "8"
        assert "工会的答复" not in depot_html
        assert figure(await page("lead-a"), "year.total.received") == "4"
        b_html = await page("boss", b)
        assert figure(b_html, "year.total.received") == "3"
        assert f'href="{year}/year.docx?w={b}"' in b_html
        assert f'href="/staff/reports/2026-03?w={b}"' in b_html
        assert figure(await page("lead-d"), "year.total.received") == "7"
        monthly = (await clients["boss"].get("/staff/reports/2026-03")).text
        assert 'href="/staff/reports/2026" id="year-link"' in monthly
        monthly = (await clients["boss"].get(f"/staff/reports/2026-03?w={b}")).text
        assert f'href="/staff/reports/2026?w={b}" id="year-link"' in monthly
        docx = await clients["boss"].get(year + "/year.docx")
        assert 'filename="year-2026-depot.docx"' in docx.headers["content-disposition"]
        totals = {row[0]: row[1] for row in docx_tables(docx.content)["year.totals"][1:]}
        assert totals["收到"] == "8"
    finally:
        for c in clients.values():
            await c.aclose()


async def test_command_line_year(app, settings, tmp_path: Path):
    await build_year_world()
    env = {**os.environ, "SUGGESTBOX_DATABASE_URL": settings.database_url,
           "SUGGESTBOX_DATA_DIR": str(tmp_path / "cli-data"),
           "SUGGESTBOX_SECRET_KEY": settings.secret_key}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "suggestbox.cli", "report", *args],
                              env=env, cwd=ROOT, capture_output=True, timeout=120,
                              check=False)

    out = tmp_path / "year.docx"
    done = run(str(YEAR), "--format", "docx", "--out", str(out))
    assert done.returncode == 0, done.stderr.decode()
    html = run(str(YEAR), "--format", "html")
    assert html.returncode == 0, html.stderr.decode()
    text = html.stdout.decode()
    assert "<style>" in text and "2025 年度总结" in text
    check_docx_matches_page(out.read_bytes(), text)
    data = json.loads(run(str(YEAR), "--format", "json").stdout)
    assert data["year_figures"]["totals"]["received"] == 9 and data["complete"] is True
    for bad, words in (("abcd", "年份格式"), ("0", "年份格式"), ("99999", "年份格式"),
                       ("1999", "超出范围"), ("2999", "还没有到")):
        got = run(bad, "--format", "docx", "--out", str(tmp_path / "x.docx"))
        assert got.returncode == 2 and words in got.stderr.decode(), (bad, got.stderr)
    got = run(str(YEAR), "--format", "csv")
    assert got.returncode == 2 and "docx、html 和 json" in got.stderr.decode()
    got = run("2025-03", "--format", "docx")
    assert got.returncode == 2 and "年度总结" in got.stderr.decode()
    got = run(str(YEAR), "--format", "docx", "--workshop", "nope", "--out", str(out))
    assert got.returncode == 2 and "nope" in got.stderr.decode()

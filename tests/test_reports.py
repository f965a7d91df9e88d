"""Monthly summary (月度汇总): a hand-computed data set through the domain functions, on both
databases; the page, the CSV files, the command line, access and zero denominators."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from suggestbox import cases
from suggestbox.models import Team
from suggestbox.months import Month
from suggestbox.report_export import figures_csv
from suggestbox.reports import Rate, build_report, percentile, rate_definitions
from tests.conftest import ROOT, add_user, login, make_client

TZ = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    """A workshop-local wall time as the UTC instant staff actions are stored with."""
    return datetime(y, m, d, hh, mm, tzinfo=TZ).astimezone(UTC)


async def workshop_report(month: Month, **kw: Any) -> Any:
    """The report of the oldest workshop (the single workshop these tests build)."""
    from suggestbox.models import Unit

    unit = await Unit.filter(kind="workshop").order_by("id").first()
    assert unit is not None
    return await build_report(month, units=(unit.id,), **kw)


class World:
    """Builds cases through cases.submit_case / cases.apply with injected times."""

    def __init__(self, leader: Any) -> None:
        self.leader = leader
        self.teams: dict[str, Team] = {}
        self.ids: dict[str, uuid.UUID] = {}

    async def team(self, code: str) -> Team:
        if code not in self.teams:
            self.teams[code] = await Team.create(code=code, name=f"{code.upper()}班")
        return self.teams[code]

    async def new(self, name: str, received: date, *, cat: int = 1, team: str | None = None,
                  body: str | None = None) -> uuid.UUID:
        result = await cases.submit_case(
            secret_key="k" * 32, nonce=secrets.token_urlsafe(12), category_id=cat,
            team=await self.team(team) if team else None,
            body=body or f"案件 {name} 的原始内容，报表里绝不能出现。", today=received, tz=TZ,
        )
        self.ids[name] = result.case.id
        return result.case.id

    async def staff(self, name: str, action: str, at: datetime, **kw: Any) -> None:
        if action in ("accept", "transfer"):
            kw.setdefault("assignee_id", self.leader.id)
        await cases.apply(self.ids[name], action, self.leader, now=at, tz=TZ,
                          rating_window_days=7, **kw)

    async def submitter(self, name: str, action: str, day: date, **kw: Any) -> None:
        await cases.apply(self.ids[name], action, None, now=local(day.year, day.month, day.day),
                          tz=TZ, **kw)


async def build_world() -> World:
    leader = await add_user("lead", "leader")
    w = World(leader)
    D = date  # noqa: N806
    # --- earlier months -------------------------------------------------------------------
    await w.new("C8", D(2026, 1, 15), cat=2, team="c")
    await w.staff("C8", "accept", local(2026, 1, 16), deadline=D(2026, 1, 30))
    await w.staff("C8", "reply", local(2026, 1, 20), body="一月的答复。")
    await w.staff("C8", "close", local(2026, 3, 5))  # unrated, window passed: resolved

    await w.new("P1", D(2026, 2, 10), cat=1, team="a")
    await w.staff("P1", "accept", local(2026, 2, 11), deadline=D(2026, 2, 20))
    await w.staff("P1", "reply", local(2026, 2, 15), body="二月的答复。")
    await w.submitter("P1", "rate", D(2026, 2, 16), rating="satisfied")
    await w.staff("P1", "close", local(2026, 2, 17))

    await w.new("P2", D(2026, 2, 20), cat=2, team="b")
    await w.staff("P2", "accept", local(2026, 3, 2), deadline=D(2026, 3, 10))
    await w.staff("P2", "reply", local(2026, 3, 9), body="P2 的答复。")

    await w.new("C12", D(2026, 2, 25), cat=1, team="a")
    await w.staff("C12", "accept", local(2026, 2, 25), deadline=D(2026, 3, 5))
    await w.staff("C12", "reply", local(2026, 2, 27), body="C12 第一次答复。")
    await w.submitter("C12", "rate", D(2026, 2, 28), rating="unsatisfied", body="没解决。")
    await w.staff("C12", "reply", local(2026, 3, 1), body="C12 第二次答复。")
    await w.staff("C12", "close", local(2026, 3, 9))  # closed, last word 不满意: not resolved

    # --- March 2026 -----------------------------------------------------------------------
    await w.new("C1", D(2026, 3, 1), cat=1, team="a")
    await w.staff("C1", "accept", local(2026, 3, 2, 9), deadline=D(2026, 3, 10))
    await w.staff("C1", "reply", local(2026, 3, 5), body="已与食堂沟通。\n下周起减少用盐。")
    await w.submitter("C1", "rate", D(2026, 3, 6), rating="satisfied")
    await w.staff("C1", "close", local(2026, 3, 7))
    await w.staff("C1", "publish", local(2026, 3, 8), summary="食堂饭菜口味已调整")

    await w.new("C2", D(2026, 3, 1), cat=1, team="a")
    await w.staff("C2", "accept", local(2026, 3, 4), deadline=D(2026, 3, 8))
    await w.submitter("C2", "urge", D(2026, 3, 9))
    await w.staff("C2", "reply", local(2026, 3, 12), body="C2 第一次答复。")
    await w.submitter("C2", "rate", D(2026, 3, 13), rating="unsatisfied", body="还是不行。")
    await w.staff("C2", "reply", local(2026, 3, 14), body="C2 第二次答复。")

    await w.new("C3", D(2026, 3, 2), cat=2, team="a")
    await w.staff("C3", "reject", local(2026, 3, 3), body="不属于车间职责。")

    await w.new("C4", D(2026, 3, 10), cat=1, team="b")
    await w.staff("C4", "accept", local(2026, 3, 10), deadline=D(2026, 3, 20))
    await w.staff("C4", "start", local(2026, 3, 11))

    await w.new("C5", D(2026, 3, 15), cat=2, team="b")
    number = w.ids["C1"].hex[:8].upper()
    await w.staff("C5", "merge", local(2026, 3, 16), merge_into=number)

    # Accepted at 00:30 local on 1 April (still 31 March in UTC): April's action, 1 day taken.
    await w.new("C6", D(2026, 3, 31), cat=1, team="c")
    await w.staff("C6", "accept", datetime(2026, 3, 31, 16, 30, tzinfo=UTC),
                  deadline=D(2026, 4, 10))

    # Accepted 23:59 local on the day received; answered 00:30 local the day after the
    # deadline (in UTC still the deadline day): late.
    await w.new("C7", D(2026, 3, 20), cat=1, team=None)
    await w.staff("C7", "accept", datetime(2026, 3, 20, 15, 59, tzinfo=UTC),
                  deadline=D(2026, 3, 25))
    await w.staff("C7", "reply", datetime(2026, 3, 25, 16, 30, tzinfo=UTC), body="C7 的答复。")
    await w.submitter("C7", "rate", D(2026, 3, 27), rating="basic")
    await w.staff("C7", "close", local(2026, 3, 28))

    await w.new("C9", D(2026, 3, 25), cat=1, team="a")

    await w.new("C10", D(2026, 3, 5), cat=1, team="b", body="原文不应出现在报表中的秘密细节。")
    await w.staff("C10", "accept", local(2026, 3, 5), deadline=D(2026, 3, 15))
    await w.staff("C10", "reply", local(2026, 3, 10), body="第一行答复\n第二行细节不列出")
    await w.staff("C10", "close", local(2026, 4, 20))

    # In progress at the end of March, answered and closed in April.
    await w.new("C11", D(2026, 3, 6), cat=2, team="b")
    await w.staff("C11", "accept", local(2026, 3, 6), deadline=D(2026, 3, 31))
    await w.staff("C11", "start", local(2026, 3, 7))
    await w.submitter("C11", "urge", D(2026, 4, 1))
    await w.staff("C11", "reply", local(2026, 4, 2), body="C11 四月的答复。")
    await w.staff("C11", "close", local(2026, 4, 10))

    await w.new("C13", D(2026, 3, 18), cat=2, team="d")
    await w.new("C14", D(2026, 3, 19), cat=2, team="d")

    # 催办: C2 (due 8 March, answered the 12th) once on the 9th; C4 (due 20 March, still open)
    # on the 21st and 22nd, and a second press on the 22nd is refused. C11 (due 31 March) is
    # pressed on 1 April: April's. C9 (due 1 April) cannot be pressed on 30 March.
    await w.submitter("C4", "urge", D(2026, 3, 21))
    await w.submitter("C4", "urge", D(2026, 3, 22))
    with pytest.raises(cases.DomainError, match="今天已经催过了"):
        await w.submitter("C4", "urge", D(2026, 3, 22))
    with pytest.raises(cases.DomainError, match="还没有超过办理期限"):
        await w.submitter("C9", "urge", D(2026, 3, 30))
    return w


# Issue 18's figures (tests/test_followthrough.py): nothing reviewed, promised or rewarded here.
NO_FOLLOW = {"reviewed": 0, "adopted": 0, "carried_out": 0, "promises_overdue": 0,
             "rewards_given": 0, "reward_yuan_given": 0, "reward_points_given": 0,
             "rewards_claimed": 0, "reward_yuan_claimed": 0, "reward_points_claimed": 0,
             "rewards_team_fund": 0}
MARCH_TOTALS = {
    "received": 12, "accepted": 7, "rejected": 1, "answered": 6, "closed": 4,
    "open_at_end": 6, "overdue_at_end": 2, "reopened": 1, "merged": 1,
        "supports": 0, "urges": 3, "urged_cases": 2,
    "suggestions": 5,  # category 2 is 建议: C3, C5, C11, C13, C14
    **NO_FOLLOW,
}
FEB_TOTALS = {
    "received": 3, "accepted": 2, "rejected": 0, "answered": 2, "closed": 1,
    "open_at_end": 2, "overdue_at_end": 0, "reopened": 1, "merged": 0,
        "supports": 0, "urges": 0, "urged_cases": 0,
    "suggestions": 1,  # P2
    **NO_FOLLOW,
}
NOW = datetime(2026, 5, 3, 4, 0, tzinfo=UTC)


async def test_hand_computed_month(app):
    w = await build_world()
    r = await workshop_report(Month(2026, 3), tz=TZ, now=NOW)
    assert r.figures.totals == MARCH_TOTALS
    assert r.previous.totals == FEB_TOTALS
    rates = {k: (v.num, v.den, v.display) for k, v in r.figures.rates.items()}
    assert rates == {
        "response": (8, 12, "66.7%"),  # C5's merge is its response
        "on_time": (4, 8, "50.0%"),
        "resolution": (3, 4, "75.0%"),
        "satisfaction": (2, 3, "66.7%"),
        "adoption": (0, 0, "—"),
        "carried_out": (0, 0, "—"),
    }
    prev = {k: (v.num, v.den) for k, v in r.previous.rates.items()}
    assert prev == {"response": (2, 3), "on_time": (1, 1), "resolution": (1, 1),
                    "satisfaction": (1, 2), "adoption": (0, 0), "carried_out": (0, 0)}
    assert r.rate_delta("response") == "0" and r.rate_delta("on_time") == "-50.0 个百分点"
    assert r.delta("received") == "+9"
    # Days to respond: 0,0,0,0,1,1,1 (C5 merged),3,10; days to answer: 4,5,6,11,17.
    assert (r.accept_times.n, r.accept_times.median, r.accept_times.p90) == (9, 1,
                                                                              pytest.approx(4.4))
    assert (r.answer_times.n, r.answer_times.median, r.answer_times.p90) == (5, 6,
                                                                              pytest.approx(14.6))
    cats = {g.label: (g.received, g.answered, g.closed) for g in r.by_category}
    assert cats == {"意见": (7, 5, 3), "建议": (5, 1, 1), "困难求助": (0, 0, 0),
                    "安全隐患": (0, 0, 0), "其他": (0, 0, 0)}
    teams = {g.label: (g.received, g.answered, g.closed) for g in r.by_team}
    # C班 (1 case) and D班 (2 cases) are folded, with the case that names no team.
    assert teams == {"A班": (4, 3, 2), "B班": (4, 2, 0), "其他": (4, 1, 2)}
    other = r.by_team[-1]
    assert other.folded_teams == 2
    # Q1 2026 by team: A 6 (2 in Jan–Feb), B 5 (1 in Jan–Feb), C 2, D 2. Naming A or B would
    # let "quarter minus March" give 2 and 1: every team is folded. 2025 had no cases.
    assert [(t.period, [(g.label, g.received) for g in t.rows]) for t in r.team_periods] == [
        ("2026-Q1", [("其他", 16)]), ("2025", [])]
    assert r.complete
    # The list: last answer in the month per case, in answer order.
    listed = [(c.number, c.days) for c in r.cases]
    num = {k: v.hex[:8].upper() for k, v in w.ids.items()}
    assert listed == [(num["C12"], 4), (num["C1"], 4), (num["P2"], 17), (num["C10"], 5),
                      (num["C2"], 13), (num["C7"], 6)]
    by_num = {c.number: c for c in r.cases}
    assert by_num[num["C1"]].summary == "食堂饭菜口味已调整"
    assert by_num[num["C1"]].answer == "已与食堂沟通。\n下周起减少用盐。"
    assert by_num[num["C10"]].summary == "" and by_num[num["C10"]].answer == "第一行答复"
    assert by_num[num["C7"]].answered_on == date(2026, 3, 26)
    assert r.cases_total == 6
    trend = {str(t.month): (t.received, t.answered) for t in r.trend}
    assert len(r.trend) == 12 and str(r.trend[-1].month) == "2026-03"
    assert trend["2026-01"] == (1, 1) and trend["2026-02"] == (3, 2)
    assert trend["2026-03"] == (12, 6) and trend["2025-12"] == (0, 0)


async def test_small_fold_is_shown_as_a_number(app):
    """February with K=4: A 2 and B 1 are folded; nothing is left to fold, so 其他 (3) is the
    month's total received, a number anyone could read from the totals anyway."""
    await build_world()
    r = await workshop_report(Month(2026, 2), tz=TZ, small_group_k=4, now=NOW)
    assert [(g.label, g.received, g.answered, g.closed, g.folded_teams) for g in r.by_team] == [
        ("其他", 3, 2, 1, 2)]
    assert r.as_dict()["by_team"][0]["received"] == 3


async def test_zero_denominators_show_a_dash(app):
    await build_world()
    r = await workshop_report(Month(2025, 6), tz=TZ, now=NOW)
    assert all(v.display == "—" and v.value is None for v in r.figures.rates.values())
    assert r.accept_times.median is None and r.accept_times.median_display == "—"
    await add_user("boss", "admin")
    async with make_client(app) as c:
        await login(c, "boss")
        page = await c.get("/staff/reports/2025-06")
        assert page.status_code == 200
        for name in ("response", "on_time", "resolution", "satisfaction"):
            assert figure(page.text, f"rate.{name}") == "—"
        assert "0.0%" not in page.text and "100.0%" not in page.text


def test_rate_and_percentile_units():
    assert Rate(0, 0).display == "—"
    assert Rate(0, 5).display == "0.0%" and Rate(5, 5).display == "100.0%"
    assert percentile({}, 0.5) is None
    assert percentile({3: 1}, 0.9) == 3
    assert percentile({1: 2, 2: 2}, 0.5) == 1.5
    assert Month.parse("2026-03").prev() == Month(2025 + 1, 2)
    assert Month.parse("2026-01").prev() == Month(2025, 12)
    assert Month.last_complete(date(2026, 1, 5)) == Month(2025, 12)
    for bad in ("2026-13", "2026-3", "26-03", "abcd-ef", "1999-12", "2026-00"):
        with pytest.raises(ValueError):
            Month.parse(bad)


FIGURE_RE = r'data-figure="{}">([^<]*)<'


def figure(html: str, name: str) -> str:
    m = re.search(FIGURE_RE.format(re.escape(name)), html)
    assert m, f"no figure {name}"
    return m.group(1)


async def test_page_csv_and_access(app, tmp_path):
    w = await build_world()
    await add_user("hand", "handler")
    march = {"received": 12, "response": "66.7%", "resp_num": 8}
    async with make_client(app) as c, make_client(app) as h:
        await login(c, "lead")
        page = await c.get("/staff/reports/2026-03")
        assert page.status_code == 200, page.text
        html = page.text
        assert "月度汇总" in html and "2026 年 3 月" in html and "<svg" in html
        assert 'style="' not in html  # CSP: no inline style attributes
        assert "<script" not in html
        for name, value in MARCH_TOTALS.items():
            assert figure(html, f"total.{name}") == str(value)
        assert figure(html, "rate.response") == march["response"]
        assert "按时答复率" in html and "按时办结率" not in html
        assert "2026-04-03 起不再变化（已确定）" in html
        assert figure(html, "time.answer.p90") == "14.6"
        assert figure(html, "team.其他.received") == "4"
        assert "原始内容" not in html and "秘密细节" not in html and "第二行细节不列出" not in html
        assert "食堂饭菜口味已调整" in html and "第一行答复" in html
        assert 'href="/staff/reports"' in html  # the nav link

        # The figures CSV: UTF-8 with BOM, one value per cell, the same figures as the page.
        got = await c.get("/staff/reports/2026-03/figures.csv")
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert rows[0] == ["部分", "期间", "项目", "指标", "本期", "上期", "变化", "分子", "分母",
                           "口径"]
        assert all(len(row) == 10 for row in rows)
        by_label = {(row[0], row[1], row[2], row[3]): row for row in rows[1:]}
        labels = {"received": "收到", "accepted": "受理", "rejected": "不予受理",
                  "answered": "答复", "closed": "办结", "open_at_end": "月末未办结",
                  "overdue_at_end": "月末超期", "reopened": "不满意重办", "merged": "合并为重复",
                  "supports": "我也遇到", "urges": "催办", "urged_cases": "被催办的案件"}
        for name, label in labels.items():
            row = by_label[("总量", "2026-03", label, "件数")]
            assert int(row[4]) == int(figure(html, f"total.{name}"))  # a number, not "收到 2"
            assert int(row[5]) == int(figure(html, f"prev.total.{name}"))
            assert int(row[6]) == int(row[4]) - int(row[5])
        for name, label in (("response", "响应率"), ("on_time", "按时答复率"),
                            ("resolution", "解决率"), ("satisfaction", "满意率")):
            row = by_label[("比率", "2026-03", label, "百分比")]
            assert f"{float(row[4]):.1f}%" == figure(html, f"rate.{name}")
            assert f"{float(row[5]):.1f}%" == figure(html, f"prev.rate.{name}")
        assert by_label[("比率", "2026-03", "响应率", "百分比")][7:9] == ["8", "12"]
        assert by_label[("用时", "2026-03", "答复用时", "中位数（天）")][4] == "6"
        assert by_label[("用时", "2026-03", "响应用时", "第90百分位（天）")][4] == "4.4"
        assert by_label[("按班组", "2026-03", "其他", "收到")][4] == "4"
        assert by_label[("按班组", "2026-Q1", "其他", "收到")][4] == "16"
        # Excel can sum: the categories' received add up to the total.
        assert sum(int(row[4]) for row in rows[1:] if row[0] == "按类别" and row[3] == "收到") \
            == march["received"]
        assert sum(int(row[4]) for row in rows[1:]
                   if row[0] == "按班组" and row[1] == "2026-03" and row[3] == "收到") == 12

        listed = await c.get("/staff/reports/2026-03/cases.csv")
        assert listed.content.startswith(b"\xef\xbb\xbf")
        list_rows = list(csv.reader(io.StringIO(listed.content.decode("utf-8-sig"))))
        assert list_rows[0][0] == "编号" and len(list_rows) == 7
        assert {r[0] for r in list_rows[1:]} == {w.ids[k].hex[:8].upper()
                                                 for k in ("C12", "C1", "P2", "C10", "C2", "C7")}
        assert "原始内容" not in listed.content.decode("utf-8-sig")

        # /staff/reports goes to the last complete month; a month picker value works too.
        r = await c.get("/staff/reports")
        assert r.status_code == 303
        expected = Month.last_complete(datetime.now(TZ).date())
        assert r.headers["location"] == f"/staff/reports/{expected}"
        r = await c.get("/staff/reports?month=2026-02")
        assert r.headers["location"] == "/staff/reports/2026-02"
        for bad in ("2026-13", "xyz", "2999-01"):
            assert (await c.get(f"/staff/reports/{bad}")).status_code == 404
            assert (await c.get(f"/staff/reports/{bad}/figures.csv")).status_code == 404

        await login(h, "hand")
        for path in ("/staff/reports", "/staff/reports/2026-03",
                     "/staff/reports/2026-03/figures.csv", "/staff/reports/2026-03/cases.csv"):
            assert (await h.get(path)).status_code == 403
        assert 'href="/staff/reports"' not in (await h.get("/staff/cases")).text
    async with make_client(app) as anon:
        r = await anon.get("/staff/reports/2026-03")
        assert r.status_code == 303 and "/staff/login" in r.headers["location"]


async def test_command_line_report(app, settings, tmp_path: Path):
    await build_world()
    env = {**os.environ, "SUGGESTBOX_DATABASE_URL": settings.database_url,
           "SUGGESTBOX_DATA_DIR": str(tmp_path / "cli-data"),
           "SUGGESTBOX_SECRET_KEY": settings.secret_key}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "suggestbox.cli", "report", *args],
                              env=env, cwd=ROOT, capture_output=True, timeout=120, check=False)

    out = tmp_path / "r.json"
    done = run("2026-03", "--format", "json", "--out", str(out))
    assert done.returncode == 0, done.stderr.decode()
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["current"]["totals"] == MARCH_TOTALS
    assert data["current"]["rates"]["on_time"]["display"] == "50.0%"
    assert data["team_periods"][0]["period"] == "2026-Q1"
    csv_out = run("2026-03", "--format", "csv")
    assert csv_out.returncode == 0 and csv_out.stdout.startswith(b"\xef\xbb\xbf")
    assert "比率,2026-03,响应率,百分比,66.7,66.7,0.0,8,12," in csv_out.stdout.decode("utf-8-sig")
    cases_out = run("2026-03", "--format", "csv", "--what", "cases")
    assert cases_out.stdout.decode("utf-8-sig").count("\r\n") == 7
    html = tmp_path / "r.html"
    assert run("2026-03", "--out", str(html)).returncode == 0
    text = html.read_text(encoding="utf-8")
    assert "<style>" in text and "@page" in text and "66.7%" in text
    bad = run("2026-3")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr.decode()


async def test_other_time_zone_shifts_month_edges(app):
    """The same instants read in UTC: C6's accept (31 March 16:30 UTC) now falls in March and
    C7's answer is on its deadline."""
    await build_world()
    r = await workshop_report(Month(2026, 3), tz=ZoneInfo("UTC"), now=NOW)
    assert r.figures.totals["accepted"] == 8  # C6 accepted on 31 March UTC
    assert r.figures.rates["on_time"].num == 5  # C7 answered on 25 March UTC, on time


def test_timedelta_helper_sane():
    # local() is the helper every data point above depends on.
    assert local(2026, 4, 1, 0, 30) == datetime(2026, 3, 31, 16, 30, tzinfo=UTC)
    assert local(2026, 3, 1) - local(2026, 2, 28) == timedelta(days=1)


# ---- issue 11, items 7–10: April 2026, printed before and after later events ------------------

APRIL = Month(2026, 4)


async def build_april(w: World) -> None:
    """Hand-computed April 2026 (team "e", category 1, K does not matter here).

    G: 不满意, then a staff reopen (which clears the case's rating) and a close after the rating
    window without a new rating: gamed, not resolved.  S: 满意 then closed: resolved.
    D1: a duplicate of S merged the next day: responded.  N: never responded.
    L: due 10 April, answered 12 April: late.  X: due 25 April, open at month end.
    M: due 20 April, merged on 15 April: not due.
    """
    D = date  # noqa: N806
    await w.new("G", D(2026, 4, 1), team="e")
    await w.staff("G", "accept", local(2026, 4, 1), deadline=D(2026, 4, 5))
    await w.staff("G", "reply", local(2026, 4, 2), body="G 第一次答复。")
    await w.submitter("G", "rate", D(2026, 4, 3), rating="unsatisfied", body="没有解决。")
    await w.staff("G", "reply", local(2026, 4, 4), body="G 第二次答复。")
    await w.staff("G", "reopen", local(2026, 4, 5), body="再核实一次。")
    await w.staff("G", "reply", local(2026, 4, 6), body="G 第三次答复。")
    await w.staff("G", "close", local(2026, 4, 14))  # 8 days later, no new rating

    await w.new("S", D(2026, 4, 1), team="e")
    await w.staff("S", "accept", local(2026, 4, 1), deadline=D(2026, 4, 8))
    await w.staff("S", "reply", local(2026, 4, 2), body="S 的答复。")
    await w.submitter("S", "rate", D(2026, 4, 3), rating="satisfied")
    await w.staff("S", "close", local(2026, 4, 4))

    await w.new("D1", D(2026, 4, 10), team="e")
    await w.staff("D1", "merge", local(2026, 4, 11), merge_into=w.ids["S"].hex[:8].upper())

    await w.new("N", D(2026, 4, 20), team="e")

    await w.new("L", D(2026, 4, 1), team="e")
    await w.staff("L", "accept", local(2026, 4, 2), deadline=D(2026, 4, 10))
    await w.staff("L", "reply", local(2026, 4, 12), body="L 的答复。")

    await w.new("X", D(2026, 4, 2), team="e")
    await w.staff("X", "accept", local(2026, 4, 2), deadline=D(2026, 4, 25))

    await w.new("M", D(2026, 4, 3), team="e")
    await w.staff("M", "accept", local(2026, 4, 5), deadline=D(2026, 4, 20))
    await w.staff("M", "merge", local(2026, 4, 15), merge_into=w.ids["S"].hex[:8].upper())


async def later_events(w: World) -> None:
    """May and June: everything that used to change April's figures."""
    D = date  # noqa: N806
    await w.staff("G", "reopen", local(2026, 5, 4), body="领导要求重办。")
    await w.staff("G", "reply", local(2026, 5, 6), body="G 五月的答复。")
    await w.submitter("G", "rate", D(2026, 5, 7), rating="satisfied")  # rating now 满意
    await w.staff("S", "reopen", local(2026, 5, 8), body="补充办理。")  # clears 满意
    await w.staff("S", "reply", local(2026, 5, 9), body="S 五月的答复。")
    await w.staff("N", "accept", local(2026, 5, 10))  # a late response
    await w.submitter("L", "rate", D(2026, 5, 12), rating="unsatisfied", body="太慢。")
    await w.staff("X", "reply", local(2026, 5, 20), body="X 的答复。")
    await w.staff("S", "close", local(2026, 6, 1))


def snapshot(r: Any) -> dict[str, Any]:
    d = r.as_dict()
    for key in ("generated_at", "cases", "movable"):
        d.pop(key)
    return d


async def test_april_figures_are_event_derived_and_stay_put(app):
    w = World(await add_user("lead", "leader"))
    await build_april(w)
    first = await workshop_report(APRIL, tz=TZ, now=datetime(2026, 5, 3, 4, tzinfo=UTC))
    rates = {k: (v.num, v.den) for k, v in first.figures.rates.items()}
    assert rates == {
        # G, S, D1 (merged next day), L, X, M responded within 2 days; N did not.
        "response": (6, 7),
        # Due in April: G (answered 2nd, due 5th), S, L (late), X (open); M merged before.
        "on_time": (2, 4),
        # Closed: G (last rating 不满意, reopened and closed unrated) and S (满意).
        "resolution": (1, 2),
        # Last rating in April: G 不满意, S 满意.
        "satisfaction": (1, 2),
        "adoption": (0, 0), "carried_out": (0, 0),
    }
    totals = first.figures.totals
    assert (totals["received"], totals["merged"], totals["closed"], totals["reopened"],
            totals["open_at_end"], totals["overdue_at_end"]) == (7, 2, 2, 1, 2, 1)  # X late
    # Days to respond: G 0, S 0, D1 1, L 1, X 0, M 2.
    assert (first.accept_times.n, first.accept_times.median) == (6, 0.5)
    assert "响应率：本月最后 2 天收到的案件可在下月初得到响应，2026-05-03 起不再变化（已确定）。" \
        in first.movable
    before = snapshot(first)
    csv_before = figures_csv(first)

    await later_events(w)
    again = await workshop_report(APRIL, tz=TZ, now=datetime(2026, 7, 1, 4, tzinfo=UTC))
    assert snapshot(again) == before
    assert figures_csv(again) == csv_before

    # What the page says can still move does move: a transfer with a new deadline takes Y out
    # of April's 按时答复率.
    await w.new("Y", date(2026, 4, 6), team="e")
    await w.staff("Y", "accept", local(2026, 4, 6), deadline=date(2026, 4, 28))
    assert (await workshop_report(APRIL, tz=TZ, now=NOW)).figures.rates["on_time"].den == 5
    other = await add_user("hand", "handler")
    await w.staff("Y", "transfer", local(2026, 5, 2), deadline=date(2026, 5, 30),
                  assignee_id=other.id)
    assert (await workshop_report(APRIL, tz=TZ, now=NOW)).figures.rates["on_time"].den == 4


async def test_page_says_what_can_move(app):
    w = World(await add_user("lead", "leader"))
    await build_april(w)
    r = await workshop_report(APRIL, tz=TZ, now=datetime(2026, 5, 2, 4, tzinfo=UTC))
    assert any("（尚未确定）" in line for line in r.movable)
    r = await workshop_report(Month(2026, 5), tz=TZ, now=datetime(2026, 5, 20, 4, tzinfo=UTC))
    assert r.movable == ["本月尚未结束：所有数字截至生成时，以后还会变。"]
    async with make_client(app) as c:
        await login(c, "lead")
        html = (await c.get("/staff/reports/2026-04")).text
        assert "按时答复率、月末超期：按案件当前的办理期限计算" in html
        for text in rate_definitions(2).values():
            assert text in html


# ---- items 11 and 12: an adversary who subtracts ------------------------------------------------

# Received per month and team (A, B, C; no case without a team), K = 3.
ADVERSARY_WORLD = {
    Month(2027, 1): {"A": 2, "B": 1, "C": 1},
    Month(2027, 2): {"A": 2, "B": 1, "C": 1},
    Month(2027, 3): {"A": 1, "B": 5, "C": 2},
    Month(2027, 4): {"A": 5, "C": 1},
}


async def build_adversary_world() -> dict[str, Team]:
    teams = {code: await Team.create(code=code.lower(), name=f"{code}班") for code in "ABC"}
    for month, per_team in ADVERSARY_WORLD.items():
        for code, n in per_team.items():
            for i in range(n):
                await cases.submit_case(
                    secret_key="k" * 32, nonce=secrets.token_urlsafe(12), category_id=1,
                    team=teams[code], body=f"{code} 班的意见 {i}。",
                    today=month.first + timedelta(days=i), tz=TZ)
    return teams


def published(r: Any) -> dict[str, dict[str, int]]:
    """What a report prints per team table: period → {row label: received}."""
    out = {str(r.month): {g.label: g.received for g in r.by_team}}
    for t in r.team_periods:
        out[t.period] = {g.label: g.received for g in t.rows}
    return out


def subtract_everything(tables: dict[str, dict[str, int]], months: list[Month], k: int
                        ) -> list[str]:
    """The adversary: every assignment of per-team monthly counts consistent with every printed
    table (named rows and 其他, hence the totals), then every sum of one team over any set of
    months that is the same in all of them and from 1 to K−1."""
    teams = ["A", "B", "C"]
    periods = {str(m): [m] for m in months}
    quarter = [m for m in months if m.month <= 3]
    periods["2027-Q1"] = quarter
    periods["2027"] = months

    def compositions(total: int, parts: int) -> list[tuple[int, ...]]:
        if parts == 1:
            return [(total,)]
        return [(i, *rest) for i in range(total + 1) for rest in compositions(total - i,
                                                                               parts - 1)]

    per_month: list[list[dict[str, int]]] = []
    for m in months:
        shown = {t: n for t, n in tables[str(m)].items() if t != "其他"}
        hidden = [t for t in teams if f"{t}班" not in shown]
        options = []
        for combo in compositions(tables[str(m)].get("其他", 0), len(hidden)):
            cell = {t: shown[f"{t}班"] for t in teams if f"{t}班" in shown}
            cell.update(zip(hidden, combo, strict=True))
            options.append(cell)
        per_month.append(options)

    def consistent(world: tuple[dict[str, int], ...]) -> bool:
        for period, ms in periods.items():
            if period not in tables or len(ms) == 1:
                continue
            rows = tables[period]
            sums = {t: sum(world[months.index(m)][t] for m in ms) for t in teams}
            named = {t for t in teams if f"{t}班" in rows}
            if any(sums[t] != rows[f"{t}班"] for t in named):
                return False
            if sum(sums[t] for t in teams if t not in named) != rows.get("其他", 0):
                return False
        return True

    worlds = [w for w in itertools.product(*per_month) if consistent(w)]
    assert worlds, "the printed tables contradict each other"
    leaks = []
    for t in teams:
        for size in range(1, len(months) + 1):
            for subset in itertools.combinations(range(len(months)), size):
                values = {sum(w[i][t] for i in subset) for w in worlds}
                if len(values) == 1 and 0 < next(iter(values)) < k:
                    leaks.append(f"{t}班 in {[str(months[i]) for i in subset]}: {values}")
    return leaks


async def test_adversary_who_subtracts_learns_no_small_count(app):
    await build_adversary_world()
    march = await workshop_report(Month(2027, 3), tz=TZ, now=NOW)
    april = await workshop_report(Month(2027, 4), tz=TZ, now=NOW)
    december = await workshop_report(Month(2027, 12), tz=TZ, now=NOW)
    jan = await workshop_report(Month(2027, 1), tz=TZ, now=NOW)
    feb = await workshop_report(Month(2027, 2), tz=TZ, now=NOW)
    tables: dict[str, dict[str, int]] = {}
    for r in (jan, feb, march, april, december):
        tables.update(published(r))
    # Hand-computed. March: B (5) named, A 1 + C 2 = 3 folded. April: A 5 would leave C's 1
    # alone in 其他 (total − A = 1, what the old "<3" cell gave away): A is folded too.
    assert tables["2027-03"] == {"B班": 5, "其他": 3}
    assert tables["2027-04"] == {"其他": 6}
    assert tables["2027-01"] == {"其他": 4} and tables["2027-02"] == {"其他": 4}
    # Q1: A 5, B 7, C 4. B named would give "Q1 − March" = 2 for B in Jan–Feb: B is folded.
    # Then 其他 minus March's B would be B's 2 alone: C, the smallest named, is folded too.
    # A is named though folded in every month: what the quarter table is for.
    assert tables["2027-Q1"] == {"A班": 5, "其他": 11}
    # 2027: naming A (10) would give "2027 − Q1" = A's 5 in April, and April's 其他 minus 5 =
    # C's 1 there. Everything folds.
    assert tables["2027"] == {"其他": 22}
    months = [Month(2027, i) for i in range(1, 5)]
    assert subtract_everything(tables, months, 3) == []

    # The attack works on what the K rule alone would print for Q1 (every team has 3 or more).
    naive = {**tables, "2027-Q1": {"A班": 5, "B班": 7, "C班": 4}}
    assert "B班 in ['2027-01', '2027-02']: {2}" in subtract_everything(naive, months, 3)

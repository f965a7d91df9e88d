"""Depot report (issue 14, items 2, 4 and 5): two workshops plus a small one, and one desk,
hand-computed; desk cases stay out of the workshops' figures; folding; reprints; the 404 matrix
for workshop, desk and depot accounts on the page and its files."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from suggestbox import auth, cases, depot
from suggestbox.depot_report import build_depot_report
from suggestbox.models import Unit
from suggestbox.months import Month
from suggestbox.report_export import depot_csv
from suggestbox.reports import build_report
from tests.conftest import PASSWORD, ROOT, login, make_client
from tests.test_reports import NO_FOLLOW

TZ = ZoneInfo("Asia/Shanghai")
MARCH = Month(2026, 3)
NOW = datetime(2026, 5, 3, 4, 0, tzinfo=UTC)
D = date


def local(day: date, hh: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hh, tzinfo=TZ).astimezone(UTC)


class Depot:
    def __init__(self) -> None:
        self.ids: dict[str, uuid.UUID] = {}
        self.units: dict[str, Unit] = {}
        self.leaders: dict[str, Any] = {}

    async def setup(self) -> None:
        a = await Unit.filter(kind="workshop").order_by("id").first()
        assert a is not None
        a.name = "A车间"
        await a.save()
        self.units = {
            "A": a,
            "B": await depot.add_unit("ws-b", "B车间"),
            "C": await depot.add_unit("ws-c", "C车间"),
            "D": await depot.add_unit("union", "段工会", depot.DESK),
        }
        for key, unit in self.units.items():
            self.leaders[key] = await auth.add_user(f"lead-{key.lower()}", "leader", PASSWORD,
                                                    unit=unit)
        await auth.add_user("boss", "leader", PASSWORD)  # depot leader
        await auth.add_user("root", "admin", PASSWORD)  # depot admin
        await auth.add_user("hand-a", "handler", PASSWORD, unit=self.units["A"])

    async def new(self, name: str, received: date, box: str, desk: bool = False) -> None:
        result = await cases.submit_case(
            secret_key="k" * 32, nonce=secrets.token_urlsafe(12), category_id=1, team=None,
            body=f"案件 {name} 的原文。", today=received, tz=TZ, workshop=self.units[box],
            desk=self.units["D"] if desk else None)
        self.ids[name] = result.case.id

    async def staff(self, name: str, action: str, day: date, **kw: Any) -> None:
        key = "D" if name.startswith("D") else name[0]
        leader = self.leaders[key]
        if action == "accept":
            kw.setdefault("assignee_id", leader.id)
        await cases.apply(self.ids[name], action, leader, now=local(day), tz=TZ,
                          rating_window_days=7, **kw)

    async def rate(self, name: str, day: date, rating: str) -> None:
        await cases.apply(self.ids[name], "rate" if rating != "unsatisfied" else
                          "rate_unsatisfied", None, now=local(day), tz=TZ, rating=rating,
                          body="评价。")

    def code(self, key: str) -> str:
        return self.units[key].code


async def build_depot() -> Depot:
    w = Depot()
    await w.setup()
    # Workshop A: 4 cases.
    await w.new("A1", D(2026, 3, 2), "A")
    await w.staff("A1", "accept", D(2026, 3, 2), deadline=D(2026, 3, 10))
    await w.staff("A1", "reply", D(2026, 3, 5), body="A1 的答复。")
    await w.rate("A1", D(2026, 3, 6), "satisfied")
    await w.staff("A1", "close", D(2026, 3, 7))
    await w.new("A2", D(2026, 3, 3), "A")
    await w.staff("A2", "accept", D(2026, 3, 6), deadline=D(2026, 3, 12))  # 3 days: late
    await w.staff("A2", "reply", D(2026, 3, 14), body="A2 的答复。")  # after the deadline
    await w.new("A3", D(2026, 3, 4), "A")
    await w.new("A4", D(2026, 3, 10), "A")
    await w.staff("A4", "reject", D(2026, 3, 10), body="不属于车间职责。")
    # Workshop B: 3 cases.
    await w.new("B1", D(2026, 3, 5), "B")
    await w.staff("B1", "accept", D(2026, 3, 5), deadline=D(2026, 3, 15))
    await w.staff("B1", "reply", D(2026, 3, 8), body="B1 的答复。")
    await w.new("B2", D(2026, 3, 6), "B")
    await w.staff("B2", "accept", D(2026, 3, 7), deadline=D(2026, 3, 20))
    await w.staff("B2", "reply", D(2026, 3, 9), body="B2 的答复。")
    await w.rate("B2", D(2026, 3, 10), "unsatisfied")
    await w.new("B3", D(2026, 3, 8), "B")
    # Workshop C: 1 case.
    await w.new("C1", D(2026, 3, 9), "C")
    await w.staff("C1", "accept", D(2026, 3, 9), deadline=D(2026, 3, 19))
    await w.staff("C1", "reply", D(2026, 3, 11), body="C1 的答复。")
    # The desk: 3 cases through A's box, 3 through B's, 1 through C's.
    await w.new("D1", D(2026, 3, 11), "A", desk=True)
    await w.staff("D1", "accept", D(2026, 3, 11), deadline=D(2026, 3, 20))
    await w.staff("D1", "reply", D(2026, 3, 12), body="工会的答复，只有工会能看到。")
    for i, (box, day) in enumerate((("A", 12), ("A", 13), ("B", 14), ("B", 14), ("B", 15),
                                    ("C", 15)), start=2):
        await w.new(f"D{i}", D(2026, 3, day), box, desk=True)
    return w


def rates(figures: Any) -> dict[str, tuple[int, int]]:
    """The rates of issue 18 (adoption, 落实) are checked in tests/test_followthrough.py."""
    return {k: (r.num, r.den) for k, r in figures.rates.items()
            if k not in ("adoption", "carried_out")}


async def test_depot_report_hand_computed(app):
    w = await build_depot()
    r = await build_depot_report(
        MARCH, tz=TZ, workshops=await depot.workshops(), desks=await depot.desks(), now=NOW)
    # The depot: workshop cases only (A 4 + B 3 + C 1), never the desk's 7.
    assert r.figures.totals == {
        "received": 8, "accepted": 5, "rejected": 1, "answered": 5, "closed": 1,
        "open_at_end": 3, "overdue_at_end": 1, "reopened": 1, "merged": 0,
        "supports": 0, "urges": 0, "urged_cases": 0, "suggestions": 0, **NO_FOLLOW}
    assert rates(r.figures) == {"response": (5, 8), "on_time": (4, 5), "resolution": (1, 1),
                                "satisfaction": (1, 2)}
    # Days to answer: A 3, 11; B 3, 3; C 2. To respond: A 0, 3, 0; B 0, 1; C 0.
    assert (r.answer_times.n, r.answer_times.median, r.answer_times.p90) == (
        5, 3, pytest.approx(7.8))
    assert (r.accept_times.n, r.accept_times.median) == (6, 0)
    # Per workshop, K = 3: C (1) is folded; 其他 would be C alone, so B (3, the smallest named)
    # is folded too.
    rows = [(u.key, u.label, u.received, u.answered, u.closed, u.folded) for u in r.workshops]
    assert rows == [(w.code("A"), "A车间", 4, 2, 1, 0), ("other", "其他", 4, 3, 0, 2)]
    a, other = r.workshops
    assert rates(a.figures) == {"response": (2, 4), "on_time": (1, 2), "resolution": (1, 1),
                                "satisfaction": (1, 1)}
    assert rates(other.figures) == {"response": (3, 4), "on_time": (3, 3),
                                    "resolution": (0, 0), "satisfaction": (0, 1)}
    assert a.answer_times.median == 7 and other.answer_times.median == 3
    # The desk row, and its cases by originating workshop: A 3, B 3, C 1; C folded, then A
    # (tied with B at 3, the lower id) so that 其他 is not C's 1 alone.
    assert [(u.key, u.received, u.answered, u.closed) for u in r.desks] == [("union", 7, 1, 0)]
    assert rates(r.desks[0].figures) == {"response": (1, 7), "on_time": (1, 1),
                                         "resolution": (0, 0), "satisfaction": (0, 0)}
    assert [(o.key, o.received, o.folded) for o in r.desk_origin] == [
        ("ws-b", 3, 0), ("other", 4, 2)]
    assert r.desk_received == 7

    # Workshop A's own report: its 4 cases, no desk case (3 of which came through its box).
    ra = await build_report(MARCH, units=(w.units["A"].id,), tz=TZ, now=NOW)
    assert ra.figures.totals["received"] == 4 and ra.figures.totals["answered"] == 2
    assert rates(ra.figures) == rates(a.figures)
    assert w.ids["D1"].hex[:8].upper() not in {c.number for c in ra.cases}
    assert {str(t.month): t.received for t in ra.trend}["2026-03"] == 4
    # The desk's report: its 7 cases.
    rd = await build_report(MARCH, units=(w.units["D"].id,), tz=TZ, now=NOW)
    assert rd.figures.totals["received"] == 7
    assert [c.number for c in rd.cases] == [w.ids["D1"].hex[:8].upper()]
    # Additive: the workshops' own reports sum to the depot's totals.
    parts = [await build_report(MARCH, units=(w.units[k].id,), tz=TZ, now=NOW) for k in "ABC"]
    for name in r.figures.totals:
        assert sum(p.figures.totals[name] for p in parts) == r.figures.totals[name]


async def test_past_month_reprints_identically(app):
    w = await build_depot()
    kw: dict[str, Any] = {"tz": TZ, "workshops": await depot.workshops(),
                          "desks": await depot.desks()}
    first = await build_depot_report(MARCH, now=NOW, **kw)
    # Later events: none of them may move March.
    await w.staff("A3", "accept", D(2026, 4, 2), deadline=D(2026, 4, 20))
    await w.staff("A2", "close", D(2026, 4, 25))
    await w.staff("B3", "reject", D(2026, 4, 3), body="重复反映。")
    await w.staff("D2", "accept", D(2026, 4, 5))
    await w.new("A5", D(2026, 4, 6), "A")
    again = await build_depot_report(MARCH, now=datetime(2026, 6, 1, 4, tzinfo=UTC), **kw)

    def snap(x: Any) -> dict[str, Any]:
        d = x.as_dict()
        d.pop("generated_at")
        return d

    assert snap(again) == snap(first)
    assert depot_csv(again) == depot_csv(first)


async def test_report_access_matrix(app):
    w = await build_depot()
    a, b, desk = w.code("A"), w.code("B"), w.code("D")
    month = "/staff/reports/2026-03"
    suffixes = ("", "/figures.csv", "/cases.csv", "/report.xlsx")
    # (account, ?w=, expected status) for the page and each file.
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
            for suffix in suffixes:
                url = month + suffix + (f"?w={code}" if code else "")
                got = await clients[user].get(url)
                assert got.status_code == expected, (user, url, got.status_code)

        async def page(user: str, code: str = "") -> str:
            r = await clients[user].get(month + (f"?w={code}" if code else ""))
            return str(r.text)

        def fig(html: str, name: str) -> str:
            import re

            m = re.search(rf'data-figure="{re.escape(name)}">([^<]*)<', html)
            assert m, name
            return m.group(1)

        depot_html = await page("boss")
        assert "全段月度汇总" in depot_html and fig(depot_html, "total.received") == "8"
        assert fig(depot_html, "desk.union.received") == "7"
        assert fig(depot_html, "origin.other.received") == "4"
        assert f'href="{month}?w={a}"' in depot_html  # a named workshop links to its report
        assert "工会的答复" not in depot_html
        a_html = await page("lead-a")
        assert fig(a_html, "total.received") == "4" and "工会的答复" not in a_html
        assert 'href="/staff/reports/2026-03/figures.csv"' in a_html
        b_html = await page("boss", b)
        assert fig(b_html, "total.received") == "3"
        # Links on a page reached with ?w= keep it.
        assert f'href="/staff/reports/2026-03/figures.csv?w={b}"' in b_html
        assert f'href="/staff/reports/2026-02?w={b}"' in b_html
        assert f'name="w" value="{b}"' in b_html
        desk_html = await page("lead-d")
        assert fig(desk_html, "total.received") == "7" and "工会的答复" in desk_html
        r = await clients["boss"].get("/staff/reports?month=2026-03&w=" + b)
        assert r.headers["location"] == f"{month}?w={b}"

        # The depot's files: its figures, and every workshop's answered cases, no desk case.
        got = await clients["boss"].get(month + "/figures.csv")
        text = got.content.decode("utf-8-sig")
        assert "按车间,2026-03,A车间,收到,4" in text and "段级渠道,2026-03,段工会,收到,7" in text
        assert "段级渠道来源,2026-03,B车间,收到,3" in text
        listed = (await clients["boss"].get(month + "/cases.csv")).content.decode("utf-8-sig")
        assert listed.splitlines()[0].startswith("车间,编号")
        assert len(listed.splitlines()) == 6 and w.ids["D1"].hex[:8].upper() not in listed
        book = load_workbook(io.BytesIO((await clients["boss"].get(month + "/report.xlsx"))
                                        .content))
        assert book.sheetnames == ["数字", "案件"]
        first = next(row for row in book["数字"].iter_rows(values_only=True)
                     if row[0] == "全段" and row[3] == "收到")
        assert first[4] == 8
    finally:
        for c in clients.values():
            await c.aclose()


async def test_command_line_depot_and_workshop(app, settings, tmp_path: Path):
    await build_depot()
    env = {**os.environ, "SUGGESTBOX_DATABASE_URL": settings.database_url,
           "SUGGESTBOX_DATA_DIR": str(tmp_path / "cli-data"),
           "SUGGESTBOX_SECRET_KEY": settings.secret_key}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "suggestbox.cli", "report", "2026-03",
                               *args], env=env, cwd=ROOT, capture_output=True, timeout=120,
                              check=False)

    done = run("--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    data = json.loads(done.stdout)
    assert data["kind"] == "depot" and data["depot"]["totals"]["received"] == 8
    one = json.loads(run("--format", "json", "--workshop", "ws-b").stdout)
    assert one["current"]["totals"]["received"] == 3
    html = run("--format", "html").stdout.decode()
    assert "全段月度汇总" in html and "<style>" in html
    bad = run("--workshop", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr.decode()

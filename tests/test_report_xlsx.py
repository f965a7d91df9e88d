"""The monthly summary as .xlsx (issue 13, item 6): page link, HTTP download and command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from openpyxl import load_workbook

from tests.conftest import ROOT, login, make_client
from tests.test_reports import MARCH_TOTALS, build_world


def _check(data: bytes) -> None:
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["数字", "案件"]
    cases = book["案件"]
    header = [c.value for c in cases[1]]
    assert header[:2] == ["编号", "类别"] and header[-1] == "用时（天）"
    rows = list(cases.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 6  # the six cases answered in March 2026 (see test_reports)
    assert all(isinstance(r[-1], int) for r in rows)  # days are numbers Excel can sum
    assert all(r[4].date() <= r[5].date() <= date(2026, 3, 31) for r in rows)
    figures = book["数字"]
    received = next(r for r in figures.iter_rows(values_only=True)
                    if r[0] == "总量" and r[2] == "收到")
    assert received[4] == MARCH_TOTALS["received"] and isinstance(received[4], int)
    rate = next(r for r in figures.iter_rows(values_only=True) if r[2] == "响应率")
    assert rate[4] == 66.7 and (rate[7], rate[8]) == (8, 12)  # numbers Excel can use


async def test_xlsx_download_and_cli(app, settings, tmp_path: Path):
    await build_world()  # also creates the leader "lead"
    async with make_client(app) as c:
        await login(c, "lead")
        page = await c.get("/staff/reports/2026-03")
        assert 'href="/staff/reports/2026-03/report.xlsx"' in page.text
        r = await c.get("/staff/reports/2026-03/report.xlsx")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        _check(r.content)
    env = {**os.environ, "SUGGESTBOX_DATABASE_URL": settings.database_url,
           "SUGGESTBOX_DATA_DIR": str(tmp_path / "cli-data"),
           "SUGGESTBOX_SECRET_KEY": settings.secret_key}
    out = tmp_path / "r.xlsx"

    def run() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "suggestbox.cli", "report", "2026-03",
                               "--format", "xlsx", "--out", str(out)], env=env, cwd=ROOT,
                              capture_output=True, timeout=120, check=False)

    done = run()
    assert done.returncode == 0, done.stderr.decode()
    _check(out.read_bytes())


async def test_report_is_headed_by_the_unit_name(app):
    from suggestbox import org
    from tests.conftest import add_user

    await org.set_org("杭州供电段杭州东牵引变电车间", "")
    await add_user("lead", "leader")
    async with make_client(app) as c:
        await login(c, "lead")
        page = await c.get("/staff/reports/2026-03")
        assert "杭州供电段杭州东牵引变电车间" in page.text

"""Query counts per page (issue 19): a page's number of SQL statements does not grow with the data.

Not a timed test: every page is requested once with a small database and once after more cases,
teams, categories and board items were added, and the statements sent through the connection are
counted (``counting_queries`` from the board's test). The counts must be equal; the second
request of each pair also must not be answered from a cache the first one filled (each
measurement uses fresh caches where the page keeps one, so both count the same work).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from suggestbox import cases, depot
from suggestbox.models import Case, Category, ReportKept, StaffUser, Team, Unit
from suggestbox.months import Month
from tests.conftest import csrf_of, form_token, login, make_client, seed_case, submit, track
from tests.test_qr_board import TZ

Page = Callable[[], Awaitable[httpx.Response]]


class _Statements(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(str(record.args[0] if record.args else record.msg))


@contextmanager
def counting_queries() -> Iterator[list[str]]:
    """Every statement Tortoise sends, inside transactions too (the board test's counter sees
    only the default connection's own methods): Tortoise logs each one at DEBUG to
    ``tortoise.db_client`` just before sending it."""
    log = logging.getLogger("tortoise.db_client")
    handler = _Statements()
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield handler.seen
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


async def _grow(leader: StaffUser, workshop: Unit, start: int, n: int) -> None:
    """``n`` more of everything a page could be tempted to read row by row: teams, categories,
    cases in every state (answered and published ones for the board), with their events."""
    now = datetime.now(UTC)
    for i in range(start, start + n):
        await Team.create(code=f"t{i}", name=f"班组{i}", workshop=workshop)
        await Category.create(name=f"类别{i}", workshop=workshop)
        case = await seed_case(f"第{i}号意见：车间的照明需要改进一下。")
        if i % 3 == 0:
            continue  # stays new
        await cases.apply(case.id, "accept", leader, now=now, tz=TZ, assignee_id=leader.id)
        if i % 3 == 1:
            continue
        await cases.apply(case.id, "start", leader, now=now, tz=TZ)
        await cases.apply(case.id, "reply", leader, now=now, tz=TZ, body=f"答复{i}")
        await cases.apply(case.id, "publish", leader, now=now, tz=TZ, summary=f"摘要{i}",
                          show_reply=True)


async def _clear_caches(app: Any) -> None:
    """Every per-process cache a page keeps, and the kept report rows, so that both
    measurements do the same work."""
    for name in ("tree_cache", "board_cache", "queue_counts", "queue_kept", "form_pages"):
        cache = getattr(app.state, name, None)
        if cache is not None:
            cache.clear()
    await ReportKept.all().delete()


async def _count(app: Any, page: Page) -> tuple[int, list[str], httpx.Response]:
    await _clear_caches(app)
    with counting_queries() as seen:
        response = await page()
    return len(seen), list(seen), response


async def test_no_page_reads_more_statements_as_the_data_grows(app):
    from suggestbox import auth
    from tests.conftest import PASSWORD

    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    leader = await auth.add_user("leader1", "leader", PASSWORD, "组长", unit=workshop)
    await auth.add_user("admin1", "admin", PASSWORD, "管理员")
    await _grow(leader, workshop, 0, 5)
    first = await Case.filter(status="answered").order_by("received_on", "id").first()
    assert first is not None
    month = str(Month(first.received_on.year, first.received_on.month))

    worker = make_client(app)
    staff = make_client(app)
    admin = make_client(app)
    async with worker, staff, admin:
        receipt = await submit(worker, "我自己的意见：更衣室的柜子坏了，希望修理。")
        await login(staff, "leader1")
        await login(admin, "admin1")

        async def post_submission() -> httpx.Response:
            page = await worker.get("/")
            await _clear_caches(app)
            with counting_queries() as seen:
                r = await worker.post("/", data={"token": form_token(page.text), "category": "1",
                                                 "body": "又一条意见：饭堂的窗口太少了。"})
            assert r.status_code == 303, r.text
            posted.append(len(seen))
            return r

        async def track_lookup() -> httpx.Response:
            page = await worker.get("/track")
            await _clear_caches(app)
            with counting_queries() as seen:
                r = await worker.post("/track", data={"token": form_token(page.text),
                                                      "receipt": receipt})
            assert r.status_code == 200 and "补充" in r.text
            tracked.append(len(seen))
            return r

        async def staff_action() -> httpx.Response:
            case = await seed_case("需要受理的一条意见，内容足够长。")
            page = await staff.get(f"/staff/cases/{case.id}")
            csrf = csrf_of(page.text)
            await _clear_caches(app)
            with counting_queries() as seen:
                r = await staff.post(f"/staff/cases/{case.id}/act",
                                     data={"csrf": csrf, "action": "accept",
                                           "assignee": str(leader.id)})
            assert r.status_code == 303, r.text
            acted.append(len(seen))
            return r

        posted: list[int] = []
        tracked: list[int] = []
        acted: list[int] = []
        gets: dict[str, Page] = {
            "GET /": lambda: worker.get("/"),
            "GET / with a team link": lambda: worker.get("/?t=t1"),
            "GET /w/<code>/": lambda: worker.get(f"/w/{workshop.code}/"),
            "GET /receipt": lambda: worker.get("/receipt"),
            "GET /board": lambda: worker.get("/board"),
            "GET /board/<id>": lambda: worker.get(f"/board/{first.id}"),
            "GET /staff/cases": lambda: staff.get("/staff/cases"),
            "GET /staff/cases?status=open": lambda: staff.get("/staff/cases?status=open"),
            "GET /staff/cases/<id>": lambda: staff.get(f"/staff/cases/{first.id}"),
            "GET /staff/reports/<month>": lambda: staff.get(f"/staff/reports/{month}"),
            "GET /admin": lambda: admin.get("/admin"),
            "GET /admin/org": lambda: admin.get("/admin/org"),
            "GET /admin/posters": lambda: admin.get("/admin/posters"),
            "GET /admin/slips": lambda: admin.get("/admin/slips"),
            "GET /admin/channels": lambda: admin.get("/admin/channels"),
        }

        async def measure() -> dict[str, tuple[int, list[str]]]:
            out: dict[str, tuple[int, list[str]]] = {}
            for name, page in gets.items():
                n, seen, r = await _count(app, page)
                assert r.status_code == 200, (name, r.status_code, r.text[:300])
                out[name] = (n, seen)
            await post_submission()
            await track_lookup()
            await staff_action()
            return out

        small = await measure()
        await _grow(leader, workshop, 5, 45)
        assert await Team.filter(workshop_id=workshop.id).count() >= 50
        large = await measure()

    for name in small:
        print(f"{name}: {small[name][0]} → {large[name][0]}")
    print(f"POST /: {posted}, POST /track: {tracked}, staff action: {acted}")
    assert all(n > 0 for name, (n, _) in small.items() if not name.startswith("GET /")
               or name.startswith("GET /staff")), "the counter saw no queries"
    grew = {name: (small[name][0], large[name][0]) for name in small
            if large[name][0] != small[name][0]}
    assert not grew, "statements per page grew with the data: " + "; ".join(
        f"{name}: {a} → {b} ({_diff(small[name][1], large[name][1])})"
        for name, (a, b) in grew.items())
    assert posted[0] == posted[1], posted
    assert tracked[0] == tracked[1], tracked
    assert acted[0] == acted[1], acted


def _diff(a: list[str], b: list[str]) -> str:
    def norm(sql: str) -> str:
        return re.sub(r"\s+", " ", sql)[:120]

    extra = [norm(s) for s in b]
    for s in a:
        if norm(s) in extra:
            extra.remove(norm(s))
    return " | ".join(extra[:3])


async def test_public_pages_cost_few_statements(app):
    """Upper bounds, so that a page does not quietly gain round trips (the figures come from
    the first test's counts on this build)."""
    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    async with make_client(app) as worker:
        await worker.get("/")
        with counting_queries() as seen:
            r = await worker.get("/")
        assert r.status_code == 200
        # Categories, teams, the org's name and the tree come from per-process caches.
        assert len(seen) == 0, seen
        receipt = await submit(worker, "一条意见：澡堂的热水不够热，希望修理。")
        page = await worker.get("/")
        with counting_queries() as seen:
            r = await worker.post("/", data={"token": form_token(page.text), "category": "1",
                                             "body": "第二条意见：饭堂的窗口太少了。"})
        assert r.status_code == 303
        assert len(seen) <= 6, "\n".join(seen)
        assert (await track(worker, receipt)).status_code == 200
    assert depot.WORKSHOP == "workshop"


async def test_the_queue_counts_once_until_its_cases_change(app):
    """The counts by status are kept while the units' change clocks stand still; any event of
    one of their cases (a submission, a staff action, a follow-up) moves the clock."""
    from suggestbox import auth
    from tests.conftest import PASSWORD

    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    leader = await auth.add_user("leader1", "leader", PASSWORD, "组长", unit=workshop)
    for i in range(3):
        await seed_case(f"第{i}条意见：车间的照明需要改进一下。")
    async with make_client(app) as staff, make_client(app) as worker:
        await login(staff, "leader1")

        async def counted() -> tuple[str, list[str]]:
            with counting_queries() as seen:
                page = await staff.get("/staff/cases")
            assert page.status_code == 200
            return page.text, [q for q in seen if "COUNT(" in q.upper()]

        app.state.queue_counts.clear()  # login() opened the queue already
        first, counts = await counted()
        assert counts, "the first queue counts"
        again, counts = await counted()
        assert counts == [] and again == first
        # A staff action, a submission and the queue's own filters: counted afresh, right.
        case = await Case.filter(status="new").first()
        assert case is not None
        now = datetime.now(UTC)
        await cases.apply(case.id, "accept", leader, now=now, tz=TZ, assignee_id=leader.id)
        after, counts = await counted()
        assert counts and after != first
        await submit(worker, "又一条意见：车间门口的路灯坏了。")
        latest, counts = await counted()
        assert counts and latest != after
        new = await Case.filter(unit_id=workshop.id, status="new").count()
        accepted = await Case.filter(unit_id=workshop.id, status="accepted").count()
        assert (new, accepted) == (3, 1)
        assert _queue_counts(app) == {"new": 3, "accepted": 1}


def _queue_counts(app: Any) -> dict[str, int]:
    """The counts the last queue page used (all kept entries agree on these units)."""
    entries = list(app.state.queue_counts.values())
    return entries[-1][1]


async def test_the_cached_form_shows_a_change_at_once_in_this_process(app):
    """GET / reads categories, teams and the organisation from the per-process copy: a save in
    this process (a model save, the admin page's update, the org settings) shows at once."""
    from suggestbox import org

    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    async with make_client(app) as worker:
        assert "更衣室类" not in (await worker.get("/")).text
        category = await Category.create(name="更衣室类", workshop=workshop)
        assert "更衣室类" in (await worker.get("/")).text
        await Team.create(code="w9", name="九号班组", workshop=workshop)
        assert "注明：九号班组" in (await worker.get("/?t=w9")).text
        await org.set_org("某某机务段", "0571-12345678")
        page = (await worker.get("/")).text
        assert "某某机务段" in page and "0571-12345678" in page
        # QuerySet.update() sends no signal: callers say so (the admin page does, in _done).
        await Category.filter(id=category.id).update(active=False)
        depot.changed()
        assert "更衣室类" not in (await worker.get("/")).text


async def test_an_admin_edit_shows_at_once_on_the_cached_form(app):
    from suggestbox import auth
    from tests.conftest import PASSWORD

    await auth.add_user("admin1", "admin", PASSWORD, "管理员")
    async with make_client(app) as worker, make_client(app) as admin:
        await login(admin, "admin1")
        csrf = csrf_of((await admin.get("/admin")).text)
        assert "更衣室类" not in (await worker.get("/")).text  # the copy is warm now
        r = await admin.post("/admin/categories", data={
            "csrf": csrf, "name": "更衣室类", "deadline_days": "7", "sort_order": "0"})
        assert r.status_code == 303, r.text
        assert "更衣室类" in (await worker.get("/")).text
        category = await Category.get(name="更衣室类")
        r = await admin.post("/admin/categories", data={
            "csrf": csrf, "id": str(category.id), "name": "更衣柜类", "deadline_days": "7",
            "sort_order": "0", "active": "1"})
        assert r.status_code == 303, r.text
        page = (await worker.get("/")).text
        assert "更衣柜类" in page and "更衣室类" not in page


async def test_the_board_asks_its_version_at_most_once_a_second(app, monkeypatch):
    """A board opened again sends no statement while this process changed no case and its
    version is younger than VERSION_SECONDS; a publish here shows at once, a change made by
    another process (no local tick) once the version is asked again."""
    from suggestbox import auth
    from suggestbox.views import board as board_view
    from tests.conftest import PASSWORD

    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    leader = await auth.add_user("leader1", "leader", PASSWORD, "组长", unit=workshop)
    await _grow(leader, workshop, 0, 3)  # case 2 is published
    clock = [1000.0]
    monkeypatch.setattr(board_view, "_clock", lambda: clock[0])
    async with make_client(app) as worker:
        first = (await worker.get("/board")).text
        assert "摘要2" in first
        with counting_queries() as seen:
            again = await worker.get("/board")
        assert seen == [] and again.text == first
        # A publish in this process: the next board asks its version and shows it.
        case = await seed_case("第九号意见：库房通道被杂物占用了。")
        now = datetime.now(UTC)
        for action, kw in (("accept", {"assignee_id": leader.id}), ("start", {}),
                           ("reply", {"body": "已清理"}),
                           ("publish", {"summary": "库房通道已清理", "show_reply": True})):
            await cases.apply(case.id, action, leader, now=now, tz=TZ, **kw)
        assert "库房通道已清理" in (await worker.get("/board")).text
        # Another process unpublishes (simulated: a write this process does not tick for).
        await Case.filter(id=case.id).update(published=False)
        assert "库房通道已清理" in (await worker.get("/board")).text  # within the second
        clock[0] += board_view.VERSION_SECONDS + 0.01
        assert "库房通道已清理" not in (await worker.get("/board")).text


async def test_the_queue_keeps_its_urgent_block_and_late_promises_until_a_change(app):
    """Like the counts, the urgent block and the list of late promises are read again only
    when a case of the units changed (or the day did, for promises); the list itself is
    always read."""
    from suggestbox import auth
    from tests.conftest import PASSWORD

    workshop = await Unit.filter(kind="workshop").order_by("id").first()
    assert workshop is not None
    await auth.add_user("leader1", "leader", PASSWORD, "组长", unit=workshop)
    hazard = await Category.get(name="安全隐患")
    async with make_client(app) as staff, make_client(app) as worker:
        await login(staff, "leader1")
        await submit(worker, "第一条意见：车间的照明需要改进一下。")

        async def statements() -> tuple[str, list[str]]:
            with counting_queries() as seen:
                page = await staff.get("/staff/cases")
            assert page.status_code == 200
            return page.text, [q for q in seen if "clock_at" in q.split("FROM")[-1]
                                or "promised_on" in q.split("FROM")[-1]]

        await statements()
        again, kept_reads = await statements()
        assert kept_reads == [] and 'class="urgent"' not in again
        await submit(worker, "二号通道的灭火器过期了，很危险。", category=hazard.id)
        after, reads = await statements()
        assert len(reads) == 2, reads  # the urgent block and the promises, read again
        assert 'class="urgent"' in after and "二号通道的灭火器过期了" in after

"""The depot tree (issue 14): workshops, depot desks, scope of every page, going around, the
migration of a single-workshop database. Both databases (the ``db_url`` parametrisation)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from suggestbox.models import Case, Category, Channel, OutboxMessage, StaffUser, Team, Unit
from tests.conftest import (
    PASSWORD,
    RECEIPT_RE,
    form_token,
    login,
    make_client,
    track,
)


async def _user(name: str, role: str, unit: Unit | None) -> StaffUser:
    from suggestbox import auth

    return await auth.add_user(name, role, PASSWORD, display_name=name, unit=unit)


async def depot_world() -> dict[str, Any]:
    """Workshop A (the migrated default "main"), workshop B, the union desk G; staff in each;
    one case in A, one in B, one from A's box addressed to G; a team and a category in B."""
    from suggestbox import depot
    from tests.conftest import seed_case

    a = await Unit.get(code="main")
    b = await depot.add_unit("b", "检修二车间")
    g = await depot.add_unit("gonghui", "段工会", depot.DESK)
    team_b = await depot.add_team("b1", "二车间一班", b)
    cat_b = await Category.create(name="二车间专用", deadline_days=3, workshop=b)
    users = {
        "lead_a": await _user("lead_a", "leader", a),
        "hand_a": await _user("hand_a", "handler", a),
        "adm_a": await _user("adm_a", "admin", a),
        "lead_b": await _user("lead_b", "leader", b),
        "hand_b": await _user("hand_b", "handler", b),
        "lead_g": await _user("lead_g", "leader", g),
        "lead_depot": await _user("lead_depot", "leader", None),
        "adm_depot": await _user("adm_depot", "admin", None),
    }
    channels = {
        "a": await Channel.create(name="一车间群", kind="json", url="https://a.example/h", unit=a),
        "b": await Channel.create(name="二车间群", kind="json", url="https://b.example/h", unit=b),
        "g": await Channel.create(name="工会群", kind="json", url="https://g.example/h", unit=g),
        "depot": await Channel.create(name="段领导群", kind="json", url="https://d.example/h"),
    }
    cases = {
        "a": await seed_case("一车间的事：更衣柜坏了。", workshop=a),
        "b": await seed_case("二车间的事：库房漏雨。", workshop=b),
        "g": await seed_case("反映车间领导的问题：排班不公。", workshop=a, desk=g),
    }
    return {"a": a, "b": b, "g": g, "team_b": team_b, "cat_b": cat_b, "users": users,
            "cases": cases, "channels": channels}


# Which of the three cases each account sees (page 200; else 404).
SEES = {
    "lead_a": {"a"}, "adm_a": {"a"}, "lead_b": {"b"}, "lead_g": {"g"},
    "lead_depot": {"a", "b"}, "adm_depot": {"a", "b"},
}


@pytest.mark.parametrize("who", sorted(SEES))
async def test_authorization_matrix_across_workshops_and_a_desk(app, who):
    w = await depot_world()
    async with make_client(app) as c:
        csrf = await login(c, who)
        for key, case in w["cases"].items():
            expected = 200 if key in SEES[who] else 404
            r = await c.get(f"/staff/cases/{case.id}")
            assert r.status_code == expected, (who, key, r.status_code)
            r = await c.post(f"/staff/cases/{case.id}/act",
                             data={"csrf": csrf, "action": "note", "body": "看过"})
            assert r.status_code == (303 if expected == 200 else 404), (who, key)
        # The queue lists exactly the cases in scope, and its counts agree.
        queue = await c.get("/staff/cases")
        for key, case in w["cases"].items():
            assert (case.number in queue.text) == (key in SEES[who]), (who, key)
        total = int(re.search(r"全部 (\d+)", queue.text).group(1))
        assert total == len(SEES[who])
        # Another workshop's queue is "not found".
        for code, unit_key in (("main", "a"), ("b", "b"), ("gonghui", "g")):
            r = await c.get(f"/staff/cases?w={code}")
            assert r.status_code == (200 if unit_key in SEES[who] else 404), (who, code)
        # Admin pages of workshop B.
        admin_b = [
            ("GET", "/admin?w=b", {}),
            ("GET", "/admin/posters?w=b", {}),
            ("GET", "/admin/posters/print?w=b&t=b1", {}),
            ("POST", "/admin/teams", {"id": str(w["team_b"].id), "code": "b1", "name": "改名"}),
            ("POST", "/admin/categories", {"id": str(w["cat_b"].id), "name": "改名",
                                           "deadline_days": "3", "sort_order": "0"}),
            ("POST", "/admin/users", {"op": "disable", "id": str(w["users"]["hand_b"].id)}),
            ("POST", "/admin/channels", {"op": "disable", "id": str(w["channels"]["b"].id)}),
            ("GET", "/admin/org", {}),  # the depot's name and emergency line
        ]
        for method, path, data in admin_b:
            if method == "GET":
                r = await c.get(path)
            else:
                r = await c.post(path, data={"csrf": csrf, **data})
            expected = {"adm_a": 404, "adm_depot": 200 if method == "GET" else 303}.get(who, 403)
            assert r.status_code == expected, (who, path, r.status_code)
        # The tree itself is the depot admin's.
        r = await c.post("/admin/units", data={"csrf": csrf, "code": "c", "name": "三车间",
                                               "kind": "workshop"})
        assert r.status_code == {"adm_a": 404, "adm_depot": 303}.get(who, 403), who
    # Nothing of B changed unless the depot admin did it.
    team_b = await Team.get(id=w["team_b"].id)
    assert (team_b.name == "改名") == (who == "adm_depot")


async def test_a_workshop_admin_manages_only_their_workshop(app):
    w = await depot_world()
    async with make_client(app) as c:
        csrf = await login(c, "adm_a")
        page = await c.get("/admin")
        assert "二车间一班" not in page.text and "lead_b" not in page.text
        assert "lead_a" in page.text
        # New staff, teams and categories land in workshop A whatever the form says.
        r = await c.post("/admin/users", data={"csrf": csrf, "op": "add", "username": "new_a",
                                               "role": "handler", "password": PASSWORD,
                                               "unit": "b"})
        assert r.status_code == 303
        assert (await StaffUser.get(username="new_a")).unit_id == w["a"].id
        r = await c.post("/admin/teams", data={"csrf": csrf, "code": "a9", "name": "九班",
                                               "sort_order": "0", "workshop": "b"})
        assert r.status_code == 303
        assert (await Team.get(code="a9")).workshop_id == w["a"].id
        r = await c.post("/admin/categories", data={"csrf": csrf, "name": "一车间专用",
                                                    "deadline_days": "5", "sort_order": "0"})
        assert r.status_code == 303
        assert (await Category.get(name="一车间专用")).workshop_id == w["a"].id
        # Depot defaults are not theirs to edit.
        default = await Category.filter(workshop_id=None).first()
        r = await c.post("/admin/categories", data={"csrf": csrf, "id": str(default.id),
                                                    "name": "改掉", "deadline_days": "3"})
        assert r.status_code == 404


async def test_going_around_the_workshop_reaches_only_the_desk(app):
    """A worker addresses a case to 段工会 from workshop A's box: A's leader, the depot leader,
    A's and the depot's group chats see nothing; the union's staff see it, answer it, and the
    worker reads the answer."""
    w = await depot_world()
    before = {k: await OutboxMessage.filter(channel_id=ch.id).count()
              for k, ch in w["channels"].items()}
    async with make_client(app) as worker:
        page = await worker.get("/w/main/")
        assert page.status_code == 200
        assert "直接反映给段工会：只有段工会的工作人员能看到，车间领导看不到。" in page.text
        assert "二车间专用" not in page.text  # B's own category is not offered in A
        r = await worker.post("/w/main/", data={
            "token": form_token(page.text), "category": "1", "to": "gonghui",
            "body": "反映车间主任的问题：加班费算错了，不敢当面说。"})
        assert r.status_code == 303, r.text
        shown = await worker.get(r.headers["location"])
        receipt = RECEIPT_RE.search(shown.text).group(1)
        assert "只有段工会的工作人员能看到" in shown.text
    case = await Case.get(body__startswith="反映车间主任的问题")
    assert case.unit_id == w["g"].id and case.workshop_id == w["a"].id
    after = {k: await OutboxMessage.filter(channel_id=ch.id).count()
             for k, ch in w["channels"].items()}
    assert {k: after[k] - before[k] for k in after} == {"a": 0, "b": 0, "g": 1, "depot": 0}
    for who in ("lead_a", "lead_depot"):
        async with make_client(app) as c:
            await login(c, who)
            assert case.number not in (await c.get("/staff/cases")).text
            assert (await c.get(f"/staff/cases/{case.id}")).status_code == 404
    async with make_client(app) as union:
        csrf = await login(union, "lead_g")
        assert case.number in (await union.get("/staff/cases")).text
        page = await union.get(f"/staff/cases/{case.id}")
        assert "段工会（职工直接反映，车间看不到）" in page.text
        # Only the union's own staff can be assigned.
        r = await union.post(f"/staff/cases/{case.id}/act", data={
            "csrf": csrf, "action": "accept", "assignee": str(w["users"]["lead_a"].id)})
        assert r.status_code == 422
        me = w["users"]["lead_g"]
        for action, extra in (("accept", {"assignee": str(me.id)}),
                              ("reply", {"body": "已核实，加班费下月补发。"})):
            r = await union.post(f"/staff/cases/{case.id}/act",
                                 data={"csrf": csrf, "action": action, **extra})
            assert r.status_code == 303, (action, r.text)
        # Never on a workshop's board.
        r = await union.post(f"/staff/cases/{case.id}/act", data={
            "csrf": csrf, "action": "publish", "summary": "加班费问题已处理。"})
        assert r.status_code == 422
    async with make_client(app) as worker:
        page = await track(worker, receipt)
        assert "已核实，加班费下月补发。" in page.text
        assert "段工会（直接反映，车间领导看不到）" in page.text


async def test_boxes_and_boards_per_workshop(app):
    w = await depot_world()
    async with make_client(app) as c:
        # Several workshops: "/" lists the boxes; an old team link finds its workshop.
        home = await c.get("/")
        assert '/w/main/' in home.text and '/w/b/' in home.text and "<textarea" not in home.text
        r = await c.get("/?t=b1")
        assert r.status_code == 303 and r.headers["location"] == "/w/b/?t=b1"
        page = await c.get("/w/b/?t=b1")
        assert "二车间一班" in page.text and "二车间专用" in page.text
        assert (await c.get("/w/nope/")).status_code == 404
        assert (await c.get("/w/gonghui/")).status_code == 404  # a desk has no box
        assert (await c.post("/", data={"body": "x"})).status_code == 404
        # A's team code in B's box is not B's team.
        page = await c.get("/w/b/?t=nonexistent")
        assert "注明：" not in page.text
        board = await c.get("/board")
        assert "/w/b/board" in board.text
        assert (await c.get("/w/b/board")).status_code == 200
    assert w


async def test_one_workshop_keeps_working_at_the_root(client):
    """A single-workshop installation: the box at /, team links /?t=, the board at /board."""
    from suggestbox import depot

    main = await Unit.get(code="main")
    await depot.add_team("t1", "一班", main)
    page = await client.get("/?t=t1")
    assert 'action="/"' in page.text and "一班" in page.text
    assert "段工会" not in page.text
    assert "的领导、承办人和段领导能看到您写的内容" in page.text
    r = await client.post("/", data={"token": form_token(page.text), "category": "1",
                                     "team": "t1", "team_choice": "team",
                                     "body": "单车间的意见箱照常使用。"})
    assert r.status_code == 303
    case = await Case.get()
    assert case.unit_id == case.workshop_id == main.id
    assert (await client.get("/board")).status_code == 200


async def test_notifications_stay_inside_the_workshop(app):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from suggestbox import cases

    w = await depot_world()
    counts = {k: await OutboxMessage.filter(channel_id=ch.id).count()
              for k, ch in w["channels"].items()}
    # seed_case wrote the three new-case messages: A's case → A and the depot group; B's → B
    # and the depot group; the desk case → the desk only.
    assert counts == {"a": 1, "b": 1, "g": 1, "depot": 2}
    tz = ZoneInfo("Asia/Shanghai")
    await cases.apply(w["cases"]["b"].id, "accept", w["users"]["lead_b"], now=datetime.now(UTC),
                      tz=tz, assignee_id=w["users"]["hand_b"].id)
    await cases.apply(w["cases"]["b"].id, "return", w["users"]["hand_b"], now=datetime.now(UTC),
                      tz=tz, body="不归我管")
    after = {k: await OutboxMessage.filter(channel_id=ch.id).count()
             for k, ch in w["channels"].items()}
    assert after["a"] == counts["a"] and after["g"] == counts["g"]
    assert after["b"] > counts["b"]


def test_cli_builds_the_tree(tmp_path: Path, monkeypatch: Any, capsys: Any):
    from suggestbox import cli

    monkeypatch.setenv("SUGGESTBOX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SUGGESTBOX_DATABASE_URL", raising=False)
    assert cli.main(["migrate"]) == 0
    assert cli.main(["workshop", "add", "jx2", "检修二车间"]) == 0
    assert cli.main(["workshop", "add", "jijian", "纪检", "--desk"]) == 0
    assert cli.main(["workshop", "add", "JX 2", "坏代码"]) == 1
    assert cli.main(["team", "add", "x1", "一班"]) == 2  # several workshops: say which
    assert cli.main(["team", "add", "x1", "一班", "--workshop", "jx2"]) == 0
    assert cli.main(["team", "add", "x2", "二班", "--workshop", "nope"]) == 1
    capsys.readouterr()
    assert cli.main(["workshop", "list"]) == 0
    listed = capsys.readouterr().out
    assert "jx2\t检修二车间\tworkshop" in listed and "jijian\t纪检\tdesk" in listed
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    assert cli.main(["user", "add", "h", "--role", "handler", "--workshop", "jx2",
                     "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    assert cli.main(["user", "add", "dl", "--role", "leader", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    assert cli.main(["user", "add", "ja", "--role", "admin", "--workshop", "jijian",
                     "--password-stdin"]) == 1  # a desk has no admin
    capsys.readouterr()
    assert cli.main(["user", "list"]) == 0
    listed = capsys.readouterr().out
    assert "h\thandler\tjx2" in listed and "dl\tleader\tdepot" in listed
    out = tmp_path / "x1.svg"
    assert cli.main(["qr", "--workshop", "jx2", "--team", "x1", "--out", str(out),
                     "--base-url", "https://box.example.cn"]) == 0
    assert "https://box.example.cn/w/jx2/?t=x1" in capsys.readouterr().out
    assert out.read_bytes().startswith(b"<?xml")
    assert cli.main(["qr", "--workshop", "main", "--team", "x1", "--out", str(out),
                     "--base-url", "https://box.example.cn"]) == 1  # x1 is jx2's team


# ---- migrating a single-workshop database ------------------------------------------------

STATES = ["new", "accepted", "in_progress", "answered", "closed", "rejected", "merged"]


async def test_single_workshop_database_migrates_and_every_receipt_tracks(db_url, tmp_path):
    """A database at the schema before the tree (0010) with cases in every state, a team, staff
    and a channel: after the migration everything is in the default workshop, admins are depot
    admins, and every receipt still tracks."""
    from tortoise import Tortoise, connections
    from tortoise.migrations.api import migrate as tortoise_migrate

    from suggestbox import receipts
    from suggestbox.app import create_app
    from suggestbox.cases import STATUS_LABELS
    from suggestbox.db import migrate
    from suggestbox.settings import Settings, tortoise_config
    from tests.conftest import EXECUTOR_CACHE

    url = db_url
    if url.startswith("sqlite"):
        url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    else:  # a fresh PostgreSQL database, not the migrated one the fixture made
        from tests.conftest import _pg_admin, pg_base_and_name

        base, name = pg_base_and_name()
        await _pg_admin(f'CREATE DATABASE "{name}"')
        url = f"{base}/{name}"
    secret = "migration-secret-" + "y" * 20
    try:
        await tortoise_migrate(config=tortoise_config(url), target="models.0010_storage_order")
        await Tortoise.close_connections()
        await Tortoise.init(config=tortoise_config(url))
        conn = connections.get("default")
        codes = {}
        sql = ["INSERT INTO site_setting (key, value) VALUES ('name', '某某供电段检修车间')",
               "INSERT INTO team (id, code, name, sort_order, active) VALUES (7, 't7', '七班', "
               "0, TRUE)",
               "INSERT INTO staff_user (id, username, display_name, role, password_hash, active, "
               "created_at) VALUES (1, 'boss', '', 'leader', 'x', TRUE, '2026-10-01 00:00:00'), "
               "(2, 'root', '', 'admin', 'x', TRUE, '2026-10-01 00:00:00'), "
               "(3, 'hand', '', 'handler', 'x', TRUE, '2026-10-01 00:00:00')",
               "INSERT INTO notify_channel (id, name, kind, url, secret, enabled, created_at) "
               "VALUES (1, '领导群', 'json', 'https://x.example/h', '', TRUE, "
               "'2026-10-01 00:00:00')"]
        for i, state in enumerate(STATES):
            receipt = receipts.new_receipt()
            codes[state] = receipt
            case_id = f"{i + 1:08d}-0000-4000-8000-000000000000"
            sql.append(
                'INSERT INTO "case" (id, receipt_hash, category_id, team_id, body, status, '
                "received_on, reopen_count, published, show_reply, assignee_id) VALUES ("
                f"'{case_id}', '{receipts.receipt_hash(secret, receipt)}', 1, "
                f"{'7' if i % 2 else 'NULL'}, '旧库里的{state}案件', '{state}', '2026-10-0{i + 1}',"
                f" 0, FALSE, TRUE, {'3' if state not in ('new', 'rejected') else 'NULL'})")
            sql.append(
                "INSERT INTO event (id, case_id, seq, action, to_status, by_submitter, public, at)"
                f" VALUES ('{i + 1:08d}-1111-4000-8000-000000000000', '{case_id}', 1, 'submit', "
                f"'new', TRUE, TRUE, '2026-10-0{i + 1} 00:00:00+08:00')")
        for statement in sql:
            await conn.execute_script(statement)
        await Tortoise.close_connections()
        EXECUTOR_CACHE.clear()
        await migrate(url)
        EXECUTOR_CACHE.clear()
        settings = Settings(data_dir=tmp_path / "data", database_url=url, secret_key=secret,
                            inline_worker=False, notify_quiet_hours=0)
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            main = await Unit.get(kind="workshop")
            assert (main.code, main.name) == ("main", "某某供电段检修车间")
            assert await Case.filter(unit_id=main.id, workshop_id=main.id).count() == len(STATES)
            assert (await Team.get(code="t7")).workshop_id == main.id
            assert (await Channel.get(id=1)).unit_id == main.id
            units = {u.username: u.unit_id for u in await StaffUser.all()}
            assert units == {"boss": main.id, "hand": main.id, "root": None}
            async with make_client(application) as c:
                for state, receipt in codes.items():
                    page = await track(c, receipt)
                    assert page.status_code == 200, (state, page.text)
                    assert STATUS_LABELS[state] in page.text, state
                home = await c.get("/?t=t7")
                assert 'action="/"' in home.text and "七班" in home.text
            await StaffUser.filter(username="boss").update(
                password_hash=__import__("suggestbox.auth", fromlist=["x"]).hash_password(
                    PASSWORD))
            async with make_client(application) as c:
                await login(c, "boss")
                queue = await c.get("/staff/cases")
                assert re.search(r"全部 7\b", queue.text), queue.text
    finally:
        if not db_url.startswith("sqlite"):
            from tests.conftest import _pg_admin

            await _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_unit_codes_are_checked():
    from suggestbox import depot
    from suggestbox.cases import DomainError

    assert depot.check_unit_code(" JX1 ") == "jx1"
    for bad in ("", "车间", "a b", "-a", "a" * 33, "a/b", "a\x00"):
        with pytest.raises(DomainError):
            depot.check_unit_code(bad)

"""The admin page in Chromium, walked as a person would: add a team, a user and a category, get
each one wrong first (the browser's own check, then the server's), see the error next to the form
with everything typed still there, correct it, and see a confirmation. Headers line up with their
inputs; no console error on any page. Screenshots go to `screenshots/admin-*.png`.
"""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import LiveServer
from tests.test_browser import LAPTOP, PHONE, Watched, add_staff, staff_login


def values(form: Any, *names: str) -> dict[str, str]:
    return {n: form.locator(f"[name={n}]").input_value() for n in names}


def error_beside(w: Watched, form_selector: str, text: str) -> None:
    """The error is inside (or right under) the form it is about, and says ``text``."""
    error = w.page.locator(f"{form_selector} .form-error")
    assert error.count() == 1, w.page.inner_text("main")
    assert text in error.inner_text()
    assert w.page.locator(".form-error").count() == 1, "one error, at its form only"
    box, form = error.bounding_box(), w.page.locator(form_selector).bounding_box()
    assert box and form and form["y"] <= box["y"] <= form["y"] + form["height"]


def test_admin_forms_as_a_person_uses_them(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    server.cli("team", "add", "w1", "一号车间")
    add_staff(server, "boss", "admin", "赵段长")
    w = Watched(browser, server, **LAPTOP)
    try:
        staff_login(w, "boss")
        p = w.page
        p.goto("/admin")
        w.shot("admin-01-page")

        # Table headers sit over their inputs (each input in its own cell).
        # units, users, teams, categories: the tables with inputs in their rows
        for table in [t for i, t in enumerate(p.locator("table.admin-table").all()) if i != 1]:
            heads = table.locator("thead th").all()
            cells = table.locator("tbody tr").first.locator("td").all()
            assert len(heads) == len(cells)
            for th, td in zip(heads, cells, strict=True):
                h, c = th.bounding_box(), td.bounding_box()
                assert h and c and abs(h["x"] - c["x"]) < 1 and abs(h["width"] - c["width"]) < 1
                if td.locator("input:not([type=hidden]), button").count() == 0:
                    continue  # a plain cell (the workshop a team belongs to)
                field = td.locator("input:not([type=hidden]), button").first
                f = field.bounding_box()
                assert f and h["x"] <= f["x"] and f["x"] + f["width"] <= h["x"] + h["width"] + 1

        # --- a team: the code field says what it takes; Chinese is refused by the browser ---
        team = p.locator("#team-add")
        hint = p.locator("#team-code-hint")
        assert "英文字母" in hint.inner_text() and hint.is_visible()
        team.locator("[name=code]").fill("二班")
        team.locator("[name=name]").fill("二号检修班")
        team.locator("[name=sort_order]").fill("5")
        team.locator("button").click()
        code = team.locator("[name=code]")
        assert code.evaluate("e => e.validity.patternMismatch")
        assert p.url.endswith("/admin"), "the browser's check stopped the form"
        # The server's check: a code that exists already.
        code.fill("w1")
        team.locator("button").click()
        p.wait_for_load_state()
        assert p.url.endswith("/admin/teams")
        team = p.locator("#team-add")
        error_beside(w, "#team-add", "已经存在")
        assert values(team, "code", "name", "sort_order") == {
            "code": "w1", "name": "二号检修班", "sort_order": "5"}
        assert team.locator("[name=code]").get_attribute("aria-invalid") == "true"
        w.shot("admin-02-team-error")
        team.locator("[name=code]").fill("w2")
        team.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=team_added#teams$"))
        assert "已添加班组" in p.inner_text("main")
        assert p.locator("table.admin-table input[name=code][value=w2]").count() == 1
        assert p.locator(".form-error").count() == 0

        # --- a user: a name that is taken, then a free one; a confirmation says who ---
        user = p.locator("#user-add")
        user.locator("[name=username]").fill("boss")
        user.locator("[name=display_name]").fill("王主任")
        user.locator("[name=role]").select_option("leader")
        user.locator("[name=password]").fill("secret-pass-1")
        user.locator("button").click()
        p.wait_for_load_state()
        assert p.url.endswith("/admin/users")
        user = p.locator("#user-add")
        error_beside(w, "#user-add", "已经存在")
        assert values(user, "username", "display_name", "role") == {
            "username": "boss", "display_name": "王主任", "role": "leader"}
        # Passwords are never sent back in a page; the hint says to type it again.
        assert user.locator("[name=password]").input_value() == ""
        assert "重新输入密码" in user.inner_text()
        w.shot("admin-03-user-error")
        user.locator("[name=username]").fill("wang")
        user.locator("[name=password]").fill("secret-pass-1")
        user.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=user_added&u=\d+#users$"))
        notice = p.locator("#users ~ .alert.ok").first
        assert "已添加工作人员 wang（领导）" in notice.inner_text()
        w.shot("admin-04-user-added")

        # --- a category: a deadline that is not a number, then a right one ---
        cat = p.locator("#category-add")
        cat.locator("[name=name]").fill("设备报修")
        cat.locator("[name=deadline_days]").fill("七天")
        cat.locator("[name=sort_order]").fill("3")
        cat.locator("button").click()
        p.wait_for_load_state()
        cat = p.locator("#category-add")
        error_beside(w, "#category-add", "整数")
        assert values(cat, "name", "deadline_days", "sort_order") == {
            "name": "设备报修", "deadline_days": "七天", "sort_order": "3"}
        assert cat.locator("[name=deadline_days]").get_attribute("aria-invalid") == "true"
        cat.locator("[name=deadline_days]").fill("7")
        cat.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=category_added#categories$"))
        assert "已添加类别" in p.inner_text("main")

        # --- editing a row: the error shows under that row, the row keeps what was typed ---
        row = p.locator("table.admin-table tr", has=p.locator("input[name=code][value=w1]"))
        row.locator("[name=name]").fill("")
        row.locator("[name=sort_order]").fill("9")
        row.locator("button").click()
        p.wait_for_load_state()
        bad_row = p.locator("table.admin-table tr", has=p.locator("input[name=code][value=w1]"))
        assert bad_row.locator("[name=name]").input_value() == ""
        assert bad_row.locator("[name=sort_order]").input_value() == "9"
        err = p.locator("tr.row-error .form-error")
        assert err.count() == 1 and "名称" in err.inner_text()
        eb, rb = err.bounding_box(), bad_row.bounding_box()
        assert eb and rb and 0 <= eb["y"] - (rb["y"] + rb["height"]) < 40, "right under its row"
        w.shot("admin-05-row-error")
        bad_row.locator("[name=name]").fill("一号检修班")
        bad_row.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=team_saved#teams$"))
        assert p.locator("input[name=name][value=一号检修班]").count() == 1
        w.shot("admin-06-saved")
        w.check_clean()
    finally:
        w.close()


def test_depot_admin_grows_the_tree(browser: Any, live_server: LiveServer) -> None:
    """Issue 14: a depot admin adds a workshop (a Chinese code is refused, the choices stay),
    a desk, and a leader for the new workshop; the new box and its desk choice are live."""
    server = live_server
    add_staff(server, "boss", "admin", "赵段长")
    w = Watched(browser, server, **LAPTOP)
    try:
        staff_login(w, "boss")
        p = w.page
        p.goto("/admin")
        unit = p.locator("#unit-add")
        unit.locator("[name=kind]").select_option("workshop")
        unit.locator("[name=code]").fill("二车间")
        unit.locator("[name=name]").fill("检修二车间")
        unit.locator("button").click()
        p.wait_for_load_state()
        assert p.url.endswith("/admin/units")
        unit = p.locator("#unit-add")
        error_beside(w, "#unit-add", "小写英文字母")
        assert values(unit, "kind", "code", "name") == {
            "kind": "workshop", "code": "二车间", "name": "检修二车间"}
        w.shot("admin-06-unit-error")
        unit.locator("[name=code]").fill("jx2")
        unit.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=unit_added#units$"))
        unit = p.locator("#unit-add")
        unit.locator("[name=kind]").select_option("desk")
        unit.locator("[name=code]").fill("gonghui")
        unit.locator("[name=name]").fill("段工会")
        unit.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=unit_added#units$"))

        user = p.locator("#user-add")
        user.locator("[name=username]").fill("boss")  # taken
        user.locator("[name=display_name]").fill("李主任")
        user.locator("[name=unit]").select_option("jx2")
        user.locator("[name=role]").select_option("leader")
        user.locator("[name=password]").fill("secret-pass-1")
        user.locator("button").click()
        p.wait_for_load_state()
        user = p.locator("#user-add")
        error_beside(w, "#user-add", "已经存在")
        assert values(user, "username", "unit", "role") == {
            "username": "boss", "unit": "jx2", "role": "leader"}
        user.locator("[name=username]").fill("li")
        user.locator("[name=password]").fill("secret-pass-1")
        user.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=user_added&u=\d+#users$"))
        w.shot("admin-07-tree")
        # A source (来源): a name that exists, then a new one; it is offered when recording.
        src = p.locator("#source-add")
        src.locator("[name=name]").fill("谈心")
        src.locator("[name=sort_order]").fill("8")
        src.locator("button").click()
        p.wait_for_load_state()
        src = p.locator("#source-add")
        error_beside(w, "#source-add", "已经存在")
        assert values(src, "name", "sort_order") == {"name": "谈心", "sort_order": "8"}
        src.locator("[name=name]").fill("班组会")
        src.locator("button").click()
        p.wait_for_url(re.compile(r"/admin\?ok=source_added#sources$"))
        p.goto("/staff/cases/new?w=jx2")
        assert p.get_by_label("班组会", exact=True).count() == 1
        assert p.get_by_label("扫码", exact=True).count() == 0
        listed = server.cli("user", "list").stdout
        assert "li\tleader\tjx2\tactive" in listed
        w.check_clean()
    finally:
        w.close()
    phone = Watched(browser, server, **PHONE)
    try:
        phone.page.goto("/")
        assert "检修二车间" in phone.page.inner_text("main")
        phone.page.goto("/w/jx2/")
        form = phone.page.inner_text("form")
        assert "直接反映给段工会：只有段工会的工作人员能看到，车间领导看不到。" in form
        assert "检修二车间的领导、承办人和段领导能看到" in form
        phone.check_clean()
    finally:
        phone.close()

"""Accessibility: axe-core in Debian's Chromium on the main pages; no serious or critical issue.

axe-core comes from npm (`npm ci` at the repo root puts it in the git-ignored node_modules/).
The app's CSP forbids injected scripts, so the checking context bypasses CSP (the pages under
test are otherwise unchanged). Without node_modules/axe-core these tests skip, except under CI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import (
    IN_CI,
    ROOT,
    LiveServer,
    launch,
    require_chromium,
    start_server,
    stop_server,
)
from tests.test_browser import LAPTOP, PHONE, STAFF_PASSWORD

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}


def require_axe() -> None:
    if not AXE.exists():
        if IN_CI:
            pytest.fail(f"{AXE} is missing (run `npm ci`), and CI=true requires it")
        pytest.skip(f"{AXE} missing: run `npm ci` in the repository root")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory.mktemp("a11y"))
    try:
        srv.cli("team", "add", "w1", "一号车间")
        srv.cli("user", "add", "lead", "--role", "leader", "--password-stdin",
                stdin=STAFF_PASSWORD + "\n")
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def pages(server: LiveServer) -> Iterator[tuple[Any, Any]]:
    """A phone page and a signed-in laptop page, with one answered and published case."""
    require_chromium()
    require_axe()
    from playwright.sync_api import sync_playwright


    with sync_playwright() as p:
        browser = launch(p)
        phone = browser.new_context(base_url=server.url, bypass_csp=True, **PHONE).new_page()
        laptop = browser.new_context(base_url=server.url, bypass_csp=True, **LAPTOP).new_page()
        phone.goto("/?t=w1")
        phone.check("input[name=category] >> nth=0")
        phone.fill("#body", "休息室的空调坏了，夏天太热，希望尽快修理。")
        phone.click("button.primary")
        phone.wait_for_url(re.compile("/receipt$"))
        receipt = phone.get_attribute("[data-receipt]", "data-receipt")
        laptop.goto("/staff/login")
        laptop.fill("#username", "lead")
        laptop.fill("#password", STAFF_PASSWORD)
        laptop.click("button.primary")
        laptop.wait_for_url(re.compile("/staff/cases"))
        laptop.click("table.cases a.mono")
        laptop.wait_for_url(re.compile(r"/staff/cases/[0-9a-f-]{36}$"))
        accept = laptop.locator("form:has([name=action][value=accept])")
        accept.locator("select[name=assignee]").select_option(index=1)
        accept.locator("button[type=submit]").click()
        laptop.wait_for_load_state()
        reply = laptop.locator("form:has([name=action][value=reply])")
        reply.locator("textarea").fill("已报修，明天上午更换压缩机。")
        reply.locator("button[type=submit]").click()
        laptop.wait_for_load_state()
        publish = laptop.locator("form:has([name=action][value=publish])")
        if publish.count():
            publish.locator("textarea").first.fill("休息室空调已修好。")
            publish.locator("button[type=submit]").click()
            laptop.wait_for_load_state()
        phone.goto("/track")
        phone.fill("#receipt", receipt or "")
        phone.click("button.primary")
        phone.wait_for_load_state()
        phone.evaluate("document.body.dataset.trackResult = '1'")
        try:
            yield phone, laptop
        finally:
            browser.close()


def axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = result["violations"]
    for v in violations:
        nodes = "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        print(f"[axe] {page.url} {v['impact']} {v['id']}: {v['help']} — {nodes}")
    return violations


def check(page: Any) -> None:
    blocking = [v for v in axe(page) if v["impact"] in BLOCKING]
    summary = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["html"][:120] for n in v["nodes"][:3]]}
        for v in blocking
    ]
    assert not blocking, json.dumps(summary, ensure_ascii=False, indent=1)


def test_track_result_page(pages: tuple[Any, Any]) -> None:
    phone, _ = pages
    assert phone.evaluate("document.body.dataset.trackResult") == "1"
    assert "处理进度" in phone.inner_text("h1")
    check(phone)


@pytest.mark.parametrize("path", ["/", "/?t=w1", "/track", "/receipt", "/board"])
def test_public_pages(pages: tuple[Any, Any], server: LiveServer, path: str) -> None:
    phone, _ = pages
    response = phone.goto(path)
    assert response.status == 200
    check(phone)


def test_public_form_with_errors(pages: tuple[Any, Any]) -> None:
    phone, _ = pages
    phone.goto("/")
    phone.click("button.primary")  # empty text: the form comes back with its errors
    assert phone.locator(".error").count() >= 1
    check(phone)


@pytest.mark.parametrize("path", ["/staff/login", "/staff/cases", "case"])
def test_staff_pages(pages: tuple[Any, Any], path: str) -> None:
    _, laptop = pages
    if path == "case":
        laptop.goto("/staff/cases")
        laptop.click("table.cases a.mono")
        laptop.wait_for_url(re.compile(r"/staff/cases/[0-9a-f-]{36}$"))
    else:
        assert laptop.goto(path).status == 200
    check(laptop)


def test_axe_catches_a_planted_violation(pages: tuple[Any, Any]) -> None:
    """The check itself works: an unlabeled field and low-contrast text are reported."""
    phone, _ = pages
    phone.goto("/track")
    phone.evaluate("""() => {
        document.querySelector('label[for=receipt]').remove();
        document.querySelector('#receipt').removeAttribute('placeholder');
        const p = document.createElement('p');
        p.textContent = '看不清的文字';
        p.className = 'planted';
        document.querySelector('main').append(p);
        p.setAttribute('style', 'color:#eee;background:#fff');
    }""")
    found = {v["id"]: v["impact"] for v in axe(phone)}
    assert found.get("label") in BLOCKING and found.get("color-contrast") in BLOCKING, found

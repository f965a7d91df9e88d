"""Public pages: submit, receipt, track (with follow-ups and rating), health."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import cases, tokens
from ..app import render
from ..cases import DomainError, Status
from ..models import Case, Category, Team, UsedFormToken
from .common import (
    field,
    followup_allowed,
    lookup_allowed,
    lookup_found,
    now_utc,
    read_form,
    settings_of,
    submit_allowed,
    today,
)

log = logging.getLogger("suggestbox")
RECEIPT_COOKIE = "sb_receipt"


async def _submit_context(request: Request, team: Team | None) -> dict[str, object]:
    return {
        "categories": await Category.filter(active=True),
        "team": team,
        "token": tokens.issue(settings_of(request).secret_key, today(request)),
        "limits": (settings_of(request).text_min, settings_of(request).text_max),
    }


async def _team(code: str) -> Team | None:
    code = code.strip()
    if not code or len(code) > 32:
        return None
    return await Team.get_or_none(code=code, active=True)


async def submit_page(request: Request) -> Response:
    team = await _team(request.query_params.get("t", ""))
    return render(request, "submit.html", await _submit_context(request, team))


async def submit(request: Request) -> Response:
    s = settings_of(request)
    if not await submit_allowed(request):
        return render(request, "error.html",
                      {"code": 429, "message": "提交太频繁了，请过几分钟再试。"}, 429)
    form = await read_form(request)
    team = await _team(field(form, "team"))
    errors: dict[str, str] = {}
    nonce = tokens.verify(s.secret_key, field(form, "token"), today(request))
    body = ""
    try:
        body = cases.clean_text(field(form, "body"), minimum=s.text_min, maximum=s.text_max,
                                label="内容")
    except DomainError as e:
        errors["body"] = e.message
    try:
        category_id = int(field(form, "category"))
        if not 0 < category_id < 2**31:  # beyond the column's range the driver fails (500)
            raise ValueError
    except ValueError:
        category_id = 0
        errors["category"] = "请选择一个类别。"
    if nonce is None:
        errors["form"] = "表单已过期，请检查内容后再提交一次。"
    if not errors and nonce is not None:
        try:
            await cases.submit_case(
                secret_key=s.secret_key, nonce=nonce, category_id=category_id, team=team,
                body=body, today=today(request), tz=s.tz,
            )
        except DomainError as e:
            errors[e.field or "form"] = e.message
        else:
            response = RedirectResponse("/receipt", status_code=303)
            response.set_cookie(
                RECEIPT_COOKIE, nonce, max_age=900, path="/receipt", httponly=True,
                samesite="strict", secure=s.secure_cookies,
            )
            return response
    context = await _submit_context(request, team)
    context.update(errors=errors, form={"body": field(form, "body")[: s.text_max * 2],
                                        "category": field(form, "category")})
    return render(request, "submit.html", context, status_code=422)


async def receipt_page(request: Request) -> Response:
    """Shows the receipt once (POST/redirect/GET): the cookie holds the form's nonce only."""
    nonce = request.cookies.get(RECEIPT_COOKIE, "")
    receipt = None
    if nonce and len(nonce) < 64:
        used = await UsedFormToken.get_or_none(id=tokens.used_id(settings_of(request).secret_key,
                                                                  nonce))
        if used is not None and used.wrapped:
            receipt = tokens.unwrap(nonce, used.wrapped)
    response = render(request, "receipt.html", {"receipt": receipt})
    response.delete_cookie(RECEIPT_COOKIE, path="/receipt")
    return response


async def track_page(request: Request) -> Response:
    return render(request, "track.html", {"token": _token(request)})


def _token(request: Request) -> str:
    return tokens.issue(settings_of(request).secret_key, today(request))


async def _track_context(request: Request, case: Case, receipt: str) -> dict[str, object]:
    shown = case
    if case.status == Status.MERGED and case.merged_into_id:  # type: ignore[attr-defined]
        main = await Case.get_or_none(id=case.merged_into_id).select_related(  # type: ignore[attr-defined]
            "category", "team")
        shown = main or case
    events = await cases.timeline(shown, public_only=True)
    if shown is not case:
        # The main case's progress, but never its submitter's own words: staff events from the
        # main case, the reader's own events from theirs.
        events = sorted(
            [e for e in events if not e.by_submitter]
            + await cases.timeline(case, public_only=True),
            key=lambda e: e.at,
        )
    return {
        "case": case,
        "shown": shown,
        "events": events,
        "receipt": receipt,
        "token": _token(request),
        "can_rate": shown is case and case.status == Status.ANSWERED
        and case.rating not in ("satisfied", "basic"),
        "can_followup": case.status != Status.MERGED,
    }


async def _lookup(request: Request, receipt: str) -> Case | Response:
    s = settings_of(request)
    if not await lookup_allowed(request):  # counted before the look-up, given back on a find
        return render(request, "track.html",
                      {"token": _token(request), "error": "查询次数太多，请稍后再试。"}, 429)
    case = await cases.find_by_receipt(s.secret_key, receipt)
    if case is None:
        return render(request, "track.html", {
            "token": _token(request),
            "error": "没有找到与这个回执码对应的记录。请核对后重试。",
        }, 422)
    await lookup_found(request)
    return case


async def track(request: Request) -> Response:
    form = await read_form(request)
    if tokens.verify(settings_of(request).secret_key, field(form, "token"), today(request)) is None:
        return render(request, "track.html",
                      {"token": _token(request), "error": "页面已过期，请重新输入回执码。"}, 403)
    receipt = field(form, "receipt")
    found = await _lookup(request, receipt)
    if isinstance(found, Response):
        return found
    return render(request, "track.html", await _track_context(request, found, receipt))


async def track_action(request: Request) -> Response:
    """A follow-up message or a rating, sent from the tracking page."""
    s = settings_of(request)
    form = await read_form(request)
    receipt = field(form, "receipt")
    found = await _lookup(request, receipt)
    if isinstance(found, Response):
        return found
    action = request.path_params["action"]
    if action not in ("followup", "rate"):
        raise HTTPException(404)
    if not await followup_allowed(request):
        return render(request, "error.html",
                      {"code": 429, "message": "提交太频繁了，请过几分钟再试。"}, 429)
    nonce = tokens.verify(s.secret_key, field(form, "token"), today(request))
    errors: dict[str, str] = {}
    notice = ""
    if nonce is None:
        errors["form"] = "页面已过期，请重新提交。"
    else:
        try:
            done = await cases.submitter_act(
                secret_key=s.secret_key, nonce=nonce, case_id=found.id, action=action,
                body=field(form, "body"), rating=field(form, "rating") or None,
                now=now_utc(), tz=s.tz, max_length=s.followup_max,
            )
            if not done:
                notice = "这份表单已经提交过了。"
            else:
                notice = "已补充，谢谢。" if action == "followup" else "感谢您的评价。"
        except DomainError as e:
            errors[e.field or "form"] = e.message
        await found.refresh_from_db()
    context = await _track_context(request, found, receipt)
    context.update(errors=errors, notice=notice, action=action,
                   form={"body": field(form, "body")[: s.followup_max * 2]})
    return render(request, "track.html", context, status_code=422 if errors else 200)


routes = [
    Route("/", submit_page, methods=["GET"]),
    Route("/", submit, methods=["POST"]),
    Route("/receipt", receipt_page, methods=["GET"]),
    Route("/track", track_page, methods=["GET"]),
    Route("/track", track, methods=["POST"]),
    Route("/track/{action:str}", track_action, methods=["POST"]),
]

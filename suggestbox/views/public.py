"""Public pages: submit, receipt, track (with follow-ups and rating), health."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import cases, depot, followthrough, notify, org, photos, receipts, similar, tokens, urgency
from ..cases import DomainError, Status
from ..models import Case, Photo, Team, Unit, UsedFormToken
from ..settings import Settings
from ..templating import render
from ..throttle import Throttle
from .common import (
    client_key,
    field,
    followup_allowed,
    lookup_allowed,
    lookup_found,
    now_utc,
    read_form,
    read_photo_form,
    settings_of,
    submit_allowed,
    throttle_of,
    today,
    tree_of,
    uploads,
)

log = logging.getLogger("suggestbox")
RECEIPT_COOKIE = "sb_receipt"


async def _submit_context(request: Request, workshop: Unit, team: Team | None,
                          token: str | None = None, just_sent: bool | None = None
                          ) -> dict[str, object]:
    s = settings_of(request)
    tree = await tree_of(request).get()
    categories = tree.offered_categories(workshop)
    return {
        "categories": categories,
        # 立即通知值班领导 is offered for urgent categories (安全隐患) only.
        "urgent": [c for c in categories if c.urgent],
        # Whether new cases wait for a quiet-time batch (else the opt-in would change nothing).
        "batched": "new_case" in notify.held_kinds(s),
        "quiet_hours": s.notify_quiet_hours, "digest_hour": s.notify_hour if s.notify_digest
        else None,
        "workshop": workshop,
        # The form posts back to where it was shown: ``/`` (one workshop) or ``/w/<code>/``.
        "box_path": request.url.path,
        "board_path": "/board" if "workshop" not in request.path_params
        else f"/w/{workshop.code}/board",
        "in_tree": "workshop" in request.path_params,
        "desks": tree.desks(),
        "team": team,
        "token": token if token is not None else tokens.issue(s.secret_key, today(request)),
        "limits": (s.text_min, s.text_max),
        # This browser submitted a moment ago: say so, so that nobody writes the same again.
        "just_sent": just_sent if just_sent is not None else _show_again_nonce(request) is not None,
        "show_again_minutes": receipts.SHOW_AGAIN_SECONDS // 60,
        "org": org.org_of(tree),
    }


def _show_again_nonce(request: Request) -> str | None:
    value = request.cookies.get(RECEIPT_COOKIE, "")
    if not value:
        return None
    return receipts.show_again_nonce(settings_of(request).secret_key, value, time.time())


async def _team(request: Request, code: str, workshop: Unit | None) -> Team | None:
    """An active team of this workshop (any workshop's when ``workshop`` is None)."""
    code = code.strip()
    if not code or len(code) > 32:
        return None
    return (await tree_of(request).get()).team(code, workshop)


async def _workshop(request: Request) -> Unit | None:
    """The box this request is for: ``/w/<code>/``, or ``/`` while there is one workshop."""
    tree = await tree_of(request).get()
    code = request.path_params.get("workshop")
    if code is None:
        return tree.single_workshop()
    found = tree.by_code(code, depot.WORKSHOP)
    if found is None or not found.active:
        raise HTTPException(404, "没有这个车间的意见箱，请扫描车间张贴的二维码。")
    return found


async def _choose(request: Request) -> Response:
    """``/`` with several workshops: a team link from an old poster goes to its workshop's box;
    anything else lists the workshops' boxes."""
    tree = await tree_of(request).get()
    team = await _team(request, request.query_params.get("t", ""), None)
    if team is not None:
        unit = next(u for u in tree.units if u.id == team.workshop_id)  # type: ignore[attr-defined]
        return RedirectResponse(f"/w/{unit.code}/?t={team.code}", status_code=303)
    return render(request, "choose.html", {
        "workshops": [u for u in tree.units if u.kind == depot.WORKSHOP and u.active],
        "org": org.org_of(tree)})


# The submit form is the same for every phone of a box but for its one-time form token: it is
# rendered once per copy of the tree (depot.TreeCache: a change of categories, teams or the
# organisation makes a new copy) with this slot where the token goes, and each request puts a
# fresh token there (issue 19: Jinja was half of GET /).
TOKEN_SLOT = "SBFORMTOKENSLOT"  # noqa: S105 (a placeholder, not a secret)
FORM_PAGES_MAX = 256


class FormPages:
    def __init__(self) -> None:
        self.tree: object = None
        self.pages: dict[tuple[object, ...], tuple[bytes, bytes]] = {}

    def for_tree(self, tree: object) -> dict[tuple[object, ...], tuple[bytes, bytes]]:
        if self.tree is not tree or len(self.pages) >= FORM_PAGES_MAX:
            self.tree, self.pages = tree, {}
        return self.pages

    def clear(self) -> None:
        self.tree, self.pages = None, {}


async def submit_page(request: Request) -> Response:
    workshop = await _workshop(request)
    if workshop is None:
        return await _choose(request)
    team = await _team(request, request.query_params.get("t", ""), workshop)
    just_sent = _show_again_nonce(request) is not None
    day = today(request)
    cache: FormPages | None = getattr(request.app.state, "form_pages", None)
    if cache is None:
        cache = request.app.state.form_pages = FormPages()
    pages = cache.for_tree(await tree_of(request).get())
    key = (request.url.path, workshop.id, team.id if team else None, just_sent, day)
    parts = pages.get(key)
    if parts is None:
        page = bytes(render(request, "submit.html", await _submit_context(
            request, workshop, team, token=TOKEN_SLOT, just_sent=just_sent)).body)
        before, slot, after = page.partition(TOKEN_SLOT.encode())
        if not slot or TOKEN_SLOT.encode() in after:
            raise RuntimeError("submit.html must show the form token exactly once")
        parts = pages[key] = (before, after)
    token = tokens.issue(settings_of(request).secret_key, day)
    return HTMLResponse(parts[0] + token.encode() + parts[1])


async def similar_on_board(request: Request) -> Response:
    """While a worker writes: the workshop's board items most like the text (public summaries
    only; unpublished cases are never shown). The text arrives in a POST body and is not kept."""
    form = await read_form(request)
    workshop = (await tree_of(request).get()).by_code(field(form, "w"), depot.WORKSHOP)
    text = field(form, "q")[:500]
    if workshop is None or len(text.strip()) < 4:
        return JSONResponse({"items": []})
    s = settings_of(request)
    allowed = await throttle_of(request).take("similar", await client_key(request), 120,
                                              s.submit_window)
    if not allowed.ok:
        return JSONResponse({"items": []}, status_code=429)
    found = await similar.similar_cases(text, unit_ids=[workshop.id], top=3, for_workers=True,
                                        limit=1000)
    return JSONResponse({"items": [
        {"id": str(m.case.id), "summary": m.text, "supports": m.case.supports} for m in found]})


def _slash(request: Request) -> Response:
    return RedirectResponse(f"/w/{request.path_params['workshop']}/", status_code=308)


def _window_key(secret_key: str, nonce: str) -> str:
    return "receipt-window:" + tokens.used_id(secret_key, nonce)


async def _open_window(throttle: Throttle, key: str) -> None:
    # With Redis down this lands in the process's own memory (throttle.py), like the limits.
    await throttle.mark(key, receipts.SHOW_AGAIN_SECONDS)


async def _window_open(throttle: Throttle, key: str) -> bool:
    return await throttle.marked(key)


def _receipt_redirect(request: Request, nonce: str) -> Response:
    response = RedirectResponse("/receipt", status_code=303)
    response.set_cookie(
        RECEIPT_COOKIE, receipts.show_again_cookie(settings_of(request).secret_key, nonce,
                                                   time.time()),
        max_age=receipts.SHOW_AGAIN_SECONDS, path="/", httponly=True, samesite="strict",
        secure=settings_of(request).secure_cookies,
    )
    return response


# Decoding a photo takes CPU and memory: a few at a time per process, the rest wait.
_PHOTO_SLOTS = asyncio.Semaphore(2)


async def _take_files(form: FormData) -> list[bytes]:
    """The chosen files' bytes (from memory), every upload closed at once."""
    files = uploads(form, "photos")
    try:
        return [await f.read() for f in files]
    finally:
        await form.close()


async def _photos_of(files: list[bytes], s: Settings) -> tuple[list[photos.CleanPhoto], str | None]:
    """The chosen photos, cleaned; or a Chinese message saying which one is refused and why."""
    if len(files) > s.photo_max_count:
        return [], f"最多只能附 {s.photo_max_count} 张照片，请重新选择。"
    cleaned: list[photos.CleanPhoto] = []
    limit_mb = s.photo_max_bytes // (1024 * 1024)
    for i, data in enumerate(files, start=1):
        label = "照片" if len(files) == 1 else f"第 {i} 张照片"
        if len(data) > s.photo_max_bytes:
            return [], f"{label}太大了（每张最多 {limit_mb} MB），请换一张或先缩小。"
        try:
            async with _PHOTO_SLOTS:
                cleaned.append(await run_in_threadpool(photos.clean, data, label=label))
        except photos.PhotoError as e:
            return [], e.message + "请重新选择照片。"
    return cleaned, None


async def submit(request: Request) -> Response:
    s = settings_of(request)
    throttle = throttle_of(request)
    if not await submit_allowed(request):
        return render(request, "error.html",
                      {"code": 429, "message": "提交太频繁了，请过几分钟再试。"}, 429)
    form = await read_photo_form(request, max_files=10)
    files = await _take_files(form)
    workshop = await _workshop(request)
    if workshop is None:
        raise HTTPException(404, "请先选择车间。")
    team = await _team(request, field(form, "team"), workshop)
    # A team link records the team only while the worker leaves "注明班组" chosen.
    team_choice = field(form, "team_choice") or ("team" if team else "")
    recorded_team = team if team_choice == "team" else None
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
    if team is not None and team_choice not in ("team", "none"):
        errors["team"] = "请选择是否注明班组。"
    # Addressed to a depot desk (段工会, 纪检) instead of the workshop: "" is the workshop.
    to = field(form, "to").strip()[:32]
    tree = await tree_of(request).get()
    desk = tree.by_code(to, depot.DESK) if to else None
    if to and (desk is None or not desk.active):
        errors["to"] = "请重新选择交给谁看。"
    cleaned, photo_error = await _photos_of(files, s)
    if photo_error:
        errors["photos"] = photo_error
    if nonce is None:
        errors["form"] = "表单已过期，请检查内容后再提交一次。"
    notify_now = field(form, "notify_now") == "1"
    if not errors and nonce is not None:
        window = _window_key(s.secret_key, nonce)
        try:
            done = await cases.submit_case(
                secret_key=s.secret_key, nonce=nonce, category_id=category_id,
                team=recorded_team, body=body, today=today(request), tz=s.tz,
                workshop=workshop, desk=desk,
                first_use=lambda: _open_window(throttle, window), photos=cleaned,
                clock_start=urgency.clock_start(s, now_utc(), immediate=notify_now),
                notify_now=notify_now,
                category=tree.category(category_id), source_id=tree.qr_source_id,
            )
        except DomainError as e:
            errors[e.field or "form"] = e.message
        else:
            if not done.replay or await _window_open(throttle, window):
                return _receipt_redirect(request, nonce)
            # The same form sent again long after: nothing new is stored, and the receipt stays
            # hidden (someone else may be holding the phone now).
            return render(request, "receipt.html",
                          await _receipt_context(request, None, already=True), 409)
    context = await _submit_context(request, workshop, team)
    context.update(errors=errors, form={"body": field(form, "body")[: s.text_max * 2],
                                        "category": field(form, "category"),
                                        "team_choice": team_choice, "to": to,
                                        "notify_now": notify_now})
    return render(request, "submit.html", context, status_code=422)


async def _receipt_context(request: Request, receipt: str | None, *, already: bool = False,
                           secret_key: str = "") -> dict[str, object]:
    desk = None
    urgent = None
    if receipt is not None:
        case = await cases.find_by_receipt(secret_key, receipt)
        if case is not None and cases.is_desk_case(case):
            desk = case.unit
        if case is not None and case.category.urgent:
            urgent = case.category
    return {"receipt": receipt, "already": already, "desk": desk,
            "org": org.org_of(await tree_of(request).get()), "urgent": urgent,
            "show_again_minutes": receipts.SHOW_AGAIN_SECONDS // 60}


async def receipt_page(request: Request) -> Response:
    """Shows the receipt (POST/redirect/GET), again on reload for a few minutes.

    The cookie holds the form's nonce and the end of the window, signed; never the receipt.
    """
    nonce = _show_again_nonce(request)
    receipt = None
    if nonce is not None:
        used = await UsedFormToken.get_or_none(id=tokens.used_id(settings_of(request).secret_key,
                                                                  nonce))
        if used is not None and used.wrapped:
            receipt = tokens.unwrap(nonce, used.wrapped)
    response = render(request, "receipt.html", await _receipt_context(
        request, receipt, secret_key=settings_of(request).secret_key))
    if receipt is None and RECEIPT_COOKIE in request.cookies:
        response.delete_cookie(RECEIPT_COOKIE, path="/")
    return response


async def track_page(request: Request) -> Response:
    return render(request, "track.html", {"token": _token(request)})


def _token(request: Request) -> str:
    return tokens.issue(settings_of(request).secret_key, today(request), "track")


async def _track_context(request: Request, case: Case, receipt: str) -> dict[str, object]:
    shown = case
    if case.status == Status.MERGED and case.merged_into_id:  # type: ignore[attr-defined]
        main = await Case.get_or_none(id=case.merged_into_id).select_related(  # type: ignore[attr-defined]
            "category", "team", "unit")
        shown = main or case
    tz = settings_of(request).tz
    events = await cases.timeline(shown, public_only=True, tz=tz)
    if shown is not case:
        # The main case's progress, but never its submitter's own words: staff events from the
        # main case, the reader's own events from theirs.
        events = sorted(
            [e for e in events if not e.by_submitter]
            + await cases.timeline(case, public_only=True, tz=tz),
            key=lambda e: (e.at.astimezone(tz).date(), 0 if e.by_submitter else 1, e.at),
        )
    own = await Photo.filter(case_id=case.id).only("id", "event_id", "thumb")
    thumbs: dict[object, list[str]] = {}
    for p in own:
        thumbs.setdefault(p.event_id, []).append(  # type: ignore[attr-defined]
            "data:image/jpeg;base64," + base64.b64encode(p.thumb).decode())
    return {
        "case": case,
        "shown": shown,
        "desk_case": cases.is_desk_case(case),
        "unit": await Unit.get_or_none(id=case.unit_id),  # type: ignore[attr-defined]
        "events": events,
        "thumbs": thumbs,
        "receipt": receipt,
        "token": _token(request),
        "can_rate": shown is case and case.status == Status.ANSWERED
        and case.rating not in ("satisfied", "basic"),
        "can_followup": case.status != Status.MERGED,
        # 催一下: an open case past its deadline (hours for urgent categories, else days).
        "can_urge": shown is case and urgency.overdue(case, case.category, now_utc(), tz),
        "urged_today": shown is case and any(
            e.action == "urge" and e.at.astimezone(tz).date() == today(request) for e in events),
        # 落实, adoption review, rewards (issue 18). A reward is the reader's own case's.
        "adoption_labels": followthrough.ADOPTION_LABELS,
        "reward_units": followthrough.REWARD_UNITS,
        "reward_states": followthrough.REWARD_STATES,
        "promise_overdue": followthrough.promise_overdue(shown, today(request)),
        "can_donate": case.reward_state == "offered" and case.status != Status.MERGED,
        "reward_desk": await followthrough.reward_desk(),
    }


def _receipt_problem(typed: str) -> str | None:
    """A Chinese message when the typed code cannot be a receipt at all (no look-up needed)."""
    try:
        receipts.normalise(typed)
    except receipts.InvalidReceipt as e:
        if not typed.strip():
            return "请输入回执码。"
        if str(e) == "bad character":
            return "回执码只含数字和字母（不含 I、L、O、U），请核对后重试。"
        n = sum(1 for ch in typed if ch not in receipts.SEPARATORS)
        return f"回执码是 16 位（现在 {n} 位），请核对后重试。"
    return None


async def _lookup(request: Request, receipt: str) -> Case | Response:
    s = settings_of(request)
    typed = receipt[:64]
    problem = _receipt_problem(receipt)
    if problem:
        return render(request, "track.html",
                      {"token": _token(request), "error": problem, "typed": typed}, 422)
    if not await lookup_allowed(request):  # counted before the look-up, given back on a find
        return render(request, "track.html", {
            "token": _token(request), "error": "查询次数太多，请稍后再试。", "typed": typed,
        }, 429)
    case = await cases.find_by_receipt(s.secret_key, receipt)
    if case is None:
        return render(request, "track.html", {
            "token": _token(request), "typed": typed,
            "error": "没有找到与这个回执码对应的记录。请核对后重试。",
        }, 422)
    await lookup_found(request)
    return case


async def track(request: Request) -> Response:
    form = await read_form(request)
    if tokens.verify(settings_of(request).secret_key, field(form, "token"), today(request),
                     "track") is None:
        return render(request, "track.html",
                      {"token": _token(request), "error": "页面已过期，请重新输入回执码。"}, 403)
    receipt = field(form, "receipt")
    found = await _lookup(request, receipt)
    if isinstance(found, Response):
        return found
    return render(request, "track.html", await _track_context(request, found, receipt))


async def track_action(request: Request) -> Response:
    """A follow-up message (with photos) or a rating, sent from the tracking page."""
    s = settings_of(request)
    action = request.path_params["action"]
    form = await (read_photo_form(request, max_files=10) if action == "followup"
                  else read_form(request))
    files = await _take_files(form)
    receipt = field(form, "receipt")
    found = await _lookup(request, receipt)
    if isinstance(found, Response):
        return found
    if action not in ("followup", "rate", "urge", "reward_donate"):
        raise HTTPException(404)
    if not await followup_allowed(request):
        return render(request, "error.html",
                      {"code": 429, "message": "提交太频繁了，请过几分钟再试。"}, 429)
    nonce = tokens.verify(s.secret_key, field(form, "token"), today(request), "track")
    cleaned: list[photos.CleanPhoto] = []
    photo_error = None
    if action == "followup":
        cleaned, photo_error = await _photos_of(files, s)
    errors: dict[str, str] = {}
    notice = ""
    done = False
    if nonce is None:
        errors["form"] = "页面已过期，请重新提交。"
    elif action == "reward_donate" and field(form, "confirm") != "1":
        errors["donate"] = "请勾选确认：奖励捐入班组基金后不能再领取。"
    elif photo_error:
        errors["photos"] = photo_error
    else:
        try:
            done = await cases.submitter_act(
                secret_key=s.secret_key, nonce=nonce, case_id=found.id, action=action,
                body=field(form, "body"), rating=field(form, "rating") or None,
                now=now_utc(), tz=s.tz, max_length=s.followup_max, photos=cleaned,
            )
            notice = "" if done else "这份表单已经提交过了。"
        except DomainError as e:
            errors[e.field or "form"] = e.message
        await found.refresh_from_db()
    if done and action == "urge":
        notice = "已催办：承办人和负责的领导会收到提醒。明天还没有答复的话，可以再催一次。"
    elif done and action == "followup":
        notice = "已补充，谢谢。"
    elif done and action == "reward_donate":
        notice = "奖励已捐入班组基金，谢谢。没有人知道是您。"
    elif done and found.rating == "unsatisfied":
        notice = ("已收到您的评价：不满意。这件事已退回重新办理，"
                  "办理后会再次答复您，届时可以重新评价。")
    elif done:
        notice = "感谢您的评价。"
    context = await _track_context(request, found, receipt)
    context.update(errors=errors, notice=notice, action=action,
                   form={"body": field(form, "body")[: s.followup_max * 2],
                         "rating": field(form, "rating")})
    return render(request, "track.html", context, status_code=422 if errors else 200)


routes = [
    Route("/", submit_page, methods=["GET"]),
    Route("/", submit, methods=["POST"]),
    Route("/similar", similar_on_board, methods=["POST"]),
    Route("/w/{workshop:str}", _slash, methods=["GET"]),
    Route("/w/{workshop:str}/", submit_page, methods=["GET"]),
    Route("/w/{workshop:str}/", submit, methods=["POST"]),
    Route("/receipt", receipt_page, methods=["GET"]),
    Route("/track", track_page, methods=["GET"]),
    Route("/track", track, methods=["POST"]),
    Route("/track/{action:str}", track_action, methods=["POST"]),
]

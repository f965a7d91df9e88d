"""Staff pages: login/logout, the case queue, the case page and its actions, own password."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from .. import auth, cases, depot, followthrough, queue_clock, similar, tokens, urgency
from ..cases import OPEN_STATUSES, RULES, STATUS_LABELS, DomainError, Status
from ..models import Case, Category, Photo, Source, StaffUser, Team, Unit
from ..templating import render
from .common import (
    STAFF_COOKIE,
    client_key,
    field,
    now_utc,
    parse_id,
    photo_response,
    read_form,
    require_staff,
    settings_of,
    staff_form,
    throttle_of,
    today,
    tree_of,
)

LEADERS = ("leader", "admin")
SIMILAR_LIMIT = 1500  # recent open cases compared on a case page (about 0.1 s)
DEVICE_COOKIE = "sb_device"


def _safe_next(value: str) -> str:
    return value if value.startswith("/staff") or value.startswith("/admin") else "/staff/cases"


async def login_page(request: Request) -> Response:
    return render(request, "staff/login.html", {"next": _safe_next(request.query_params.get(
        "next", ""))})


async def login(request: Request) -> Response:
    """Sign in. Every limit is taken before the password is checked (argon2 runs off the loop,
    a few at a time): a burst of guesses from one address gets ``login_fail_limit`` checks, the
    rest a quick 429; the per-account limit binds only browsers without the account's mark."""
    s = settings_of(request)
    throttle = throttle_of(request)
    form = await read_form(request)
    username = field(form, "username").strip()[:64]
    next_path = _safe_next(field(form, "next"))
    context: dict[str, Any] = {"next": next_path, "username": username}
    key = await client_key(request)
    mine = await throttle.take("login", key, s.login_fail_limit, s.login_window)
    if not mine.ok:
        context["error"] = f"登录失败次数太多，请 {mine.wait} 秒后再试。"
        return render(request, "staff/login.html", context, status_code=429)
    known = tokens.device_ok(s.secret_key, username, request.cookies.get(DEVICE_COOKIE))
    account = "user:" + username
    if not known:
        theirs = await throttle.take("login-account", account, s.login_account_fail_limit,
                                     s.login_window)
        if not theirs.ok:
            await throttle.refund("login", key, s.login_window)
            context["error"] = (f"这个账号最近登录失败次数太多。请在平时登录的浏览器上登录，"
                                f"或 {theirs.wait} 秒后再试。")
            return render(request, "staff/login.html", context, status_code=429)
    try:
        user = await auth.authenticate(username, field(form, "password"),
                                       request.app.state.hash_gate)
    except auth.Busy:
        await throttle.refund("login", key, s.login_window)
        if not known:
            await throttle.refund("login-account", account, s.login_window)
        context["error"] = "现在登录的人太多，请几秒后再试。"
        return render(request, "staff/login.html", context, status_code=429)
    if user is None:
        context["error"] = "用户名或密码不正确。"
        return render(request, "staff/login.html", context, status_code=422)
    await throttle.reset("login", key, s.login_window)
    if not known:
        await throttle.refund("login-account", account, s.login_window)
    await auth.end_session(request.cookies.get(STAFF_COOKIE))
    token = await auth.start_session(user, now_utc())
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        STAFF_COOKIE, token, httponly=True, samesite="lax", secure=s.secure_cookies, path="/",
        max_age=s.session_max_hours * 3600,
    )
    response.set_cookie(
        DEVICE_COOKIE, tokens.device_mark(s.secret_key, user.username), httponly=True,
        samesite="strict", secure=s.secure_cookies, path="/staff/login", max_age=180 * 86400,
    )
    return response


async def logout(request: Request) -> Response:
    await staff_form(request)
    await auth.end_session(request.cookies.get(STAFF_COOKIE))
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(STAFF_COOKIE, path="/")
    return response


# ---- queue ----------------------------------------------------------------------------------

async def queue(request: Request) -> Response:
    session = await require_staff(request)
    user = session.user
    p = request.query_params
    s = settings_of(request)
    scope = await depot.scope_of(user)
    units = list(scope.units)
    shown_unit: Unit | None = None
    code = p.get("w", "").strip()
    if code:
        # Another workshop's queue is "not found", like its cases.
        shown_unit = await depot.unit_by_code(code)
        if shown_unit is None or not scope.has(shown_unit.id):
            raise HTTPException(404)
        units = [shown_unit.id]
    qs = Case.filter(unit_id__in=units)
    if user.role == "handler":
        qs = qs.filter(assignee_id=user.id)
    base_qs = qs
    filters: dict[str, Any] = {
        "status": p.get("status", ""),
        "category": parse_id(p.get("category")),
        "team": parse_id(p.get("team")),
        "assignee": parse_id(p.get("assignee")),
        "overdue": p.get("overdue") == "1",
        "q": p.get("q", "").strip()[:100],
        "sort": "supports" if p.get("sort") == "supports" else "",
    }
    if filters["category"]:
        qs = qs.filter(category_id=filters["category"])
    if filters["team"]:
        qs = qs.filter(team_id=filters["team"])
    if filters["assignee"] and user.role != "handler":
        qs = qs.filter(assignee_id=filters["assignee"])
    if filters["overdue"]:
        qs = qs.filter(deadline__lt=today(request), status__in=list(OPEN_STATUSES))
    if filters["q"]:
        qs = qs.filter(body__icontains=filters["q"])
    clock = await queue_clock.read(units)
    counts = await _counts(request, qs, units, user, filters, clock)
    if filters["status"] in STATUS_LABELS:
        qs = qs.filter(status=filters["status"])
    elif filters["status"] == "open":
        qs = qs.filter(status__in=list(OPEN_STATUSES))
    rows, next_after, next_page = await _page_of(qs, filters["sort"], p, s.page_size)
    tree = await tree_of(request).get()
    # The urgent block and the late promises, like the counts, are kept while the units'
    # clocks stand still (every change to one of their cases moves them); the list is read.
    kept = _kept(request)
    who = user.id if user.role == "handler" else 0
    urgent_ids = tuple(c.id for c in tree.all_categories if c.urgent)  # an admin may mark one
    urgent = await kept.get(("urgent", tuple(sorted(units)), who, filters["status"], urgent_ids),
                            clock, lambda: _urgent_first(base_qs, filters["status"], tree))
    handlers = await StaffUser.filter(active=True, unit_id__in=units)
    await _attach([*urgent, *rows], tree, handlers)
    now = now_utc()
    hours = {c.id: urgency.hours_left(c, c.category, now) for c in [*urgent, *rows]}
    query = {k: ("1" if v is True else v) for k, v in filters.items() if v}
    if shown_unit is not None:
        query["w"] = shown_unit.code
    overdue: list[Case] = await kept.get(
        ("late", tuple(sorted(units)), today(request)), clock,
        lambda: followthrough.overdue_promises(today(request), units))
    late = [c for c in overdue
            if user.role != "handler" or c.assignee_id == user.id]  # type: ignore[attr-defined]
    return render(request, "staff/queue.html", {
        "late_promises": late, "late_promise_ids": {c.id for c in late},
        "units": tree.units_named(scope.units), "shown_unit": shown_unit, "depot": scope.depot,
        "me": user, "csrf": session.csrf, "rows": rows, "counts": counts,
        "total": sum(counts.values()), "filters": filters, "query": query,
        "next_after": next_after, "next_page": next_page, "today": today(request),
        # The filter lists from the per-process copy of the tree (depot.TreeCache): a category
        # or team added in another worker shows here within depot.TREE_SECONDS.
        "categories": tree.categories_of(units),
        "teams": tree.teams_of(units),
        "handlers": handlers,
        "open_statuses": OPEN_STATUSES,
        "urgent": urgent, "hours": hours,
    })


async def _attach(rows: list[Case], tree: Any, handlers: list[StaffUser]) -> None:
    """Each row's category, team and assignee, without a join per row: the category and team
    from the tree's copy, the assignee from the handler list the page shows anyway (one more
    query only for assignees not on it: retired, or of another unit)."""
    categories, teams = tree.category_by_id(), tree.team_by_id()
    people = {u.id: u for u in handlers}
    missing = {c.assignee_id for c in rows  # type: ignore[attr-defined]
               if c.assignee_id is not None and c.assignee_id not in people}  # type: ignore[attr-defined]
    if missing:
        people.update({u.id: u for u in await StaffUser.filter(id__in=list(missing))})
    for c in rows:
        category = categories.get(c.category_id)  # type: ignore[attr-defined]
        if category is None:  # created in another worker within TREE_SECONDS
            category = await Category.get(id=c.category_id)  # type: ignore[attr-defined]
        c.category = category
        team_id = c.team_id  # type: ignore[attr-defined]
        c.team = None if team_id is None else (
            teams.get(team_id) or await Team.get(id=team_id))
        assignee_id = c.assignee_id  # type: ignore[attr-defined]
        c.assignee = None if assignee_id is None else people.get(assignee_id)


URGENT_SHOWN = 50
CLOCK_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # before any case's clock


async def _urgent_first(qs: Any, status: str, tree: Any) -> list[Case]:
    """Open cases of urgent categories (安全隐患), shown above the list with the hours left:
    the ones due soonest first. Not on lists of closed, rejected or merged cases."""
    urgent = [c.id for c in tree.all_categories if c.urgent]
    if status not in ("", "open", *OPEN_STATUSES) or not urgent:
        return []
    if status in OPEN_STATUSES:
        qs = qs.filter(status=status)
    # clock_at >= CLOCK_EPOCH, not "NOT clock_at IS NULL" (what Tortoise writes for isnull):
    # SQLite uses only a range as a bound on the (unit_id, clock_at) index (110 ms → 0.1 ms on
    # 100,000 cases of one unit).
    rows = await qs.filter(status__in=list(OPEN_STATUSES), clock_at__gte=CLOCK_EPOCH,
                           category_id__in=urgent).order_by("clock_at", "id").limit(URGENT_SHOWN)
    categories = tree.category_by_id()
    now = now_utc()
    return sorted(rows, key=lambda c: urgency.hours_left(
        c, categories[c.category_id], now) or 0)
COUNTS_MAX_ENTRIES = 512


class ClockKept:
    """Lists read from some units' cases, kept per process while those units' change clocks
    (queue_clock.py) stand still."""

    def __init__(self, max_entries: int = COUNTS_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[Any, Any]] = {}

    async def get(self, key: Any, clock: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        found = self._entries.get(key)
        if found is not None and found[0] == clock:
            return found[1]
        value = await compute()
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (clock, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


def _kept(request: Request) -> ClockKept:
    kept: ClockKept | None = getattr(request.app.state, "queue_kept", None)
    if kept is None:
        kept = request.app.state.queue_kept = ClockKept()
    return kept


async def _counts(request: Request, qs: Any, units: list[int], user: StaffUser,
                  filters: dict[str, Any], clock: Any) -> dict[str, int]:
    """The queue's counts by status: kept per process for these units and filters while the
    units' change clocks stand still (queue_clock.py: every event of one of their cases moves
    them, in every worker), so a queue opened again costs one small query, not a count over
    all the units' cases."""
    key = (tuple(sorted(units)), user.id if user.role == "handler" else 0,
           tuple((k, v) for k, v in filters.items() if k not in ("status", "sort")),
           today(request) if filters["overdue"] else None)
    cache: dict[Any, tuple[Any, dict[str, int]]] | None = getattr(
        request.app.state, "queue_counts", None)
    if cache is None:
        cache = request.app.state.queue_counts = {}
    found = cache.get(key)
    if found is not None and found[0] == clock:
        return dict(found[1])
    # COUNT(status), not COUNT(id): answered from the status index alone (30× faster on SQLite).
    counts_rows = await qs.annotate(n=Count("status")).group_by("status").values("status", "n")
    counts = {row["status"]: row["n"] for row in counts_rows}
    if len(cache) >= COUNTS_MAX_ENTRIES:
        cache.clear()
    cache[key] = (clock, dict(counts))
    return counts


async def _page_of(qs: Any, sort: str, p: Any, size: int) -> tuple[list[Case], str, int | None]:
    """One page of the queue: (rows, the keyset for the next page, or the next page number)."""
    if sort == "supports":
        # Most 我也遇到 first; paged by offset (a short list: the few items on the board).
        page = min(parse_id(p.get("page")) or 1, 10_000)
        rows = await qs.order_by("-supports", "-received_on", "-id").offset(
            (page - 1) * size).limit(size + 1)
        return rows[:size], "", page + 1 if len(rows) > size else None
    # Keyset paging on (received_on, id), both indexed: fast at any depth. Within a day the
    # order is by random id, so it does not reveal the order of submissions.
    after = p.get("after", "")
    if after:
        try:
            day_s, id_s = after.split("_", 1)
            day, last_id = date.fromisoformat(day_s), uuid.UUID(id_s)
        except ValueError as exc:
            raise HTTPException(400) from exc
        qs = qs.filter(Q(received_on__lt=day) | Q(received_on=day, id__lt=last_id))
    rows = await qs.order_by("-received_on", "-id").limit(size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return rows, f"{rows[-1].received_on.isoformat()}_{rows[-1].id}" if more else "", None


# ---- case page ------------------------------------------------------------------------------

async def _case_for(request: Request, user: StaffUser) -> Case:
    try:
        case_id = uuid.UUID(request.path_params["case_id"])
    except ValueError as exc:
        raise HTTPException(404) from exc
    case = await Case.get_or_none(id=case_id).select_related(
        "category", "team", "assignee", "merged_into", "unit", "workshop")
    # Another unit's case, and for a handler anyone else's, is "not found", not "forbidden".
    if case is None or not cases.may_see(user, case) or (
            user.role == "handler" and case.assignee_id != user.id):  # type: ignore[attr-defined]
        raise HTTPException(404)
    return case


async def _case_context(request: Request, case: Case, session: Any) -> dict[str, Any]:
    user = session.user
    s = settings_of(request)
    return {
        "me": user, "csrf": session.csrf, "case": case,
        "events": await cases.timeline(case, public_only=False, tz=s.tz),
        "duplicates": await Case.filter(merged_into_id=case.id),
        "actions": cases.allowed_actions(case, user),
        "rules": RULES,
        # Who may take it: the unit's own staff, and for a workshop's case the depot's leaders.
        "handlers": await StaffUser.filter(
            Q(unit_id=case.unit_id) | Q(unit_id=None, role__in=["leader", "admin"]  # type: ignore[attr-defined]
                                        ) if not cases.is_desk_case(case)
            else Q(unit_id=case.unit_id),  # type: ignore[attr-defined]
            active=True, role__in=["handler", "leader", "admin"]),
        "desk_case": cases.is_desk_case(case),
        "today": today(request),
        "hours_left": urgency.hours_left(case, case.category, now_utc()),
        "can_close_unrated": cases.can_close_unrated(case, now_utc(), s.rating_window_days),
        "can_publish": user.role in LEADERS and not cases.is_desk_case(case)
        and Status(case.status) in cases.RULES["publish"].sources,
        "source": await Source.get_or_none(id=case.source_id),  # type: ignore[attr-defined]
        # Open cases of the same unit most like this one (merge in one step), while it is open.
        "similar": await similar.similar_cases(
            case.body, unit_ids=[case.unit_id], top=5,  # type: ignore[attr-defined]
            include_published=False, exclude=[case.id], limit=SIMILAR_LIMIT)
        if case.status in OPEN_STATUSES and user.role != "handler" else [],
        "photos": await Photo.filter(case_id=case.id).only("id", "event_id", "published"),
        "promise_overdue": followthrough.promise_overdue(case, today(request)),
        "adoption_labels": followthrough.ADOPTION_LABELS,
        "reward_units": followthrough.REWARD_UNITS,
        "reward_states": followthrough.REWARD_STATES,
    }


async def case_page(request: Request) -> Response:
    session = await require_staff(request)
    case = await _case_for(request, session.user)
    return render(request, "staff/case.html", await _case_context(request, case, session))


async def case_action(request: Request) -> Response:
    session, form = await staff_form(request)
    case = await _case_for(request, session.user)
    s = settings_of(request)
    action = field(form, "action")
    try:
        deadline_s = field(form, "deadline")
        try:
            deadline = date.fromisoformat(deadline_s) if deadline_s else None
        except ValueError as exc:
            raise DomainError("办理期限的日期格式不对。", field="deadline") from exc
        body = field(form, "body")
        if body.strip():
            body = cases.clean_text(body, minimum=1, maximum=s.text_max * 2, label="内容")
        follow = _followthrough_fields(form)
        await cases.apply(
            case.id, action, session.user, now=now_utc(), tz=s.tz, body=body,
            assignee_id=parse_id(field(form, "assignee")), deadline=deadline,
            merge_into=field(form, "merge_into"), summary=field(form, "summary"),
            show_reply=field(form, "show_reply") == "1",
            photo_ids=tuple(v for v in form.getlist("photo") if isinstance(v, str)),
            rating_window_days=s.rating_window_days, **follow,
        )
    except DomainError as e:
        context = await _case_context(request, case, session)
        context.update(error=e.message, form=dict(form), failed_action=action,
                       chosen_photos=[v for v in form.getlist("photo") if isinstance(v, str)])
        return render(request, "staff/case.html", context, status_code=422)
    if session.user.role == "handler" and action in ("return", "transfer"):
        return RedirectResponse("/staff/cases", status_code=303)
    return RedirectResponse(f"/staff/cases/{case.id}", status_code=303)


async def carry_out(request: Request) -> Response:
    """落实, with optional photos of the result (multipart; the case page's 落实 form)."""
    from .public import _photos_of, _take_files

    s = settings_of(request)
    session, form = await staff_form(request, max_files=10)
    case = await _case_for(request, session.user)
    files = await _take_files(form)
    try:
        cleaned, photo_error = await _photos_of(files, s)
        if photo_error:
            raise DomainError(photo_error, field="photos")
        body = field(form, "body")
        if body.strip():
            body = cases.clean_text(body, minimum=1, maximum=s.text_max * 2, label="内容")
        async with in_transaction():
            event = await cases.apply(case.id, "carry_out", session.user, now=now_utc(),
                                      tz=s.tz, body=body, benefit=field(form, "benefit") or None)
            await cases.attach_photos(case.id, event.id, cleaned)
    except DomainError as e:
        context = await _case_context(request, case, session)
        context.update(error=e.message, form={k: v for k, v in form.items()
                                              if isinstance(v, str)},
                       failed_action="carry_out",
                       photo_errors={"photos": e.message} if e.field == "photos" else {})
        return render(request, "staff/case.html", context, status_code=422)
    return RedirectResponse(f"/staff/cases/{case.id}", status_code=303)


def _followthrough_fields(form: Any) -> dict[str, Any]:
    """承诺完成日期, 效益 and the reward's amount and unit (issue 18), parsed; checked in cases."""
    out: dict[str, Any] = {}
    raw = field(form, "promised_on").strip()
    if raw:
        try:
            out["promised_on"] = date.fromisoformat(raw)
        except ValueError as exc:
            raise DomainError("承诺完成日期的格式不对。", field="promised_on") from exc
    out["benefit"] = field(form, "benefit") or None
    raw = field(form, "reward_amount").strip()
    if raw:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
            raise DomainError("奖励数额请填整数。", field="reward_amount")
        out["reward_amount"] = int(raw)
    out["reward_unit"] = field(form, "reward_unit") or None
    return out


async def photo(request: Request) -> Response:
    """A case's photo for staff who may see the case: the photo or (``?thumb=1``) its
    thumbnail; never cached, a fixed content type, nosniff (SecurityMiddleware)."""
    session = await require_staff(request)
    user = session.user
    try:
        photo_id = uuid.UUID(request.path_params["photo_id"])
    except ValueError as exc:
        raise HTTPException(404) from exc
    found = await Photo.get_or_none(id=photo_id).select_related("case")
    if found is None or not cases.may_see(user, found.case) or (
            user.role == "handler" and found.case.assignee_id != user.id):  # type: ignore[attr-defined]
        raise HTTPException(404)
    data = found.thumb if request.query_params.get("thumb") == "1" else found.data
    return photo_response(data)


# ---- own account ----------------------------------------------------------------------------

async def account_page(request: Request) -> Response:
    session = await require_staff(request)
    return render(request, "staff/account.html", {"me": session.user, "csrf": session.csrf})


async def account(request: Request) -> Response:
    session, form = await staff_form(request)
    user = session.user
    context: dict[str, Any] = {"me": user, "csrf": session.csrf}
    s = settings_of(request)
    throttle, key = throttle_of(request), "user:" + user.username
    # Same budget as the login form: a stolen session cannot guess the password either.
    taken = await throttle.take("login-account", key, s.login_account_fail_limit, s.login_window)
    if not taken.ok:
        context["error"] = f"密码错误次数太多，请 {taken.wait} 秒后再试。"
        return render(request, "staff/account.html", context, status_code=429)
    try:
        checked = await auth.authenticate(user.username, field(form, "current"),
                                          request.app.state.hash_gate)
    except auth.Busy:
        await throttle.refund("login-account", key, s.login_window)
        context["error"] = "现在登录的人太多，请几秒后再试。"
        return render(request, "staff/account.html", context, status_code=429)
    if checked is None:
        context["error"] = "当前密码不正确。"
        return render(request, "staff/account.html", context, status_code=422)
    await throttle.refund("login-account", key, s.login_window)
    if field(form, "password") != field(form, "password2"):
        context["error"] = "两次输入的新密码不一致。"
        return render(request, "staff/account.html", context, status_code=422)
    try:
        await auth.set_password(user, field(form, "password"))
    except DomainError as e:
        context["error"] = e.message
        return render(request, "staff/account.html", context, status_code=422)
    # All sessions, this one included, have ended: sign in again with the new password.
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(STAFF_COOKIE, path="/")
    return response


async def staff_home(request: Request) -> Response:
    return RedirectResponse("/staff/cases", status_code=303)


routes = [
    Route("/staff", staff_home, methods=["GET"]),
    Route("/staff/login", login_page, methods=["GET"]),
    Route("/staff/login", login, methods=["POST"]),
    Route("/staff/logout", logout, methods=["POST"]),
    Route("/staff/cases", queue, methods=["GET"]),
    Route("/staff/cases/{case_id:str}", case_page, methods=["GET"]),
    Route("/staff/cases/{case_id:str}/act", case_action, methods=["POST"]),
    Route("/staff/cases/{case_id:str}/carry_out", carry_out, methods=["POST"]),
    Route("/staff/photos/{photo_id:str}", photo, methods=["GET"]),
    Route("/staff/account", account_page, methods=["GET"]),
    Route("/staff/account", account, methods=["POST"]),
]

"""The public board (公示栏): published cases with their public summary, never the original text.

The board is the most-read page, so its queries are few and fixed: one for the page of cases
(with their category joined), one for the replies of those cases (a single IN query), one count
for paging, and the categories for the filter. The rendered page is kept for a short time per
app, keyed by the normalized filters and a cheap "board version" (count and latest publish/close
time of the published cases). The version is asked again at most every ``VERSION_SECONDS``
per workshop and process, and at once after any change to a case made in this process
(``queue_clock.local_ticks``): a publish, an unpublish or a close shows at once in the worker
that made it and within a second in the others; a board opened again in between sends no query.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from tortoise.functions import Count, Max, Sum

from .. import cases, compression, depot, followthrough, org, queue_clock, supports
from ..cases import DomainError
from ..models import Case, Category, Event, Photo, Unit
from ..templating import render
from .common import (
    parse_id,
    photo_response,
    read_form,
    settings_of,
    submit_allowed,
    today,
    tree_of,
)

PAGE_SIZE = 20
CACHE_SECONDS = 30.0
VERSION_SECONDS = 1.0  # how stale another worker's board may be


def _clock() -> float:
    return time.monotonic()
CACHE_MAX_ENTRIES = 256
BOARD_STATUSES = list(cases.BOARD_STATUSES)
SUPPORTED_COOKIE = "sb_supported"
SUPPORTED_MAX = 200  # item keys one browser remembers
SUPPORT_NOTICES = {"1": "已记下“我也遇到”，谢谢。",
                   "again": "您已经按过“我也遇到”了，同一条只计一次。",
                   "busy": "按得太频繁了，请过几分钟再试。"}


# ---- queries (no HTTP) ----------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    category: int | None = None
    month: date | None = None  # first day of the month received
    page: int = 1

    @property
    def month_value(self) -> str:
        return self.month.strftime("%Y-%m") if self.month else ""

    def query(self, page: int | None = None) -> str:
        """The query string for these filters (``page`` overrides), for links."""
        parts = []
        if self.category:
            parts.append(f"category={self.category}")
        if self.month:
            parts.append(f"month={self.month_value}")
        if (page or self.page) > 1:
            parts.append(f"page={page or self.page}")
        return "?" + "&".join(parts) if parts else ""


def parse_filters(params: Any) -> Filters:
    """Lenient: a malformed filter is ignored rather than refused."""
    category = params.get("category", "")
    month = params.get("month", "").strip()
    page = params.get("page", "")
    first: date | None = None
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", month)
    if m and 2000 <= int(m.group(1)) <= 9998 and 1 <= int(m.group(2)) <= 12:
        first = date(int(m.group(1)), int(m.group(2)), 1)
    return Filters(
        category=parse_id(category),
        month=first,
        page=min(parse_id(page) or 1, 100_000),
    )


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def published_cases(workshop_id: int | None = None) -> Any:
    """Published cases, of one workshop's board when ``workshop_id`` is given (a case addressed
    to a depot desk is never published)."""
    qs = Case.filter(published=True, status__in=BOARD_STATUSES)
    return qs if workshop_id is None else qs.filter(unit_id=workshop_id)


@dataclass
class BoardItem:
    case: Case
    reply: str | None  # the latest reply, when the leader chose to show it
    # 整改进度 and 落实 notes (issue 18), oldest first, shown with the reply: (day, label, text).
    progress: list[tuple[Any, str, str]] = field(default_factory=list)

    @property
    def badge(self) -> str:
        return followthrough.board_badge(self.case)


async def _with_replies(rows: list[Case]) -> list[BoardItem]:
    """Attach the latest reply to each case that shows it: one IN query for the whole page."""
    wanted = [c.id for c in rows if c.show_reply]
    latest: dict[str, tuple[int, str]] = {}
    if wanted:
        replies = await Event.filter(case_id__in=wanted, action="reply", public=True).values(
            "case_id", "seq", "body")
        for r in replies:
            key = str(r["case_id"])
            if key not in latest or r["seq"] > latest[key][0]:
                latest[key] = (r["seq"], r["body"] or "")
    notes: dict[str, list[tuple[Any, str, str]]] = {}
    if wanted:
        for e in await Event.filter(case_id__in=wanted, action__in=list(PROGRESS_LABELS),
                                    public=True).order_by("seq"):
            notes.setdefault(str(e.case_id), []).append(  # type: ignore[attr-defined]
                (e.at, PROGRESS_LABELS[e.action], e.body or ""))
    return [BoardItem(c, latest[str(c.id)][1] if str(c.id) in latest else None,
                      notes.get(str(c.id), [])) for c in rows]


PROGRESS_LABELS = {"promise": "承诺", "progress": "整改进度", "carry_out": "已落实"}


@dataclass
class BoardPage:
    items: list[BoardItem]
    total: int
    pages: int
    filters: Filters


async def board_page(filters: Filters, page_size: int = PAGE_SIZE,
                     workshop_id: int | None = None) -> BoardPage:
    qs = published_cases(workshop_id)
    if filters.category:
        qs = qs.filter(category_id=filters.category)
    if filters.month:
        qs = qs.filter(received_on__gte=filters.month, received_on__lt=_next_month(filters.month))
    total = await qs.count()
    pages = max(1, -(-total // page_size))
    rows = await qs.order_by("-answered_at", "-id").offset(
        (filters.page - 1) * page_size).limit(page_size).select_related("category")
    return BoardPage(await _with_replies(list(rows)), total, pages, filters)


async def board_item(case_id: uuid.UUID) -> BoardItem | None:
    case = await published_cases().filter(id=case_id).select_related("category").first()
    if case is None:
        return None
    return (await _with_replies([case]))[0]


async def board_version(workshop_id: int | None = None) -> tuple[Any, ...]:
    """Changes whenever what the board shows changes through publish, unpublish, reopen, close,
    an answer to a 征集意见 item or a 我也遇到 press."""
    row = await published_cases(workshop_id).annotate(
        n=Count("id"), p=Max("published_at"), c=Max("closed_at"), a=Max("answered_at"),
        s=Sum("supports"), o=Max("carried_out_at"), w=Max("promised_on"),
    ).first().values("n", "p", "c", "a", "s", "o", "w")
    # 落实 and promises (issue 18) change it too; a review decision or a progress note reaches
    # the list within CACHE_SECONDS (the item page is never cached).
    return (row["n"], str(row["p"]), str(row["c"]), str(row["a"]), row["s"], str(row["o"]),
            str(row["w"])) if row else (0, "", "", "", 0, "", "")


# ---- the page cache -------------------------------------------------------------------------

class PageCache:
    """Rendered board pages for a few seconds; each entry also remembers the board version."""

    def __init__(self, seconds: float = CACHE_SECONDS, max_entries: int = CACHE_MAX_ENTRIES):
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, tuple[Any, ...], bytes, bytes | None]] = {}
        # workshop id → (asked again after, local ticks then, version)
        self._versions: dict[int, tuple[float, int, tuple[Any, ...]]] = {}

    def get(self, key: str, version: tuple[Any, ...]) -> tuple[bytes, bytes | None] | None:
        """The page and its gzip form (None when too small to be worth it)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < _clock() or entry[1] != version:
            return None
        return entry[2], entry[3]

    def put(self, key: str, version: tuple[Any, ...], body: bytes) -> tuple[bytes, bytes | None]:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        # Compressed once here rather than by the middleware on every request (issue 19).
        gz = (gzip.compress(body, compresslevel=compression.LEVEL, mtime=0)
              if len(body) >= compression.MINIMUM_SIZE else None)
        self._entries[key] = (_clock() + self.seconds, version, body, gz)
        return body, gz

    def clear(self) -> None:
        self._entries.clear()
        self._versions.clear()

    async def version(self, workshop_id: int) -> tuple[Any, ...]:
        """The board version of a workshop, asked at most every ``VERSION_SECONDS`` while this
        process changed no case."""
        now = _clock()
        known = self._versions.get(workshop_id)
        if known is not None and known[0] > now and known[1] == queue_clock.local_ticks:
            return known[2]
        ticks = queue_clock.local_ticks
        version = await board_version(workshop_id)
        self._versions[workshop_id] = (now + VERSION_SECONDS, ticks, version)
        return version


def cache_of(request: Request) -> PageCache:
    cache: PageCache | None = getattr(request.app.state, "board_cache", None)
    if cache is None:
        cache = request.app.state.board_cache = PageCache()
    return cache


# ---- views ----------------------------------------------------------------------------------

async def board(request: Request) -> Response:
    """A workshop's board: ``/w/<code>/board``, or ``/board`` while there is one workshop
    (with several, ``/board`` lists the workshops' boards)."""
    code = request.path_params.get("workshop")
    tree = await tree_of(request).get()
    if code is None:
        workshop = tree.single_workshop()
        if workshop is None:
            return render(request, "choose.html", {"workshops": await depot.workshops(),
                                                   "org": await org.get_org()})
    else:
        workshop = tree.by_code(code, depot.WORKSHOP)
        if workshop is None or not workshop.active:
            raise HTTPException(404, "没有这个车间的公示栏。")
    filters = parse_filters(request.query_params)
    cache = cache_of(request)
    base = request.url.path
    key = base + filters.query()
    version = await cache.version(workshop.id)
    kept = cache.get(key, version)
    if kept is None:
        page = await board_page(filters, PAGE_SIZE, workshop.id)
        if filters.page > page.pages:
            raise HTTPException(404, "没有这一页。")
        response = render(request, "board.html", {
            "page": page, "filters": filters, "base": base, "workshop": workshop,
            "in_tree": code is not None,
            "categories": await Category.filter(depot.categories_for(workshop)),
        })
        kept = cache.put(key, version, bytes(response.body))
    body, gz = kept
    if gz is not None and "gzip" in request.headers.get("accept-encoding", ""):
        # Already compressed: the middleware passes a response with Content-Encoding through.
        return HTMLResponse(gz, headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return HTMLResponse(body)


async def board_item_page(request: Request) -> Response:
    try:
        case_id = uuid.UUID(request.path_params["case_id"])
    except ValueError as exc:
        raise HTTPException(404) from exc
    item = await board_item(case_id)
    if item is None:
        raise HTTPException(404, "公示栏里没有这一条（可能已撤下）。")
    shown = await Photo.filter(case_id=case_id, published=True).values_list("id", flat=True)
    unit = await Unit.get(id=item.case.unit_id)  # type: ignore[attr-defined]
    single = (await tree_of(request).get()).single_workshop()
    back = "/board" if single is not None else f"/w/{unit.code}/board"
    notice = SUPPORT_NOTICES.get(request.query_params.get("supported", ""))
    return render(request, "board_item.html", {"item": item, "photo_ids": shown, "back": back,
                                               "notice": notice})


# ---- 我也遇到 ----------------------------------------------------------------------------------

def _supported_keys(request: Request) -> list[str]:
    """The items this browser pressed 我也遇到 on (a signed cookie kept on the device only)."""
    raw = request.cookies.get(SUPPORTED_COOKIE, "")
    keys, _, sig = raw.rpartition("|")
    if not keys or not hmac.compare_digest(sig, _sign(request, keys)):
        return []
    return keys.split(".")


def _sign(request: Request, payload: str) -> str:
    secret = settings_of(request).secret_key.encode()
    return hmac.new(secret, b"supported:" + payload.encode(), hashlib.sha256).hexdigest()[:32]


async def support(request: Request) -> Response:
    """我也遇到: one press per browser per item; the address throttle of submissions."""
    try:
        case_id = uuid.UUID(request.path_params["case_id"])
    except ValueError as exc:
        raise HTTPException(404) from exc
    await read_form(request)  # refuses bad bytes like every form
    keys = _supported_keys(request)
    key = case_id.hex[:16]
    back = f"/board/{case_id}"
    if key in keys:
        return RedirectResponse(back + "?supported=again", status_code=303)
    if await board_item(case_id) is None:
        raise HTTPException(404, "公示栏里没有这一条（可能已撤下）。")
    if not await submit_allowed(request):
        return RedirectResponse(back + "?supported=busy", status_code=303)
    try:
        await supports.press(case_id, today(request))
    except DomainError as exc:
        raise HTTPException(404, exc.message) from exc
    keys = [*keys, key][-SUPPORTED_MAX:]
    payload = ".".join(keys)
    response = RedirectResponse(back + "?supported=1", status_code=303)
    response.set_cookie(SUPPORTED_COOKIE, f"{payload}|{_sign(request, payload)}",
                        max_age=365 * 86400, path="/board", httponly=True, samesite="strict",
                        secure=settings_of(request).secure_cookies)
    return response


async def board_photo(request: Request) -> Response:
    """A photo the publishing leader chose, while its case is on the board."""
    try:
        photo_id = uuid.UUID(request.path_params["photo_id"])
    except ValueError as exc:
        raise HTTPException(404) from exc
    found = await Photo.get_or_none(id=photo_id, published=True, case__published=True)
    if found is None:
        raise HTTPException(404)
    return photo_response(found.data)


routes = [
    Route("/board", board, methods=["GET"]),
    Route("/w/{workshop:str}/board", board, methods=["GET"]),
    Route("/board/photos/{photo_id:str}", board_photo, methods=["GET"]),
    Route("/board/{case_id:str}", board_item_page, methods=["GET"]),
    Route("/board/{case_id:str}/support", support, methods=["POST"]),
]

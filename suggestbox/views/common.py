"""Small helpers shared by the views: settings, clock, forms, the client key, staff access."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from .. import edge
from ..auth import load_session
from ..cases import local_today
from ..depot import TreeCache
from ..models import StaffSession, StaffUser
from ..settings import Settings
from ..throttle import Throttle

STAFF_COOKIE = "sb_staff"


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def throttle_of(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle


def tree_of(request: Request) -> TreeCache:
    """The app's cached copy of the depot's units (workshops, desks) for public pages."""
    cache: TreeCache | None = getattr(request.app.state, "tree_cache", None)
    if cache is None:
        cache = request.app.state.tree_cache = TreeCache()
    return cache


def now_utc() -> datetime:
    return datetime.now(UTC)


def today(request: Request) -> date:
    return local_today(settings_of(request).tz)


async def client_key(request: Request) -> str:
    """The only use of the client's address: a daily-rotating HMAC for throttling (§1.5)."""
    address = request.client.host if request.client else "unknown"
    return await throttle_of(request).client_key(address)


class _InMemoryParser(MultiPartParser):
    """Multipart parsing that never spools an upload to a temporary file (DESIGN.md §1.8: the
    original photo never reaches the disk), and decodes text fields strictly as UTF-8."""

    spool_max_size = 1 << 62

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            data = bytes(part.data)
            if b"\x00" in data or "\x00" in part.field_name:
                raise MultiPartException("NUL")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MultiPartException("encoding") from exc
            self.items.append((part.field_name, text))
        else:
            super().on_part_end()


async def read_photo_form(request: Request, max_files: int) -> FormData:
    """Like ``read_form``, but a multipart body with up to ``max_files`` uploads is accepted
    (the body limit for these routes is set in SecurityMiddleware)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        return await read_form(request)
    try:
        parser = _InMemoryParser(request.headers, request.stream(), max_files=max_files,
                                 max_fields=50, max_part_size=256 * 1024)
        return await parser.parse()
    except HTTPException:
        raise
    except MultiPartException as exc:
        if "Too many files" in str(exc):
            raise HTTPException(400, "照片太多了，请返回上一页少选几张。") from exc
        if str(exc) in ("NUL", "encoding"):  # the same edge rule as urlencoded forms
            raise HTTPException(400, edge.MESSAGE) from exc
        raise HTTPException(400, "表单格式有误，请返回重试。") from exc
    except Exception as exc:
        raise HTTPException(400, "表单格式有误，请返回重试。") from exc


def photo_response(data: bytes) -> Response:
    """A stored photo: a fixed content type, never cached (nosniff comes from the middleware)."""
    return Response(data, media_type="image/jpeg", headers={
        "cache-control": "no-store", "content-disposition": "inline"})


def uploads(form: FormData, name: str) -> list[UploadFile]:
    """The files a person actually chose (an empty file input still sends an empty part)."""
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and (f.filename or f.size)]


async def submit_allowed(request: Request) -> bool:
    """Take a submission slot: per address first, then a global budget for heavy senders only.

    The first ``submit_free`` submissions of an address in a window never touch the global
    budget, so a flood from many addresses exhausts only its own share: once the budget is gone
    the flooding addresses are held to ``submit_free`` each, and everyone else submits as usual.
    """
    s = settings_of(request)
    throttle = throttle_of(request)
    mine = await throttle.take("submit", await client_key(request), s.submit_limit,
                               s.submit_window)
    if not mine.ok:
        return False
    if mine.count <= s.submit_free:
        return True
    return await throttle.hit("submit-heavy", "all", s.submit_global_limit, s.submit_window)


async def lookup_allowed(request: Request) -> bool:
    """Take a receipt look-up slot before the look-up; ``lookup_found`` gives it back."""
    s = settings_of(request)
    return await throttle_of(request).hit("track-miss", await client_key(request),
                                          s.track_miss_limit, s.track_window)


async def lookup_found(request: Request) -> None:
    s = settings_of(request)
    await throttle_of(request).refund("track-miss", await client_key(request), s.track_window)


async def followup_allowed(request: Request) -> bool:
    s = settings_of(request)
    return await throttle_of(request).hit("followup", await client_key(request),
                                          s.followup_limit, s.followup_window)


async def read_form(request: Request) -> FormData:
    """Parse a form; malformed bodies become a 400, oversize ones a 413 (from the body limit).

    Our pages only send ``application/x-www-form-urlencoded``, in which a browser percent-encodes
    every non-ASCII byte. Starlette would decode stray raw bytes (and undecodable multipart
    fields) as Latin-1, storing mojibake, so anything else is refused here; so are NUL and
    percent-encoded invalid UTF-8 in any field (``edge.clean``: a 400 on every form, nothing
    stored; PostgreSQL would fail on NUL with a 500).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not await request.body():
        return FormData()  # an empty form (a button alone); its checks then refuse or pass it
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(415, "表单格式有误，请用本站的页面提交。")
    if not (await request.body()).isascii():
        raise HTTPException(400, "表单包含无法识别的字符编码，请用本站的页面重新提交。")
    if not edge.clean(await request.body()):
        raise HTTPException(400, edge.MESSAGE)
    try:
        return await request.form(max_files=0, max_fields=50, max_part_size=256 * 1024)
    except HTTPException:
        raise
    except Exception as exc:  # multipart parse errors and the like
        raise HTTPException(400, "表单格式有误，请返回重试。") from exc


def parse_id(value: str | None) -> int | None:
    """A database id from user input: ASCII digits within the integer columns' range, else None.

    (``str.isdigit`` accepts "²"; ``int()`` accepts "１２"; the driver fails beyond 2**31.)
    """
    if not value or len(value) > 10 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number < 2**31 else None


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


class LoginRequired(HTTPException):
    def __init__(self, next_path: str) -> None:
        location = "/staff/login?" + urlencode({"next": next_path})
        super().__init__(303, headers={"Location": location})


async def staff_session(request: Request) -> StaffSession | None:
    if "staff_session" in request.scope:
        cached: StaffSession | None = request.scope["staff_session"]
        return cached
    s = settings_of(request)
    session = await load_session(
        request.cookies.get(STAFF_COOKIE),
        now_utc(),
        idle=timedelta(minutes=s.session_idle_minutes),
        absolute=timedelta(hours=s.session_max_hours),
    )
    request.scope["staff_session"] = session
    return session


async def require_staff(request: Request, *roles: str) -> StaffSession:
    """The signed-in staff session, or a redirect to login (anonymous) / 403 (wrong role)."""
    session = await staff_session(request)
    if session is None:
        path = request.url.path if request.method == "GET" else "/staff/cases"
        raise LoginRequired(path)
    if roles and session.user.role not in roles:
        raise HTTPException(403)
    return session


def user_of(session: StaffSession) -> StaffUser:
    return session.user


async def staff_form(request: Request, *roles: str, max_files: int = 0
                     ) -> tuple[StaffSession, FormData]:
    """For every staff POST: the session (with role check), the form, and its CSRF token.
    ``max_files``: a multipart form with up to that many photos (read in memory)."""
    from ..tokens import csrf_ok

    session = await require_staff(request, *roles)
    form = await (read_photo_form(request, max_files) if max_files else read_form(request))
    if not csrf_ok(session.csrf, field(form, "csrf")):
        raise HTTPException(403, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。")
    return session, form

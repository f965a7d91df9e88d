"""Application factory: routes, middleware, error pages and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

from . import edge
from .auth import HashGate
from .cases import local_today, purge_used_tokens
from .compression import Compression
from .logging_config import ErrorDigest
from .settings import Settings, tortoise_config
from .templating import make_templates, render
from .throttle import make_throttle

log = logging.getLogger("suggestbox")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
CACHE_STATIC = "public, max-age=86400"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# The only routes that take multipart bodies with photos (and so a larger body limit).
PHOTO_ROUTES = frozenset({"/", "/track/followup", "/staff/cases/new"})
WORKSHOP_BOX = re.compile(r"^/w/[^/]{1,64}/$")  # a workshop's box takes photos like "/"
CARRY_OUT = re.compile(r"^/staff/cases/[0-9a-fA-F-]{36}/carry_out$")  # 落实 with a photo


def photo_route(path: str) -> bool:
    return (path in PHOTO_ROUTES or WORKSHOP_BOX.match(path) is not None
            or CARRY_OUT.match(path) is not None)
PHOTO_413 = ("照片太大了。请返回上一页（您写的文字还在），去掉或换一张小一点的照片再提交。")

ERROR_MESSAGES = {
    400: "请求有误，请返回重试。",
    403: "您没有权限访问这个页面，或表单已过期。请返回、刷新后重试。",
    404: "找不到这个页面。",
    405: "不支持这种访问方式。",
    413: "提交的内容太大了。请精简后再提交。",
    415: "表单格式有误，请用本站的页面提交。",
    422: "提交的内容有误。",
    429: "操作太频繁，请稍后再试。",
    500: "服务器出了点问题，请稍后再试。",
}


class SecurityMiddleware:
    """Security headers on every response; same-origin check on every unsafe request; the
    request body limit (413, with a Chinese page).

    The origin check follows the Sec-Fetch-Site / Origin approach: a browser tells us where a
    form was posted from; a cross-site POST is refused before any handler runs. Forms also carry
    tokens (one-time tokens on public forms, a session-bound token on staff forms).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not edge.clean(scope.get("query_string", b"")) or not edge.clean(
                scope.get("raw_path") or scope["path"].encode("utf-8", "replace")):
            # NUL or invalid UTF-8 in the path or a query parameter: refused for every route.
            await self._with_headers(_plain_page(400, edge.MESSAGE), scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and not self._same_origin(scope):
            await self._with_headers(_plain_page(403, "跨站请求被拒绝。"), scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        if scope["method"] == "POST" and photo_route(scope["path"]) and dict(
                scope["headers"]).get(b"content-type", b"").startswith(b"multipart/form-data"):
            limit = self.settings.photo_body_bytes
        if self._declared_length(scope) > limit:
            # Refuse before reading; a body without a length is cut off below.
            message = PHOTO_413 if limit != self.settings.max_body_bytes else ERROR_MESSAGES[413]
            await self._with_headers(_plain_page(413, message), scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            # Bodies sent without a length are cut off here; the view's error page says why.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413)
            return message

        await self._with_headers(self.app, scope, limited_receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    def _same_origin(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        site = headers.get(b"sec-fetch-site")
        if site is not None:
            return site in (b"same-origin", b"none")
        origin = headers.get(b"origin")
        if origin is None:
            return True  # not a browser, or an old one: the forms' tokens still apply
        allowed = {f"{scope.get('scheme', 'http')}://".encode() + headers.get(b"host", b"")}
        if self.settings.base_url:
            allowed.add(self.settings.base_url.encode())
        return origin in allowed

    async def _with_headers(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        static = scope["path"].startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append(
                        (b"cache-control", b"public, max-age=86400" if static else b"no-store")
                    )
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_wrapper)


def _plain_page(code: int, message: str) -> Response:
    body = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>出错了</title>'
        f'<link rel="stylesheet" href="/static/style.css"><main><p class="alert">{message}</p>'
        '<p><a href="/">返回首页</a></p></main></html>'
    )
    return HTMLResponse(body, status_code=code)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = exc.status_code
    if code in (301, 302, 303, 307, 308):
        return Response(status_code=code, headers=exc.headers)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail and any(
        "\u4e00" <= ch <= "\u9fff" for ch in exc.detail
    ) else ERROR_MESSAGES.get(code, "请求有误。")
    return render(request, "error.html", {"code": code, "message": message}, status_code=code)


def _is_staff_path(path: str) -> bool:
    return path.startswith(("/staff/", "/admin"))


async def client_gone(request: Request, exc: Exception) -> Response:
    # A client going away (a phone losing signal mid-upload, a body cut by the read timeout) is
    # not an error: nothing is logged, and nobody is left to read this answer.
    return Response(status_code=400)


async def server_error(request: Request, exc: Exception) -> Response:
    # The exception type and route only: never the request's body, headers or address. Errors
    # of staff pages are logged at once (staff are not anonymous); errors of public pages are
    # counted and reported later without their time (DESIGN.md §1.9).
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    if _is_staff_path(request.url.path):
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, path,
                  exc_info=exc)
    else:
        request.app.state.error_digest.add(request.method, path, type(exc).__name__)
    try:
        return render(request, "error.html", {"code": 500, "message": ERROR_MESSAGES[500]}, 500)
    except Exception:  # pragma: no cover - template failure must still give a page
        return PlainTextResponse(ERROR_MESSAGES[500], status_code=500)


class App(Starlette):
    """Starlette, except that an exception already answered with our 500 page (and logged or
    counted by ``server_error``) is not re-raised to the server: uvicorn would log it again
    with a traceback and the exact time of the request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except Exception:  # noqa: S110 - answered and recorded by server_error
            pass


async def healthz(request: Request) -> Response:
    """Database, and Redis when configured: 200 only when everything answers.

    Redis down: ``{"status": "degraded", "redis": "down", "throttle": "per-process"}`` (503);
    the service still takes submissions, throttled per process (throttle.py)."""
    body: dict[str, str] = {"status": "ok", "database": "ok"}
    code = 200
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:
        body.update(status="error", database="error")
        code = 503
    throttle = request.app.state.throttle
    if throttle.shared:
        if await throttle.ping():
            body["redis"] = "ok"
        else:
            body.update(redis="down", throttle="per-process")
            if code == 200:
                body["status"] = "degraded"
            code = 503
    return JSONResponse(body, status_code=code)


def create_app(settings: Settings | None = None) -> Starlette:
    from . import worker
    from .views import admin, board, channels, intake, posters, public, rewards, setup, staff
    from .views import reports as report_views
    from .views import year as year_views

    settings = (settings or Settings.from_env()).prepare()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with RegisterTortoise(
            app, config=tortoise_config(settings.database_url), generate_schemas=False
        ):
            await purge_used_tokens(local_today(settings.tz))
            # Notification delivery and deadline reminders (worker.py), if not run separately.
            notifier = asyncio.create_task(worker.run(settings)) \
                if settings.inline_worker else None
            digest = asyncio.create_task(_flush_errors(app.state.error_digest,
                                                       settings.error_digest_seconds))
            try:
                yield
            finally:
                for task in (notifier, digest):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                app.state.error_digest.flush()
                await app.state.throttle.close()

    routes = [
        *public.routes,
        *intake.routes,  # before staff: /staff/cases/new is not a case id
        *staff.routes,
        *year_views.routes,  # before the monthly ones: /staff/reports/{month} takes "2025"
        *rewards.routes,
        *report_views.routes,
        *admin.routes,
        *board.routes,
        *posters.routes,
        *channels.routes,
        *setup.routes,
        Mount("/static", app=StaticFiles(directory=str(settings.static_dir)), name="static"),
        Route("/healthz", healthz),
        # Browsers ask for it on pages that do not link one (posters, error pages).
        Route("/favicon.ico", lambda _: FileResponse(settings.static_dir / "favicon.ico",
                                                     headers={"cache-control": CACHE_STATIC})),
    ]
    app = App(
        routes=routes,
        middleware=[Middleware(Compression), Middleware(SecurityMiddleware, settings=settings)],
        exception_handlers={HTTPException: http_error, ClientDisconnect: client_gone,
                            Exception: server_error},
        lifespan=lifespan,
        # The body limit lives in SecurityMiddleware: Starlette's own max_body_size replaces any
        # 413 page with plain English text.
    )
    app.state.settings = settings
    app.state.templates = make_templates(settings)
    app.state.throttle = make_throttle(settings.redis_url)
    app.state.hash_gate = HashGate(settings.hash_concurrency, settings.hash_queue)
    app.state.error_digest = ErrorDigest()
    return app


async def _flush_errors(digest: ErrorDigest, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        digest.flush()

"""Templating: the Jinja environment and ``render``, shared by the app, the views and the
command line (posters, reports). Domain modules do not import this; views do.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .cases import RATINGS, STATUS_LABELS
from .settings import Settings

_BIDI_CONTROLS = {c: None for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _no_bidi(value: Any) -> Any:
    return value.translate(_BIDI_CONTROLS) if isinstance(value, str) else value


def make_templates(settings: Settings) -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(settings.templates_dir)),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
        # Every value shown loses bidi embeddings/overrides/isolates (U+202E and the like), also
        # in rows stored before clean_text removed them and in names typed by admins.
        finalize=_no_bidi,
        # Templates are files of the release: do not stat each one (and its base) on every
        # render, as Jinja's default does (2 % of GET / in the profile; issue 19).
        auto_reload=False,
    )
    tz = settings.tz

    def local(value: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.astimezone(tz).strftime(fmt)
        return value.strftime(fmt if "%H" not in fmt else "%Y-%m-%d")

    env.filters["local"] = local
    env.filters["status_label"] = lambda s: STATUS_LABELS.get(s, s)
    env.globals.update(STATUS_LABELS=STATUS_LABELS, RATINGS=RATINGS, settings=settings)
    return Jinja2Templates(env=env)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code)



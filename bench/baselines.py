"""ASGI apps the benchmark serves with uvicorn (``bench/run`` starts them; not used in production).

- ``plain``: a bare Starlette app answering a small plain-text page — the ceiling for any GET.
- ``insert``: a bare Starlette + Tortoise endpoint that inserts one row per POST — the ceiling for
  any write on the same database (``BENCH_DATABASE_URL``; the table is created by ``bench/run``).
- ``service``: the real suggestbox app (``create_app``) with the submission and look-up throttles
  lifted, because wrk sends everything from one address; everything else is as in production.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import date

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from tortoise import fields
from tortoise.contrib.starlette import RegisterTortoise
from tortoise.models import Model


class BenchItem(Model):
    id = fields.UUIDField(primary_key=True)
    body = fields.TextField()
    received_on = fields.DateField()

    class Meta:
        table = "bench_item"


async def hello(request: Request) -> Response:
    return PlainTextResponse("职工百宝箱 baseline\n")


async def insert_one(request: Request) -> Response:
    form = await request.form()
    body = form.get("body")
    await BenchItem.create(id=uuid.uuid4(), body=body if isinstance(body, str) else "",
                           received_on=date.today())
    return PlainTextResponse("ok\n", status_code=201)


@contextlib.asynccontextmanager
async def _orm(app: Starlette) -> AsyncIterator[None]:
    config = {
        "connections": {"default": os.environ.get("BENCH_DATABASE_URL", "sqlite://:memory:")},
        "apps": {"bench": {"models": ["bench.baselines"], "default_connection": "default"}},
        "use_tz": True,
    }
    async with RegisterTortoise(app, config=config, generate_schemas=False):
        yield


plain = Starlette(routes=[Route("/", hello)])
insert = Starlette(routes=[Route("/", insert_one, methods=["POST"])], lifespan=_orm)


def _service() -> Starlette:
    from suggestbox.app import create_app
    from suggestbox.settings import Settings

    lifted = 10**9
    # No inline notification worker: the seeds' deadlines passed without the escalation ladder
    # (no steps taken), so the worker would spend the run catching up a synthetic backlog —
    # thousands of escalate events, each moving the queue clocks the queue keeps its counts
    # by. In a live database those steps were taken when they fell due. The worker's own cost
    # is measured apart: bench/memory.py --tick.
    return create_app(Settings.from_env(
        submit_limit=lifted, submit_global_limit=lifted, track_miss_limit=lifted,
        inline_worker=False))


service = _service() if os.environ.get("BENCH_SERVICE") == "1" else None

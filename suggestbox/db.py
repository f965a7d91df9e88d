"""Database helpers for the command line: migrations and a short-lived ORM context."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tortoise import Tortoise
from tortoise.migrations.api import migrate as _migrate

from .settings import Settings, tortoise_config


async def migrate(database_url: str) -> None:
    """Apply every committed migration to the database."""
    try:
        await _migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def orm(settings: Settings) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        yield
    finally:
        await Tortoise.close_connections()

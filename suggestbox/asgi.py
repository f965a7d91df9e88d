"""Thin entry point for ASGI servers: ``uvicorn suggestbox.asgi:app``."""

from .app import create_app

app = create_app()

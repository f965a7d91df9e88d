"""The house: domain modules import nothing from the web layer (issue 13, item 11)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "suggestbox"
# The web layer (and suggestbox.views):
WEB = {"app", "asgi", "cli", "templating", "serving", "logging_config", "compression", "edge"}
# settings.py reads the environment with Starlette's Config (no HTTP); qr.py names jinja2's
# Environment in a type annotation only (the caller passes the environment in).
ALLOWED = {"settings": ("starlette.config",), "qr": ("jinja2",)}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found |= {f"{base}.{a.name}" if base.endswith(".") is False else base + a.name
                      for a in node.names}
    return found


def test_domain_modules_do_not_import_the_web_layer():
    domain = [p for p in PKG.glob("*.py") if p.stem not in WEB and p.stem != "__init__"]
    assert {p.stem for p in domain} >= {"cases", "reports", "qr", "notify", "org", "receipts"}
    bad = []
    for p in domain:
        for name in _imports(p):
            if name.startswith(ALLOWED.get(p.stem, ())):
                continue
            parts = name.lstrip(".").split(".")
            web_module = name.startswith(".") and parts[0] in WEB | {"views"}
            if web_module or parts[0] in ("starlette", "uvicorn", "jinja2"):
                bad.append(f"{p.name}: {name}")
    assert bad == []

"""Structured, anonymous logging (DESIGN.md §1.1).

Every log line is one JSON object: ``{"ts": ..., "level": ..., "logger": ..., "pid": ...,
"msg": ...}``. What never appears in a line:

- client addresses: uvicorn's access log stays off, and any IP address other than a loopback or
  wildcard bind address is replaced by ``[addr]`` before the line is written;
- exception messages: a database error's message can quote the values of a row (case text, a
  receipt hash), so an exception is logged as its type and its stack frames only;
- receipts and case text: the application never passes them to a logger.

``suggestbox serve`` hands :func:`log_config` to uvicorn as ``log_config``, so uvicorn's own
loggers and the app's ``suggestbox`` logger share the format, in every worker process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from typing import Any

# IPv4, and IPv6 in full (eight groups) or compressed ("::") form, so "12:30:45" stays intact.
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4}::(?:[0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4})"
    r"(?![0-9A-Za-z:])"
)
_KEEP = {"127.0.0.1", "0.0.0.0", "::1", "::"}  # noqa: S104 - bind addresses, not clients


def redact(text: str) -> str:
    """Replace client-looking IP addresses; keep loopback and wildcard bind addresses."""

    def sub(m: re.Match[str]) -> str:
        return m.group(0) if m.group(0) in _KEEP else "[addr]"

    return _IPV6.sub(sub, _IPV4.sub(sub, text))


def _frames(exc: BaseException) -> list[str]:
    tb = traceback.extract_tb(exc.__traceback__)
    return [f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in tb[-12:]]


class JsonFormatter(logging.Formatter):
    """One JSON object per line; IP addresses redacted; exceptions without their message."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": redact(message),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in line:
                    line[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["exc_type"] = type(exc).__name__
            line["exc_frames"] = _frames(exc)
        return json.dumps(line, ensure_ascii=False, default=str)


class RateLimitFilter(logging.Filter):
    """At most ``burst`` warnings or errors per ``per`` seconds for each message template; the
    next line let through says how many were dropped. A flood of bad requests must not turn into
    a flood of log (114 MB in 20 s once, from tracebacks of clients going away)."""

    def __init__(self, burst: int = 10, per: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.per = per
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            start, count, dropped = self._seen.get(key, (now, 0, 0))
            if now - start >= self.per:
                start, count = now, 0
            if count >= self.burst:
                self._seen[key] = (start, count, dropped + 1)
                return False
            self._seen[key] = (start, count + 1, 0)
            if len(self._seen) > 1000:
                self._seen = {key: self._seen[key]}
        if dropped:
            fields = dict(getattr(record, "fields", None) or {})
            fields["suppressed_similar"] = dropped
            record.fields = fields
        return True


class ErrorDigest:
    """Errors on public routes, counted and logged together once per period (DESIGN.md §1.9).

    A line written when a worker's ``POST /`` failed would date that worker's action to the
    second (in our ``ts`` and in journald's own timestamp), so public errors are only counted
    here; :meth:`flush` runs on a timer from the app's lifespan, unrelated to any request.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("suggestbox")
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, method: str, route: str, error: str) -> None:
        self.counts[(method, route, error)] += 1

    def flush(self) -> None:
        if not self.counts:
            return
        errors = [{"method": m, "route": r, "error": e, "count": n}
                  for (m, r, e), n in sorted(self.counts.items())]
        self.counts.clear()
        self.logger.error("unhandled errors on public pages since the last report",
                          extra={"fields": {"event": "public_errors", "errors": errors}})


def log_config(level: str = "info", access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary for uvicorn and the app.

    The access logger gets no handler unless ``access_log`` is true (``SUGGESTBOX_ACCESS_LOG``,
    which ``suggestbox check`` flags); even then its lines go through the same formatter, whose
    message for uvicorn's access records carries no client address (see ``AccessFilter``).
    """
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "access": {"()": "suggestbox.logging_config.AccessFilter"},
            "ratelimit": {"()": "suggestbox.logging_config.RateLimitFilter"},
        },
        "formatters": {"json": {"()": "suggestbox.logging_config.JsonFormatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["ratelimit"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["access"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {
                "handlers": ["access"] if access_log else [],
                "level": lvl if access_log else "CRITICAL",
                "propagate": False,
            },
            "suggestbox": {"handlers": ["default"], "level": lvl, "propagate": False},
            "tortoise": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
    }


class AccessFilter(logging.Filter):
    """Rewrite uvicorn access records to method, path (without query) and status only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            _client, method, path, _version, status = args
            record.msg = "%s %s %s"
            record.args = (method, str(path).split("?", 1)[0], status)
        return True

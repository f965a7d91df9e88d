"""``suggestbox check``: find deployment misconfigurations before they bite.

Each finding has a level (``serious`` makes the command exit non-zero, ``warning`` does not,
``info`` is advice) and a stable code that the docs and tests refer to. The check has no side
effects: it creates no data directory and no secret key, and writes nothing to the database.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .settings import Settings

SERIOUS, WARNING, INFO = "serious", "warning", "info"
LABELS = {SERIOUS: "严重", WARNING: "警告", INFO: "提示"}
MIN_SECRET_LENGTH = 32
# Values people paste from examples; .env.example ships "change-me-...".
PLACEHOLDER_SECRETS = ("change-me", "changeme", "change_me", "replace-me", "secret", "default",
                       "example", "password", "xxxxxxxx")
TRUTHY = {"1", "true", "yes", "on"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Finding:
    level: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{LABELS[self.level]} [{self.code}] {self.message}"


def _secret(settings: Settings) -> list[Finding]:
    key = settings.secret_key
    if not key:
        path = settings.data_dir / "secret_key"
        if path.is_file():
            if not settings.is_sqlite:
                return [Finding(WARNING, "secret-missing",
                                f"SUGGESTBOX_SECRET_KEY 未设置，使用 {path}。多台应用服务器时，"
                                "每台必须用同一个密钥：请设置 SUGGESTBOX_SECRET_KEY。")]
            return [Finding(INFO, "secret-file",
                            f"密钥保存在 {path}：请备份它（丢失后所有回执码都将失效）。")]
        return [Finding(WARNING, "secret-missing",
                        f"SUGGESTBOX_SECRET_KEY 未设置，首次启动时会生成到 {path}。"
                        "请设置一个固定的随机密钥（例如 python -c 'import secrets; "
                        "print(secrets.token_urlsafe(48))'），并备份。")]
    lowered = key.lower()
    if any(p in lowered for p in PLACEHOLDER_SECRETS) or len(set(key)) < 8:
        return [Finding(SERIOUS, "secret-default",
                        "SUGGESTBOX_SECRET_KEY 是示例值或默认值：请换成随机生成的密钥。")]
    if len(key) < MIN_SECRET_LENGTH:
        return [Finding(SERIOUS, "secret-short",
                        f"SUGGESTBOX_SECRET_KEY 只有 {len(key)} 个字符，至少需要 "
                        f"{MIN_SECRET_LENGTH} 个。")]
    return []


def _base_url(settings: Settings) -> list[Finding]:
    if not settings.base_url:
        return [Finding(WARNING, "base-url-missing",
                        "SUGGESTBOX_BASE_URL 未设置：二维码没有地址，登录 Cookie 不带 Secure。"
                        "请设为 https://… 的公开地址。")]
    parts = urlsplit(settings.base_url)
    if parts.scheme != "https" and (parts.hostname or "") not in LOCAL_HOSTS:
        return [Finding(SERIOUS, "base-url-http",
                        f"SUGGESTBOX_BASE_URL（{settings.base_url}）不是 https：回执码和登录"
                        "会明文传输。请在 nginx 配置 TLS，并使用 https:// 地址。")]
    return []


def _logging(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    if settings.access_log or env.get("UVICORN_ACCESS_LOG", "").lower() in TRUTHY:
        return [Finding(SERIOUS, "access-log",
                        "访问日志已打开（SUGGESTBOX_ACCESS_LOG / UVICORN_ACCESS_LOG）：它按秒记录"
                        "每个请求，会暴露提交时间。请关闭。")]
    return []


def _workers(settings: Settings) -> list[Finding]:
    found = []
    if settings.workers > 1 and settings.is_sqlite:
        found.append(Finding(SERIOUS, "sqlite-workers",
                             f"SQLite 只能用 1 个 worker（SUGGESTBOX_WORKERS={settings.workers}）："
                             "多个进程写同一个文件会出现 “database is locked”。"
                             "请改用 PostgreSQL。"))
    if settings.workers > 1 and not settings.redis_url:
        found.append(Finding(SERIOUS, "redis-missing",
                             f"{settings.workers} 个 worker 但没有 SUGGESTBOX_REDIS_URL：限流计数"
                             "留在各进程内存里，实际上限变成 worker 数倍。请配置 Redis。"))
    return found


def _proxy(env: Mapping[str, str]) -> list[Finding]:
    allow = env.get("SUGGESTBOX_FORWARDED_ALLOW_IPS", "127.0.0.1")
    if "*" in allow.split(","):
        return [Finding(WARNING, "forwarded-any",
                        "SUGGESTBOX_FORWARDED_ALLOW_IPS=*：任何客户端都能伪造 X-Forwarded-For，"
                        "从而绕过限流。请只写反向代理的地址。")]
    return []


def _timezone(settings: Settings) -> list[Finding]:
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [Finding(SERIOUS, "timezone", f"未知时区 SUGGESTBOX_TIMEZONE={settings.timezone}。")]
    return []


async def _reachable(settings: Settings) -> list[Finding]:
    found = []
    if settings.is_sqlite:
        path = settings.sqlite_path
        parent = path.parent if path is not None else None
        if parent is not None and parent.exists() and not os.access(parent, os.W_OK):
            found.append(Finding(SERIOUS, "database-unreachable",
                                 f"SQLite 目录 {parent} 不可写。"))
    else:
        import asyncpg

        url = settings.database_url.replace("postgres://", "postgresql://", 1)
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.close()
        except Exception as e:  # any failure to connect is the finding
            found.append(Finding(SERIOUS, "database-unreachable",
                                 f"连不上数据库（{type(e).__name__}）。"))
    if settings.redis_url:
        import redis.asyncio as redis

        client = redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            await client.ping()
        except Exception as e:
            found.append(Finding(SERIOUS, "redis-unreachable",
                                 f"连不上 Redis（{type(e).__name__}）：限流退回到各进程内存，"
                                 "实际上限变成 worker 数倍；/healthz 报 503。"))
        finally:
            await client.aclose()
    return found


def _notify_timing(settings: Settings) -> list[Finding]:
    if settings.notify_quiet_hours <= 0 and not settings.notify_digest:
        return [Finding(WARNING, "notify-immediate",
                        "SUGGESTBOX_NOTIFY_QUIET_HOURS=0 且未开启每日汇总："
                        "新案件一提交群里就收到通知，通知时间等于提交时间（DESIGN.md §1.7）。"
                        "建议设为 2 或更大。")]
    return []


def run_checks(settings: Settings, env: Mapping[str, str] | None = None) -> list[Finding]:
    env = os.environ if env is None else env
    findings = [
        *_secret(settings),
        *_base_url(settings),
        *_logging(settings, env),
        *_workers(settings),
        *_proxy(env),
        *_timezone(settings),
        *_notify_timing(settings),
    ]
    findings += asyncio.run(_reachable(settings))
    return findings


def main(settings: Settings) -> int:
    findings = run_checks(settings)
    for f in findings:
        print(f, file=sys.stderr if f.level == SERIOUS else sys.stdout)
    serious = sum(f.level == SERIOUS for f in findings)
    if serious:
        print(f"发现 {serious} 个严重问题。", file=sys.stderr)
        return 1
    print("检查通过。" if not findings else "没有严重问题。")
    return 0

"""The ``suggestbox`` command: serve, migrate, user, team."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence

from .settings import Settings


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码: ")
    if getpass.getpass("再输一次: ") != first:
        raise SystemExit("两次输入的密码不一致。")
    return first


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.workers > 1 and settings.is_sqlite:
        print(
            "错误：SQLite 只能用 1 个 worker（多个进程写同一个 SQLite 文件会出现 "
            "“database is locked”）。要用多个 worker，"
            "请设置 SUGGESTBOX_DATABASE_URL 为 PostgreSQL。",
            file=sys.stderr,
        )
        return 2
    if not args.no_migrate:
        asyncio.run(_migrate(settings))
    if not asyncio.run(_has_admin(settings)):
        print("提示：还没有管理员账号。创建一个：suggestbox user add admin --role admin")
    print(f"suggestbox serving on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        "suggestbox.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # DESIGN.md §1.1: the access log writes client addresses
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("SUGGESTBOX_FORWARDED_ALLOW_IPS", "127.0.0.1"),
        server_header=False,
        log_level=args.log_level,
    )
    return 0


async def _migrate(settings: Settings) -> None:
    from .db import migrate

    await migrate(settings.database_url)


async def _has_admin(settings: Settings) -> bool:
    from .db import orm
    from .models import StaffUser

    async with orm(settings):
        return await StaffUser.filter(role="admin", active=True).exists()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(_migrate(settings))
    print("数据库已迁移到最新版本。")
    return 0


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    from . import auth
    from .cases import DomainError
    from .db import orm
    from .models import StaffUser

    password = _password(args) if args.action in ("add", "passwd") else ""

    async def run() -> int:
        async with orm(settings):
            if args.action == "list":
                for u in await StaffUser.all():
                    print(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")
                return 0
            try:
                if args.action == "add":
                    await auth.add_user(args.name, args.role, password, args.display_name or "")
                    print(f"已添加 {args.name}（{args.role}）。")
                    return 0
                user = await StaffUser.get_or_none(username=args.name)
                if user is None:
                    print(f"没有用户 {args.name}。", file=sys.stderr)
                    return 1
                if args.action == "disable":
                    await auth.set_active(user, False)
                elif args.action == "enable":
                    await auth.set_active(user, True)
                else:
                    await auth.set_password(user, password)
                print("完成；该用户已有的登录均已失效。" if args.action != "enable" else "完成。")
                return 0
            except DomainError as e:
                print(e.message, file=sys.stderr)
                return 1

    return asyncio.run(run())


def cmd_team(args: argparse.Namespace, settings: Settings) -> int:
    from .db import orm
    from .models import Team

    async def run() -> int:
        async with orm(settings):
            if args.action == "add":
                await Team.create(code=args.code, name=args.name)
            for t in await Team.all():
                print(f"{t.code}\t{t.name}\t{'active' if t.active else 'inactive'}")
        return 0

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="suggestbox", description="职工百宝箱")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the web service")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=cmd_serve)
    m = sub.add_parser("migrate", help="apply database migrations")
    m.set_defaults(func=cmd_migrate)
    u = sub.add_parser("user", help="manage staff accounts")
    u.add_argument("action", choices=["add", "disable", "enable", "passwd", "list"])
    u.add_argument("name", nargs="?", default="")
    u.add_argument("--role", choices=["admin", "leader", "handler"], default="handler")
    u.add_argument("--display-name")
    u.add_argument("--password-stdin", action="store_true")
    u.set_defaults(func=cmd_user)
    t = sub.add_parser("team", help="manage teams / locations")
    t.add_argument("action", choices=["add", "list"])
    t.add_argument("code", nargs="?", default="")
    t.add_argument("name", nargs="?", default="")
    t.set_defaults(func=cmd_team)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "action", None) in ("add", "disable", "enable", "passwd") and not (
        getattr(args, "name", "") or getattr(args, "code", "")
    ):
        raise SystemExit("请给出名称。")
    code: int = args.func(args, Settings.from_env().prepare())
    return code


if __name__ == "__main__":
    sys.exit(main())

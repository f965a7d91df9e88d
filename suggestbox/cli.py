"""The ``suggestbox`` command: serve, migrate, user, team, similar, …"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .settings import Settings

if TYPE_CHECKING:
    from .models import Unit


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码: ")
    if getpass.getpass("再输一次: ") != first:
        raise SystemExit("两次输入的密码不一致。")
    return first


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .logging_config import log_config

    workers = args.workers or settings.workers
    if workers > 1 and settings.is_sqlite:
        print(
            "错误：SQLite 只能用 1 个 worker（多个进程写同一个 SQLite 文件会出现 "
            "“database is locked”）。要用多个 worker，"
            "请设置 SUGGESTBOX_DATABASE_URL 为 PostgreSQL。",
            file=sys.stderr,
        )
        return 2
    if not args.no_migrate:
        asyncio.run(_migrate(settings))
    setup_token = asyncio.run(_setup_token(settings))
    if setup_token:
        _print_setup(args.host, args.port, setup_token)
    _announce(args.host, args.port, settings)
    _log_start(args.log_level, settings, workers)
    uvicorn.run(
        "suggestbox.asgi:app",
        host=args.host,
        port=args.port,
        workers=workers,
        # DESIGN.md §1.1: the access log writes client addresses. Off unless SUGGESTBOX_ACCESS_LOG
        # (which `suggestbox check` flags); structured, address-free lines from log_config.
        access_log=settings.access_log,
        log_config=log_config(args.log_level, access_log=settings.access_log),
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("SUGGESTBOX_FORWARDED_ALLOW_IPS", "127.0.0.1"),
        server_header=False,
        log_level=args.log_level,
        # TCP_NODELAY on every connection: uvicorn loses it with several workers (serving.py).
        http="suggestbox.serving:NoDelayHTTPProtocol",
    )
    return 0


def _announce(host: str, port: int, settings: Settings, tty: bool | None = None) -> None:
    """Say where the service can be opened: on loopback, how to serve the local network; on
    another address, the URLs a phone can open and (in a terminal) a QR code of the box.
    Printed, not logged: these are this machine's addresses, never a client's."""
    from . import lan

    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    print(f"suggestbox serving on http://{shown}:{port}")
    if lan.is_loopback(host):
        print(f"只有这台电脑能打开：http://{shown}:{port}/\n"
              "要用手机试用（手机和这台电脑连同一个 Wi-Fi 或局域网），这样启动：\n"
              "  make run HOST=0.0.0.0        或  suggestbox serve --host 0.0.0.0", flush=True)
        return
    urls = lan.reachable_urls(host, port)
    if urls:
        print("同一局域网里的手机和电脑可以打开：")
        for url in urls:
            print(f"  {url}")
    else:
        print("没有找到本机的局域网地址：请检查网络连接。")
    base = settings.base_url
    target = f"{base}/" if base and not lan.is_loopback(urlsplit(base).hostname or "") else \
        (urls[0] if urls else "")
    if target and (sys.stdout.isatty() if tty is None else tty):
        print(f"用手机扫码打开意见箱（{target}）：")
        print(lan.terminal_qr(target))
    if urls:
        print(f"打不开时，请检查本机防火墙是否放行 TCP {port} 端口。正式使用请配置 HTTPS 和 "
              "SUGGESTBOX_BASE_URL（见 deploy/README.md）。")
    sys.stdout.flush()


def _log_start(level: str, settings: Settings, workers: int) -> None:
    import logging
    import logging.config

    from .logging_config import log_config

    logging.config.dictConfig(log_config(level, access_log=settings.access_log))
    logging.getLogger("suggestbox").info("starting", extra={"fields": {
        "event": "start", "workers": workers,
        "database": "sqlite" if settings.is_sqlite else "postgres",
        "throttle": "redis" if settings.redis_url else "memory",
    }})


async def _migrate(settings: Settings) -> None:
    from .db import migrate

    await migrate(settings.database_url)


async def _setup_token(settings: Settings) -> str | None:
    """A one-time first-admin link while no admin exists (Gitea/Jupyter style)."""
    from datetime import UTC, datetime

    from .db import orm
    from .org import new_setup_token

    async with orm(settings):
        return await new_setup_token(datetime.now(UTC))


def _self_command() -> str:
    """How to call this command again, as the user can paste it (it may not be on PATH)."""
    import shlex
    from pathlib import Path

    exe = Path(sys.argv[0])
    if exe.name == "suggestbox" and exe.exists():
        try:
            shown = str(exe.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            shown = str(exe)
        return shlex.quote(shown if "/" in shown else "./" + shown)
    return f"{shlex.quote(sys.executable)} -m suggestbox.cli"


def _print_setup(host: str, port: int, token: str) -> None:
    from .org import SETUP_HOURS

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    print("还没有管理员账号。在本机浏览器打开下面的链接创建第一个管理员"
          f"（{SETUP_HOURS} 小时内有效，只能用一次）：")
    print(f"  http://{shown_host}:{port}/setup/{token}")
    print(f"也可以用命令：{_self_command()} user add admin --role admin", flush=True)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(_migrate(settings))
    print("数据库已迁移到最新版本。")
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """``backup --out FILE`` and ``restore --in FILE``."""
    from .backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            print(backup(settings, args.out))
        else:
            print(restore(settings, args.in_file))
    except BackupError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from .check import main as check_main

    return check_main(settings)


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    from . import auth
    from .cases import DomainError
    from .db import orm
    from .models import StaffUser

    password = _password(args) if args.action in ("add", "passwd") else ""

    async def run() -> int:
        async with orm(settings):
            if args.action == "list":
                for u in await StaffUser.all().select_related("unit"):
                    where = u.unit.code if u.unit else "depot"
                    print(f"{u.username}\t{u.role}\t{where}\t"
                          f"{'active' if u.active else 'disabled'}")
                return 0
            try:
                if args.action == "add":
                    unit = await _unit_option(args.workshop)
                    await auth.add_user(args.name, args.role, password, args.display_name or "",
                                        unit=unit)
                    print(f"已添加 {args.name}（{args.role}，"
                          f"{unit.name if unit else '全段'}）。")
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
            except _NoSuchUnit:
                return 1

    return asyncio.run(run())


class _NoSuchUnit(Exception):
    """An option named a workshop or desk that does not exist (the message is printed)."""


async def _unit_option(code: str | None, kind: str | None = None) -> Unit | None:
    """The workshop or desk an option names; None when the option is not given."""
    from . import depot

    if not code:
        return None
    unit = await depot.unit_by_code(code, kind)
    if unit is None:
        what = "车间" if kind == depot.WORKSHOP else "车间或段级渠道"
        print(f"没有{what} {code}（suggestbox workshop list 可查看）。", file=sys.stderr)
        raise _NoSuchUnit
    return unit


def cmd_team(args: argparse.Namespace, settings: Settings) -> int:
    from . import depot
    from .cases import DomainError
    from .db import orm
    from .models import Team

    async def run() -> int:
        async with orm(settings):
            try:
                workshop = await _unit_option(args.workshop, depot.WORKSHOP)
            except _NoSuchUnit:
                return 1
            if args.action == "add":
                workshop = workshop or await depot.single_workshop()
                if workshop is None:
                    print("有多个车间：请用 --workshop 指明班组属于哪个车间。", file=sys.stderr)
                    return 2
                try:
                    await depot.add_team(args.code, args.name, workshop)
                except DomainError as e:
                    print(e.message, file=sys.stderr)
                    return 1
            teams = Team.all().select_related("workshop")
            for t in await (teams.filter(workshop_id=workshop.id) if workshop else teams):
                print(f"{t.code}\t{t.name}\t{t.workshop.code if t.workshop else ''}\t"
                      f"{'active' if t.active else 'inactive'}")
        return 0

    return asyncio.run(run())


def cmd_workshop(args: argparse.Namespace, settings: Settings) -> int:
    """``suggestbox workshop add CODE NAME [--desk]`` and ``suggestbox workshop list``."""
    from . import depot
    from .cases import DomainError
    from .db import orm
    from .models import Unit

    async def run() -> int:
        async with orm(settings):
            if args.action == "add":
                try:
                    await depot.add_unit(args.code, args.name,
                                         depot.DESK if args.desk else depot.WORKSHOP)
                except DomainError as e:
                    print(e.message, file=sys.stderr)
                    return 1
            for u in await Unit.all():
                print(f"{u.code}\t{u.name}\t{u.kind}\t{'active' if u.active else 'inactive'}")
        return 0

    return asyncio.run(run())


def cmd_org(args: argparse.Namespace, settings: Settings) -> int:
    from .cases import DomainError
    from .db import orm
    from .org import get_org, set_org

    async def run() -> int:
        async with orm(settings):
            current = await get_org()
            if args.action == "set":
                try:
                    current = await set_org(
                        current.name if args.name is None else args.name,
                        current.phone if args.phone is None else args.phone)
                except DomainError as e:
                    print(e.message, file=sys.stderr)
                    return 1
            print(f"单位名称：{current.name or '（未设置）'}")
            print(f"紧急情况电话：{current.phone or '（未设置）'}")
        return 0

    return asyncio.run(run())


def cmd_qr(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from .qr import run_cli
    from .templating import make_templates

    code, message = run_cli(settings, team=args.team, poster=args.poster, out=Path(args.out),
                            base_url=args.base_url, env=make_templates(settings).env,
                            workshop=args.workshop)
    print(message, file=sys.stderr if code else sys.stdout)
    return code


def cmd_slips(args: argparse.Namespace, settings: Settings) -> int:
    """``suggestbox slips --count N --out slips.html [--workshop CODE]``: paper slips with
    tear-off receipt stubs (A5, two per A4 sheet); the codes are stored only as hashes."""
    from pathlib import Path

    from . import depot, intake
    from .cases import DomainError, local_today
    from .db import orm
    from .templating import make_templates
    from .views.intake import render_slips

    async def run() -> int:
        async with orm(settings):
            workshop = (await depot.unit_by_code(args.workshop, depot.WORKSHOP)
                        if args.workshop else await depot.single_workshop())
            if workshop is None:
                print("请用 --workshop 指明车间（suggestbox workshop list 可查看）。",
                      file=sys.stderr)
                return 2
            try:
                codes = await intake.print_slips(settings.secret_key, workshop, args.count,
                                                 local_today(settings.tz),
                                                 settings.slip_expiry_days)
            except DomainError as e:
                print(e.message, file=sys.stderr)
                return 2
            css = (settings.static_dir / "style.css").read_text(encoding="utf-8")
            html = render_slips(make_templates(settings).env, codes,
                                args.base_url if args.base_url is not None else settings.base_url,
                                workshop.name, settings.slip_expiry_days, inline_css=css)
            await asyncio.to_thread(Path(args.out).write_text, html, encoding="utf-8")
            print(f"已写入 {args.out}：{len(codes)} 张纸条（{workshop.name}）。"
                  "打印后请不要留存这个文件。")
        return 0

    return asyncio.run(run())


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import logging.config

    from .logging_config import log_config
    from .worker import cli_remind, cli_worker

    # The same structured, address-free log lines as the web service.
    logging.config.dictConfig(log_config("info", access_log=False))
    return cli_remind(settings) if args.command == "remind" else cli_worker(settings, args.once)


def _looks_like_year(text: str) -> bool:
    """``suggestbox report 2025``: a year (年度总结) rather than a month."""
    return bool(text) and "-" not in text and len(text.strip()) <= 6


def _report_year(args: argparse.Namespace, settings: Settings) -> int:
    """``suggestbox report YYYY --format docx|html|json``: the year summary (年度总结)."""
    from .cases import local_today
    from .db import orm
    from .views.year import export_year
    from .year_report import parse_year

    try:
        year = parse_year(args.month)
    except ValueError as e:
        print(f"错误：{e}。", file=sys.stderr)
        return 2
    if year > local_today(settings.tz).year:
        print(f"错误：{year} 年还没有到。", file=sys.stderr)
        return 2
    if args.format not in ("docx", "html", "json"):
        print("错误：年度总结只有 docx、html 和 json 三种格式。", file=sys.stderr)
        return 2
    if args.format == "docx" and not args.out and sys.stdout.isatty():
        print("错误：Word 文档是二进制文件，请用 --out 指定文件名，例如 --out 年度总结.docx。",
              file=sys.stderr)
        return 2

    async def run() -> bytes:
        async with orm(settings):
            return await export_year(year, args.format, settings, workshop=args.workshop)

    return _write_report(run, args, f"{year} 年度总结")


def _write_report(run: Callable[[], Coroutine[Any, Any, bytes]], args: argparse.Namespace,
                  label: str) -> int:
    """Run an export and write it to ``--out`` (or stdout); 2 for an unknown unit."""
    try:
        data = asyncio.run(run())
    except LookupError:
        print(f"错误：没有代码为 {args.workshop} 的车间或段级渠道。", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "wb") as fh:
            fh.write(data)
        print(f"已写入 {args.out}（{label}）。")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from .cases import local_today
    from .db import orm
    from .months import Month
    from .views.reports import export

    if _looks_like_year(args.month):
        return _report_year(args, settings)
    if args.format == "docx":
        print("错误：Word 文档（docx）只用于年度总结，请给出年份，例如 2025。", file=sys.stderr)
        return 2
    try:
        month = Month.parse(args.month) if args.month else Month.last_complete(
            local_today(settings.tz))
    except ValueError as e:
        print(f"错误：{e}（例如 2026-03）。", file=sys.stderr)
        return 2

    async def run() -> bytes:
        async with orm(settings):
            return await export(month, args.format, settings, what=args.what,
                                workshop=args.workshop)

    return _write_report(run, args, str(month))


def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    """``suggestbox similar "TEXT" [--top N] [--json] [--workshop CODE]``: the open or published
    cases most similar to TEXT (for staff: the first 30 characters of each case's text)."""
    import json

    from .cases import STATUS_LABELS
    from .db import orm
    from .similar import similar_cases

    if args.top < 1:
        print("错误：--top 至少为 1。", file=sys.stderr)
        return 2

    async def run() -> int:
        async with orm(settings):
            try:
                unit = await _unit_option(args.workshop)
            except _NoSuchUnit:
                return 1
            unit_ids = [unit.id] if unit else None
            matches = await similar_cases(args.text, unit_ids=unit_ids, top=args.top)
        rows = [{"number": m.number, "status": m.case.status,
                 "status_label": STATUS_LABELS.get(m.case.status, m.case.status),
                 "published": m.case.published, "score": m.score,
                 "text": " ".join(m.text.split())[:30]} for m in matches]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        elif not rows:
            print("没有相似的待办或已公示事项。")
        else:
            for r in rows:
                print(f"{r['number']}\t{r['status']}\t{r['score']:.3f}\t{r['text']}")
        return 0

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="suggestbox", description="职工百宝箱")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the web service")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: SUGGESTBOX_WORKERS or 1)")
    s.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=cmd_serve)
    m = sub.add_parser("migrate", help="apply database migrations")
    m.set_defaults(func=cmd_migrate)
    b = sub.add_parser("backup", help="back up the database to a file (service may keep running)")
    b.add_argument("--out", required=True, help="backup file to write")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore a backup into an empty database")
    r.add_argument("--in", dest="in_file", required=True, help="backup file to read")
    r.set_defaults(func=cmd_backup)
    c = sub.add_parser("check", help="check the deployment settings; non-zero exit if serious")
    c.set_defaults(func=cmd_check)
    u = sub.add_parser("user", help="manage staff accounts")
    u.add_argument("action", choices=["add", "disable", "enable", "passwd", "list"])
    u.add_argument("name", nargs="?", default="")
    u.add_argument("--role", choices=["admin", "leader", "handler"], default="handler")
    u.add_argument("--display-name")
    u.add_argument("--password-stdin", action="store_true")
    u.add_argument("--workshop", help="workshop or desk code (none: a depot role)")
    u.set_defaults(func=cmd_user)
    t = sub.add_parser("team", help="manage teams / locations")
    t.add_argument("action", choices=["add", "list"])
    t.add_argument("code", nargs="?", default="")
    t.add_argument("name", nargs="?", default="")
    t.add_argument("--workshop", help="workshop code (optional with a single workshop)")
    t.set_defaults(func=cmd_team)

    ws = sub.add_parser("workshop", help="the depot's workshops (车间) and desks (段工会, 纪检)")
    ws.add_argument("action", choices=["add", "list"])
    ws.add_argument("code", nargs="?", default="")
    ws.add_argument("name", nargs="?", default="")
    ws.add_argument("--desk", action="store_true",
                    help="a depot desk workers may address a case to instead of the workshop")
    ws.set_defaults(func=cmd_workshop)

    o = sub.add_parser("org", help="organisation settings: unit name, emergency telephone line")
    o.add_argument("action", choices=["set", "show"])
    o.add_argument("--name", help="unit name, e.g. ××供电段××车间 (empty string clears it)")
    o.add_argument("--phone", help="emergency line shown on the submit page and posters")
    o.set_defaults(func=cmd_org)
    q = sub.add_parser("qr", help="QR code (.svg/.png) or printable A4 posters (.html)")
    q.add_argument("--team", help="team code (default: the whole box)")
    q.add_argument("--workshop", help="workshop code (default: the first workshop)")
    q.add_argument("--poster", action="store_true",
                   help="A4 poster page; without --team: the box and every active team")
    q.add_argument("--out", required=True, help="FILE.svg, FILE.png, or FILE.html with --poster")
    q.add_argument("--base-url", help="public URL (default: SUGGESTBOX_BASE_URL)")
    q.set_defaults(func=cmd_qr)
    sl = sub.add_parser("slips", help="paper slips with tear-off receipt stubs (A5, 2 per A4)")
    sl.add_argument("--count", type=int, required=True)
    sl.add_argument("--out", required=True, help="FILE.html to print")
    sl.add_argument("--workshop", help="workshop code (optional with a single workshop)")
    sl.add_argument("--base-url", help="public URL for the /track address on the stub")
    sl.set_defaults(func=cmd_slips)

    w = sub.add_parser("worker", help="deliver notifications and send deadline reminders "
                       "(a service; or set SUGGESTBOX_INLINE_WORKER=1 in the app)")
    w.add_argument("--once", action="store_true", help="one round, then exit")
    w.set_defaults(func=cmd_worker)
    rm = sub.add_parser("remind", help="one round of reminders and delivery (systemd timer, cron)")
    rm.set_defaults(func=cmd_worker)
    rp = sub.add_parser("report", help="monthly summary (月度汇总) as html, csv, json or xlsx; "
                        "with a year (YYYY), the year summary (年度总结) as docx, html or json")
    rp.add_argument("month", nargs="?", default="",
                    help="YYYY-MM (default: last complete month), or YYYY for the year summary")
    rp.add_argument("--format", choices=["html", "csv", "json", "xlsx", "docx"], default="html")
    rp.add_argument("--what", choices=["figures", "cases"], default="figures",
                    help="for csv: the figures, or the list of answered cases")
    rp.add_argument("--workshop", metavar="CODE", default=None,
                    help="one workshop's (or desk's) report; default: the depot report when "
                         "there are several workshops, the workshop's report when there is one")
    rp.add_argument("--out", help="write to this file instead of standard output")
    rp.set_defaults(func=cmd_report)
    si = sub.add_parser("similar", help="open or published cases most similar to a text")
    si.add_argument("text", help="the text to compare, e.g. 澡堂没热水")
    si.add_argument("--top", type=int, default=5, help="how many cases (default 5)")
    si.add_argument("--json", action="store_true", help="JSON instead of tab-separated lines")
    si.add_argument("--workshop", help="workshop or desk code (default: every unit)")
    si.set_defaults(func=cmd_similar)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "action", None) in ("add", "disable", "enable", "passwd") and not (
        getattr(args, "name", "") or getattr(args, "code", "")
    ):
        raise SystemExit("请给出名称。")
    settings = Settings.from_env()
    # `check` reports the configuration as it is: no data directory or secret created.
    code: int = args.func(args, settings if args.command == "check" else settings.prepare())
    return code


if __name__ == "__main__":
    sys.exit(main())

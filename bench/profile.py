#!/usr/bin/env python3
"""Where the time of each page goes: py-spy samples a suggestbox worker under wrk (issue 19).

    bench/profile.py [--seconds 8] [--cases 100000] [--pages get,post,board,queue,report]
                     [--database sqlite|postgres] [--top 15]

Starts `bench.baselines:service` with one uvicorn worker (as bench/run does), seeds cases, drives
one page at a time with wrk and records the worker with ``py-spy record --format raw`` (py-spy
0.4.3, the ``bench`` extra; it needs ptrace, so run it as root or with
``kernel.yama.ptrace_scope=0``). Prints, per page, the requests per second during the recording
and the top frames: by own time (the function on top of the stack) and by inclusive time (the
function anywhere on the stack), as percentages of the samples. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
if VENV_PY.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
sys.path.insert(0, str(ROOT))


import importlib.machinery  # noqa: E402
import importlib.util  # noqa: E402

from bench import seed  # noqa: E402

_loader = importlib.machinery.SourceFileLoader("bench_run", str(ROOT / "bench" / "run"))
_spec = importlib.util.spec_from_loader("bench_run", _loader)
assert _spec is not None
run = importlib.util.module_from_spec(_spec)
_loader.exec_module(run)
PASSWORD, PG_URL, SECRET, Server, cli = run.PASSWORD, run.PG_URL, run.SECRET, run.Server, run.cli
issue_tokens, last_month, pg_admin, staff_cookie, wrk = (
    run.issue_tokens, run.last_month, run.pg_admin, run.staff_cookie, run.wrk)

PY_SPY = Path(sys.executable).parent / "py-spy"
# Leaf frames of a thread that waits: not work.
IDLE = {"EpollSelector.select", "_connection_worker_thread", "Condition.wait", "Event.wait"}
FRAME = re.compile(r"^(.*) \((.*):(\d+)\)$")


def _frame(raw: str) -> str:
    """``func (path:line)`` → ``func (file)``: lines differ per call site, the function not."""
    m = FRAME.match(raw)
    if not m:
        return raw
    path = m.group(2)
    for marker in ("site-packages/", "/suggestbox/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/suggestbox/":
                path = "suggestbox/" + path
            break
    return f"{m.group(1)} ({path})"


def top_frames(raw: Path, top: int) -> list[str]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, n_s = line.rpartition(" ")
        if not stack or not n_s.isdigit():
            continue
        n = int(n_s)
        frames = [_frame(f) for f in stack.split(";")[1:]]  # [0] is the thread
        if not frames:
            continue
        total += n
        if frames[-1].split(" (")[0] in IDLE:
            idle += n
            continue
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples, {100 * idle / total:.0f} % idle (the event loop waiting in "
             "select, the SQLite thread waiting for work)", "own time:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive (suggestbox's own functions and templates, Tortoise's executor):")
    shown = [(f, n) for f, n in incl.most_common() if "suggestbox/" in f or ".html)" in f
             or f.startswith(("BaseExecutor", "QuerySet", "Model.", "Jinja2Templates"))]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in shown[:top]]
    return lines


def record(srv: Server, seconds: int, url: str, out: Path, **wrk_kw: object) -> float:
    pid = srv.worker_pids()[0]
    spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds),
                            "--rate", "250", "--format", "raw", "--output", str(out),
                            "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = wrk(url, seconds, **wrk_kw)  # type: ignore[arg-type]
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode:
        raise RuntimeError(f"py-spy failed: {err.decode()[-500:]}")
    return float(result["rps"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pages", default="get,post,board,queue,report")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--keep", type=Path, help="also copy the raw py-spy stacks into this folder")
    opts = ap.parse_args()
    pages = opts.pages.split(",")
    pg_db = f"sb_prof_{secrets.token_hex(4)}"
    db_url = PG_URL.rsplit("/", 1)[0] + "/" + pg_db if opts.database == "postgres" else ""
    if db_url:
        asyncio.run(pg_admin(f'CREATE DATABASE "{pg_db}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="sb-prof-") as tmp_s:
            tmp = Path(tmp_s)
            env = {"SUGGESTBOX_DATA_DIR": str(tmp / "data"), "SUGGESTBOX_SECRET_KEY": SECRET,
                   "BENCH_SERVICE": "1", **({"SUGGESTBOX_DATABASE_URL": db_url} if db_url else {})}
            cli(env, "migrate")
            cli(env, "user", "add", "bench", "--role", "leader", "--password-stdin",
                stdin=PASSWORD + "\n")
            if db_url:
                asyncio.run(seed.seed_postgres(db_url, opts.cases))
            else:
                seed.seed_sqlite(str(tmp / "data" / "suggestbox.sqlite3"), opts.cases)
            srv = Server("bench.baselines:service", 1, env, tmp / "service.log")
            try:
                srv.warm_up("/")
                cookie = staff_cookie(srv.url)
                tokens = tmp / "tokens.txt"
                issue_tokens(max(20000, opts.seconds * 4000), tokens)
                runs = {
                    "get": ("GET /", "/", {}),
                    "post": ("POST / (submission)", "/",
                             {"script": "post_submit.lua", "args": [str(tokens), "2"]}),
                    "board": ("GET /board", "/board", {"connections": 16}),
                    "queue": ("staff queue", "/staff/cases",
                              {"connections": 4, "headers": [cookie], "timeout": "30s"}),
                    "report": (f"monthly report {last_month()}", f"/staff/reports/{last_month()}",
                               {"connections": 2, "headers": [cookie], "timeout": "120s"}),
                }
                for key in pages:
                    what, path, kw = runs[key]
                    if key in ("queue", "report"):
                        srv.warm_up(path, headers=[cookie])
                    else:
                        srv.warm_up(path)
                    out = tmp / f"{key}.txt"
                    rps = record(srv, opts.seconds, srv.url + path, out, **kw)
                    print(f"\n### {what} ({opts.database}, {opts.cases:,} cases, 1 worker): "
                          f"{rps:,.1f} req/s while sampled")
                    print("\n".join(top_frames(out, opts.top)), flush=True)
                    if opts.keep:
                        opts.keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(out, opts.keep / f"{opts.database}-{key}.txt")
                print(f"\npeak RSS of the worker: {srv.peak_rss_mib()[0]:.0f} MiB")
            finally:
                srv.stop()
    finally:
        if db_url:
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""/healthz latency while 60 wrong logins from one address arrive at once (issue 12).

    .venv/bin/python bench/login_burst.py [--root DIR] [--workers 1] [--database URL]

Starts `suggestbox serve` from --root (default: this checkout; give an exported older tree to
compare), adds a leader, fires the burst while probing /healthz sequentially, and prints the
answers' status codes and the probe's p50/p99. Loopback only, about 10 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

PASSWORD = "correct-horse-9"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--database", default="")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="login-burst-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SUGGESTBOX_DATA_DIR": str(tmp), "PYTHONPATH": args.root,
           "SUGGESTBOX_SECRET_KEY": "bench-" + "x" * 30, "SUGGESTBOX_INLINE_WORKER": "false",
           **({"SUGGESTBOX_DATABASE_URL": args.database} if args.database else {})}
    cmd = [sys.executable, "-m", "suggestbox.cli"]
    subprocess.run([*cmd, "migrate"], env=env, cwd=args.root, check=True, capture_output=True)
    subprocess.run([*cmd, "user", "add", "leader1", "--role", "leader", "--password-stdin"],
                   env=env, cwd=args.root, input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True)
    proc = subprocess.Popen([*cmd, "serve", "--port", str(port), "--workers",
                             str(args.workers)], env=env, cwd=args.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        latencies: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            with httpx.Client(timeout=30) as c:
                while not stop.is_set() or len(latencies) < 50:
                    t = time.perf_counter()
                    c.get(url + "/healthz")
                    latencies.append(time.perf_counter() - t)
                    time.sleep(0.005)

        async def burst() -> Counter[int]:
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=60)) \
                    as c:
                rs = await asyncio.gather(*[
                    c.post(url + "/staff/login", headers={"X-Forwarded-For": "10.9.9.9"},
                           data={"username": "leader1", "password": f"wrong-{i}"})
                    for i in range(60)])
            return Counter(r.status_code for r in rs)

        t = threading.Thread(target=probe)
        t.start()
        started = time.perf_counter()
        codes = asyncio.run(burst())
        took = time.perf_counter() - started
        stop.set()
        t.join()
        latencies.sort()
        p99 = latencies[math.ceil(len(latencies) * 0.99) - 1]  # nearest rank
        with httpx.Client(timeout=30) as c:
            leader = c.post(url + "/staff/login", headers={"X-Forwarded-For": "10.9.9.10"},
                            data={"username": "leader1", "password": PASSWORD}).status_code
        print(f"burst answers {dict(codes)} in {took:.2f} s; healthz n={len(latencies)} "
              f"p50={latencies[len(latencies) // 2] * 1000:.1f} ms p99={p99 * 1000:.1f} ms "
              f"max={latencies[-1] * 1000:.1f} ms; leader from another address: {leader}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()

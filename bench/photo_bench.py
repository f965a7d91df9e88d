"""Submissions with one 4 MB phone photo: req/s, latency and peak RSS (issue 15).

Starts suggestbox (throttles lifted, as in bench/run) on SQLite with one worker, then N clients
each do what a phone does: GET / for a form token, POST the form with a 4 MB JPEG. Prints the
figures; it asserts nothing about speed.

    .venv/bin/python bench/photo_bench.py [--seconds 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="token" value="([^"]+)"')


def photo_4mb() -> bytes:
    """Camera-like noise compresses badly: about 4 MB at 2400 × 1800, quality 92."""
    rnd = os.urandom(2400 * 1800 * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (2400, 1800), rnd).save(out, "JPEG", quality=92)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    opts = ap.parse_args()
    data = photo_4mb()
    with tempfile.TemporaryDirectory(prefix="sb-photo-") as tmp:
        port = free_port()
        env = {**os.environ, "BENCH_SERVICE": "1", "SUGGESTBOX_DATA_DIR": tmp,
               "SUGGESTBOX_SECRET_KEY": "bench-" + "x" * 32, "SUGGESTBOX_INLINE_WORKER": "0"}
        subprocess.run([sys.executable, "-m", "suggestbox.cli", "migrate"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.baselines:service", "--port", str(port),
             "--no-access-log", "--log-level", "warning"], env=env, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(url + "/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            times: list[float] = []
            errors = 0
            stop = time.monotonic() + opts.seconds
            lock = threading.Lock()

            def client() -> None:
                nonlocal errors
                with httpx.Client(base_url=url, timeout=60) as c:
                    while time.monotonic() < stop:
                        t0 = time.monotonic()
                        token = TOKEN.search(c.get("/").text).group(1)  # type: ignore[union-attr]
                        r = c.post("/", files=[
                            ("token", (None, token)), ("category", (None, "4")),
                            ("body", (None, "隐患照片基准测试，一张四兆的照片。")),
                            ("photos", ("IMG_0001.jpg", data, "image/jpeg"))])
                        with lock:
                            if r.status_code == 303:
                                times.append(time.monotonic() - t0)
                            else:
                                errors += 1

            started = time.monotonic()
            threads = [threading.Thread(target=client) for _ in range(opts.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            status = Path(f"/proc/{proc.pid}/status").read_text()
            hwm = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
        finally:
            proc.terminate()
            proc.wait()
    print(f"photo size: {len(data) / 1e6:.1f} MB; clients: {opts.clients}; "
          f"{opts.seconds:.0f} s; SQLite, 1 worker")
    print(f"submissions with one photo: {len(times) / elapsed:.1f} req/s "
          f"(GET / + POST /), errors {errors}")
    if times:
        q = statistics.quantiles(times, n=100) if len(times) > 1 else [times[0]] * 99
        print(f"latency p50 {statistics.median(times) * 1000:.0f} ms, "
              f"p99 {q[98] * 1000:.0f} ms")
    print(f"peak RSS (VmHWM) of the worker: {hwm:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The files in deploy/, the Dockerfile and compose.yaml, and the logs a deployment writes.

The nginx test runs the real nginx with the shipped site config (TLS swapped for a loopback
port, paths into a temp dir) in front of a real `suggestbox serve`, sends requests marked with a
fake client address, User-Agent and Referer, and finds none of them in any log.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import logging.config
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from suggestbox.cli import build_parser
from suggestbox.logging_config import JsonFormatter, log_config
from tests.conftest import IN_CI, PASSWORD, ROOT, LiveServer, form_token, free_port

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx" / "suggestbox.conf"
MARK_UA = "MARK-UA-1234"
MARK_IP = "198.51.100.77"
MARK_REF = "https://MARK-REF-5678.example/"
# Variables that identify a client; none may appear in a log_format.
CLIENT_VARS = ("$remote_addr", "$binary_remote_addr", "$realip_remote_addr", "$remote_port",
               "$http_x_forwarded_for", "$proxy_add_x_forwarded_for", "$http_user_agent",
               "$http_referer", "$http_cookie", "$request_uri", "$args", "$query_string",
               "$request ")


def directives(conf: str, name: str) -> list[str]:
    text = re.sub(r"#[^\n]*", "", conf)
    return [m.group(1).strip() for m in re.finditer(rf"(?:^|[;{{}}\s]){name}\s+([^;]*);", text)]


# ---- nginx site: static checks --------------------------------------------------------------

def test_nginx_log_formats_hold_no_client_identity() -> None:
    conf = SITE.read_text()
    formats = directives(conf, "log_format")
    assert formats, "the site defines its own log format"
    for fmt in formats:
        for var in CLIENT_VARS:
            assert var not in fmt + " ", (var, fmt)
    names = {f.split()[0] for f in formats}
    # Every access_log is off or uses our format: a bare path means "combined" ($remote_addr).
    logs = directives(conf, "access_log")
    assert logs
    for entry in logs:
        parts = entry.split()
        assert parts == ["off"] or (len(parts) >= 2 and parts[1] in names), entry
    for entry in directives(conf, "error_log"):
        assert entry.split()[-1] in ("crit", "alert", "emerg"), entry
    assert directives(conf, "client_max_body_size")
    headers = " ".join(directives(conf, "proxy_set_header"))
    assert "X-Forwarded-For $remote_addr" in headers  # overwritten, not appended
    assert "X-Forwarded-Proto $scheme" in headers
    assert re.search(r"ssl_certificate\s", conf) and re.search(r"listen 443 ssl", conf)


# ---- nginx in front of the app: nothing identifying in any log ------------------------------

def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                     else None)
    if path is None:
        if IN_CI:
            pytest.fail("nginx is not installed, and CI=true requires it (.ci/run installs it)")
        pytest.skip("nginx is not installed")
    return path


def test_site_conf(tmp: Path, app_port: int, https_port: int, http_port: int) -> str:
    """The shipped site with TLS replaced by plain loopback ports and paths under ``tmp``."""
    conf = SITE.read_text()
    swaps = [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/var/log/nginx/", f"{tmp}/logs/"),
        ("/opt/suggestbox/static/", f"{ROOT}/static/"),
        ("/var/www/letsencrypt", f"{tmp}/acme"),
    ]
    for old, new in swaps:
        assert old in conf, f"the shipped site config no longer has {old!r}"
        conf = conf.replace(old, new)
    lines = [ln for ln in conf.splitlines()
             if not ln.strip().startswith(("ssl_", "listen [::]"))]
    return "\n".join(lines) + "\n"


test_site_conf.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def nginx(tmp_path: Path, live_server: LiveServer) -> Iterator[tuple[str, str, Path]]:
    binary = nginx_binary()
    tmp = tmp_path / "nginx"
    for d in ("logs", "temp", "acme"):
        (tmp / d).mkdir(parents=True)
    app_port = int(live_server.url.rsplit(":", 1)[1])
    https_port, http_port = free_port(), free_port()
    (tmp / "site.conf").write_text(test_site_conf(tmp, app_port, https_port, http_port))
    # Like Debian's nginx.conf: a default access log in "combined" format at http level, which
    # the site must override everywhere.
    (tmp / "nginx.conf").write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/main-error.log warn;
events {{ worker_connections 64; }}
http {{
    types {{ text/css css; image/svg+xml svg; text/javascript js; }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/temp/body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    access_log {tmp}/logs/default-access.log combined;
    include {tmp}/site.conf;
}}
""")
    args = [binary, "-p", str(tmp), "-e", str(tmp / "logs" / "startup-error.log"),
            "-c", str(tmp / "nginx.conf")]
    tested = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30,
                            check=False)
    assert tested.returncode == 0, tested.stderr
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", tmp / "logs"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()


def test_nginx_sends_public_text_gzipped(nginx: tuple[str, str, Path]) -> None:
    base, _, _ = nginx
    gz = {"Accept-Encoding": "gzip"}
    with httpx.Client(base_url=base, timeout=20) as c:
        for path in ("/", "/static/style.css"):  # from the app, from nginx itself
            r = c.get(path, headers=gz)
            assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip", path
            plain = c.get(path, headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers, path
            assert r.num_bytes_downloaded < plain.num_bytes_downloaded / 1.5, path
        staff = c.get("/staff/login", headers=gz)  # staff pages: never compressed (BREACH)
        assert staff.status_code == 200 and "content-encoding" not in staff.headers


def test_nginx_and_app_logs_hold_no_client_identity(
    nginx: tuple[str, str, Path], live_server: LiveServer
) -> None:
    base, plain, logs = nginx
    live_server.cli("user", "add", "leader1", "--role", "leader", "--password-stdin",
                    stdin=PASSWORD + "\n")
    marked = {"User-Agent": MARK_UA, "X-Forwarded-For": MARK_IP, "Referer": MARK_REF,
              "X-Real-IP": MARK_IP, "Forwarded": f"for={MARK_IP}"}
    body = "车间更衣室的热水器坏了三天，希望尽快修理。"
    with httpx.Client(base_url=base, headers=marked, timeout=20) as c:
        page = c.get("/")
        assert page.status_code == 200
        r = c.post("/", data={"token": form_token(page.text), "category": "2", "body": body})
        assert r.status_code == 303, r.text
        receipt_page = c.get("/receipt")
        receipt = re.search(r'data-receipt="([^"]+)"', receipt_page.text)
        assert receipt, receipt_page.text
        track = c.get("/track")
        found = c.post("/track", data={"token": form_token(track.text),
                                       "receipt": receipt.group(1)})
        assert found.status_code == 200 and "/track/followup" in found.text
        miss = c.post("/track", data={"token": form_token(track.text),
                                      "receipt": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
        assert miss.status_code == 422
        assert c.get("/static/style.css").status_code == 200  # served by nginx itself
        assert c.get("/no-such-page").status_code == 404
        assert c.get("/healthz").json() == {"status": "ok", "database": "ok"}
        too_big = c.post("/", content=b"x" * (600 * 1024),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert too_big.status_code == 413  # nginx's client_max_body_size
        bad = c.post("/staff/login", data={"username": "leader1", "password": "wrong"})
        assert bad.status_code == 422
        ok = c.post("/staff/login", data={"username": "leader1", "password": PASSWORD})
        assert ok.status_code == 303
        assert c.get("/staff/cases").status_code == 200
    redirect = httpx.get(plain + "/track?x=1", headers=marked)
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")

    # nginx writes its log line after the answer goes out: wait for the last staff request's line
    # (the staff log is the one nginx keeps), not for a fixed time.
    deadline = time.monotonic() + 10
    staff_log = logs / "suggestbox-staff.log"
    while time.monotonic() < deadline and not (
            staff_log.exists() and "/staff/cases" in staff_log.read_text(errors="replace")):
        time.sleep(0.02)
    assert "/staff/cases" in staff_log.read_text(errors="replace")
    texts = {p.name: p.read_text(errors="replace") for p in logs.iterdir() if p.is_file()}
    app_log = live_server.log.read_text(errors="replace")
    texts["app"] = app_log
    secrets_in_logs = [MARK_UA, MARK_IP, "MARK-REF-5678", "client:", receipt.group(1),
                       receipt.group(1).replace("-", ""), body, "热水器"]
    for name, text in texts.items():
        for needle in secrets_in_logs:
            assert needle not in text, f"{needle!r} found in {name}"
    # nginx logs hold no address at all, not even the loopback one it saw.
    for name, text in texts.items():
        if name != "app":
            assert "127.0.0.1" not in text, name
    assert texts.get("default-access.log", "") == ""
    # The logs were written: staff requests are logged (without identity), public ones not.
    staff = texts["suggestbox-staff.log"].splitlines()
    assert any(" POST /staff/login 422 " in ln for ln in staff), staff
    assert any(" GET /staff/cases 200 " in ln for ln in staff), staff
    assert not any("/track" in ln or " / " in ln for ln in staff)
    # The app logs structured lines.
    records = [json.loads(ln) for ln in app_log.splitlines() if ln.startswith("{")]
    assert any(r["logger"].startswith("uvicorn") for r in records), app_log
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    start = [r for r in records if r["logger"] == "suggestbox" and r.get("event") == "start"]
    assert start and start[0]["database"] == "sqlite" and start[0]["workers"] == 1, records


# ---- application logging --------------------------------------------------------------------

def test_json_formatter_redacts_addresses_and_exception_messages() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("suggestbox", logging.WARNING, __file__, 1,
                               "client %s from 2001:db8::7 at 12:30:45", ("198.51.100.77",), None)
    line = json.loads(formatter.format(record))
    assert line["msg"] == "client [addr] from [addr] at 12:30:45"
    assert line["level"] == "warning" and line["logger"] == "suggestbox"
    try:
        raise ValueError("Key (body)=(车间里有人偷懒) already exists")
    except ValueError:
        import sys

        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                                   "Exception in ASGI application", None, sys.exc_info())
    line = json.loads(formatter.format(record))
    assert line["exc_type"] == "ValueError"
    assert any("test_deploy.py" in f for f in line["exc_frames"])
    assert "偷懒" not in json.dumps(line, ensure_ascii=False)


def test_access_log_is_off_in_the_serve_log_config() -> None:
    config = log_config("info")
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    logging.config.dictConfig(config)
    try:
        assert not logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO)
        assert logging.getLogger("suggestbox").handlers
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                   "loggers": {"uvicorn.access": {"level": "NOTSET"}}})


# ---- systemd units --------------------------------------------------------------------------

def unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        if "=" in raw and not raw.lstrip().startswith(("#", ";", "[")):
            key, value = raw.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_units_run_existing_commands_as_a_service_user() -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    services = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {p.name for p in services} >= {"suggestbox.service", "suggestbox-worker.service",
                                          "suggestbox-remind.service"}
    for path in services:
        u = unit(path)
        assert u["User"] == ["suggestbox"], path.name
        assert u["EnvironmentFile"] == ["/etc/suggestbox/suggestbox.env"], path.name
        for line in u.get("ExecStart", []) + u.get("ExecStartPre", []):
            m = re.search(r"/\.venv/bin/suggestbox (\w+)", line)
            if m:
                assert m.group(1) in commands, f"{path.name}: no `suggestbox {m.group(1)}`"
    main = unit(DEPLOY / "systemd" / "suggestbox.service")
    assert "serve --host 127.0.0.1" in main["ExecStart"][0]
    timers = list((DEPLOY / "systemd").glob("*.timer"))
    assert {t.name for t in timers} >= {"suggestbox-remind.timer", "suggestbox-backup.timer"}
    for timer in timers:
        assert (timer.with_suffix(".service")).exists(), timer.name


# ---- containers ----------------------------------------------------------------------------

def dockerignore() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def test_dockerfile_is_multistage_non_root_and_copies_existing_paths() -> None:
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    stages = re.split(r"(?m)^FROM ", logical)[1:]
    assert len(stages) >= 2, "multi-stage build"
    final = stages[-1]
    assert re.search(r"(?m)^USER (?!root\b|0\b)\S+", final), "final stage runs as non-root"
    for tool in ("gcc", "build-essential", "make ", "git "):
        assert tool not in final, tool
    assert "pip uninstall" in final
    ignored = dockerignore()
    for line in re.findall(r"(?m)^COPY (.+)$", logical):
        parts = line.split()
        if any(p.startswith("--from") for p in parts):
            continue
        for src in [p for p in parts if not p.startswith("--")][:-1]:
            assert (ROOT / src).exists(), f"COPY {src}: no such path"
            top = src.strip("./").split("/")[0]
            assert not any(fnmatch.fnmatch(top, pat) for pat in ignored), f"{src} is ignored"
    assert '"suggestbox", "serve"' in final and "0.0.0.0" in final  # noqa: S104
    # Things that must not reach the image.
    for must in (".env", ".venv", "data", ".git"):
        assert must in ignored, must


def test_compose_runs_the_app_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"app", "db", "redis"} <= services.keys()
    app = services["app"]
    assert (ROOT / app.get("build", ".")).joinpath("Dockerfile").exists()
    env = app["environment"]
    assert re.match(r"postgres://\w+:\$\{POSTGRES_PASSWORD\}@db:5432/\w+$",
                    env["SUGGESTBOX_DATABASE_URL"])
    assert env["SUGGESTBOX_REDIS_URL"].startswith("redis://redis:6379/")
    assert "SUGGESTBOX_SECRET_KEY" in env and ":?" in env["SUGGESTBOX_SECRET_KEY"]
    assert int(env["SUGGESTBOX_WORKERS"].split(":-")[-1].rstrip("}")) > 1
    assert set(app["depends_on"]) == {"db", "redis"}
    assert all(str(p).startswith("127.0.0.1:") for p in app["ports"])
    assert services["db"]["image"].startswith("postgres:")
    # The trusted proxy address is the network's gateway, where the host's nginx comes from.
    gateway = compose["networks"]["backend"]["ipam"]["config"][0]["gateway"]
    assert env["SUGGESTBOX_FORWARDED_ALLOW_IPS"] == gateway
    assert compose["volumes"].keys() >= {"pgdata", "appdata"}

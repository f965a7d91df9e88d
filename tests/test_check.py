"""`suggestbox check` flags each misconfiguration it claims to, through the real command line
(environment → settings → findings → exit code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, PG_URL, ROOT, require_pg

GOOD_SECRET = "Vq3xL9tZp2Rk7WmN4hJc8YbF6gDs1QeA0uTn5KoP"
REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def check(tmp: Path, **env: str) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SUGGESTBOX_", "UVICORN_"))}
    base.update(
        SUGGESTBOX_DATA_DIR=str(tmp / "data"),
        SUGGESTBOX_SECRET_KEY=GOOD_SECRET,
        SUGGESTBOX_BASE_URL="https://box.example.cn",
    )
    base.update(env)
    base = {k: v for k, v in base.items() if v != "<unset>"}
    # cwd=tmp: no stray .env from the checkout is read.
    done = subprocess.run([sys.executable, "-m", "suggestbox.cli", "check"], env=base, cwd=tmp,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


def test_a_good_single_server_config_passes(tmp_path: Path) -> None:
    code, out, err = check(tmp_path)
    assert (code, err) == (0, "")
    assert "检查通过" in out


# (environment changes, the code that must be reported, serious?)
CASES = [
    ({"SUGGESTBOX_SECRET_KEY": "<unset>"}, "secret-missing", False),
    ({"SUGGESTBOX_SECRET_KEY": "change-me-to-a-long-random-string"}, "secret-default", True),
    ({"SUGGESTBOX_SECRET_KEY": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "secret-default", True),
    ({"SUGGESTBOX_SECRET_KEY": "Zx9-kQ2_pL7mWv4"}, "secret-short", True),
    ({"SUGGESTBOX_BASE_URL": "<unset>"}, "base-url-missing", False),
    ({"SUGGESTBOX_BASE_URL": "http://box.example.cn"}, "base-url-http", True),
    ({"SUGGESTBOX_ACCESS_LOG": "true"}, "access-log", True),
    ({"UVICORN_ACCESS_LOG": "true"}, "access-log", True),
    ({"SUGGESTBOX_WORKERS": "3", "SUGGESTBOX_REDIS_URL": "redis://127.0.0.1:1/0"},
     "sqlite-workers", True),
    ({"SUGGESTBOX_WORKERS": "2", "SUGGESTBOX_DATABASE_URL": "pg"}, "redis-missing", True),
    ({"SUGGESTBOX_FORWARDED_ALLOW_IPS": "*"}, "forwarded-any", False),
    ({"SUGGESTBOX_TIMEZONE": "Mars/Olympus_Mons"}, "timezone", True),
    ({"SUGGESTBOX_DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"},
     "database-unreachable", True),
    ({"SUGGESTBOX_REDIS_URL": "redis://127.0.0.1:1/0"}, "redis-unreachable", True),
    ({"SUGGESTBOX_NOTIFY_QUIET_HOURS": "0"}, "notify-immediate", False),
]


@pytest.mark.parametrize(("env", "code", "serious"), CASES, ids=[c[1] + "-" + str(i)
                                                                 for i, c in enumerate(CASES)])
def test_check_flags(tmp_path: Path, env: dict[str, str], code: str, serious: bool) -> None:
    if env.get("SUGGESTBOX_DATABASE_URL") == "pg":
        require_pg()
        env = {**env, "SUGGESTBOX_DATABASE_URL": PG_URL}
    rc, out, err = check(tmp_path, **env)
    assert f"[{code}]" in (err if serious else out), (out, err)
    assert rc == (1 if serious else 0), (out, err)
    # The check reports; it changes nothing (no data directory, no generated secret).
    assert not (tmp_path / "data").exists()


def test_an_existing_generated_secret_is_only_advice(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text("generated")
    rc, out, err = check(tmp_path, SUGGESTBOX_SECRET_KEY="<unset>")
    assert rc == 0 and "[secret-file]" in out and "secret-missing" not in out + err


def test_the_shipped_env_example_is_refused_until_edited(tmp_path: Path) -> None:
    rc, out, err = check(
        tmp_path, SUGGESTBOX_ENV_FILE=str(ROOT / "deploy" / ".env.example"),
        SUGGESTBOX_SECRET_KEY="<unset>", SUGGESTBOX_BASE_URL="<unset>",
        SUGGESTBOX_DATA_DIR="<unset>",
    )
    assert rc == 1 and "[secret-default]" in err


def test_several_workers_on_postgres_with_redis_pass(tmp_path: Path) -> None:
    require_pg()
    if not redis_up():
        if IN_CI:
            pytest.fail("Redis not reachable on 127.0.0.1:6379, and CI=true requires it")
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    rc, out, err = check(tmp_path, SUGGESTBOX_WORKERS="4", SUGGESTBOX_DATABASE_URL=PG_URL,
                         SUGGESTBOX_REDIS_URL=REDIS_URL)
    assert (rc, err) == (0, ""), out
    assert "检查通过" in out

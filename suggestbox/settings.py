"""One settings object, read from the environment (``SUGGESTBOX_*``) and ``.env``.

Defaults run a demo with zero configuration: data in ``./data``, a SQLite file there, and a
secret key generated once into the data directory (mode 0600).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.config import Config

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def asset_dir(name: str) -> Path:
    """Where ``templates`` or ``static`` lives: inside the installed package (a wheel carries them
    as ``suggestbox/<name>``, see pyproject.toml), else beside the package in a checkout."""
    installed = PACKAGE / name
    return installed if installed.is_dir() else ROOT / name

MODELS_MODULE = "suggestbox.models"
MIGRATIONS_MODULE = "suggestbox.migrations"


def _config() -> Config:
    env_file = env_file_path()
    return Config(env_file if env_file.is_file() else None)


def env_file_path() -> Path:
    """The file settings are read from besides the environment (it may not exist yet)."""
    return Path(os.environ.get("SUGGESTBOX_ENV_FILE", ".env")).resolve()


def _default_db_url(data_dir: Path) -> str:
    return f"sqlite://{data_dir / 'suggestbox.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    secret_key: str = ""
    base_url: str = ""
    timezone: str = "Asia/Shanghai"
    redis_url: str = ""
    # Request body limit for the whole app (413 beyond it).
    max_body_bytes: int = 256 * 1024
    text_min: int = 5
    text_max: int = 2000
    # Photos on a submission or a follow-up (photos.py): how many, and the size of each upload.
    # Only the routes that take photos accept bodies beyond max_body_bytes.
    photo_max_count: int = 3
    photo_max_bytes: int = 10 * 1024 * 1024
    followup_max: int = 2000
    # Paper slips (intake.py): days an unused stub code stays valid.
    slip_expiry_days: int = 365
    # Throttling: (count, window seconds).
    track_miss_limit: int = 10
    track_window: int = 600
    submit_limit: int = 30
    submit_window: int = 600
    # The first `submit_free` submissions of an address in a window are always accepted (up to
    # `submit_limit`); beyond that they draw on one budget shared by all heavy senders, so a
    # flood exhausts only its own share and never stops a 21st address (views/common.py).
    submit_free: int = 5
    submit_global_limit: int = 600
    followup_limit: int = 10  # follow-ups and ratings per address and window
    followup_window: int = 600
    # Staff logins: failures (each counted before the password is checked) per address, and per
    # account from browsers that have not signed in to it before (no device cookie), per window.
    login_fail_limit: int = 5  # per client key
    login_account_fail_limit: int = 20
    login_window: int = 900
    # Password checks (argon2, ~120 ms of CPU each) run in threads: at most this many at once
    # per process, this many more waiting; beyond that a login is refused at once (503).
    hash_concurrency: int = 1
    hash_queue: int = 4
    # `suggestbox serve`: a request's headers must arrive within `header_timeout` seconds of
    # the connection (or of the previous response), its body within `body_timeout` seconds.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # Errors on public routes are logged as counts once per this many seconds, never at the
    # moment a worker's request failed (DESIGN.md §1.9).
    error_digest_seconds: float = 3600.0
    # Staff sessions.
    session_idle_minutes: int = 120
    session_max_hours: int = 12
    # Days after an answer without a rating before a case may be closed.
    rating_window_days: int = 7
    # Monthly report: days within which a case counts as responded to (响应率), and the smallest
    # team shown on its own (small-group protection, DESIGN.md §1.6).
    response_limit_days: int = 2
    small_group_k: int = 3
    # Deployment (check.py, `suggestbox serve`): uvicorn worker processes, and uvicorn's access
    # log (off: it writes client addresses; `suggestbox check` flags it when on).
    workers: int = 1
    access_log: bool = False
    # Cases per page in the staff queue.
    page_size: int = 30
    # Notifications (notify.py, worker.py): run the delivery/reminder loop inside the app, how
    # often it wakes, tries before a message is marked failed, quiet-time batching of submitter
    # events (hours, 0 = off), one daily digest instead of one message per event, and the local
    # hour for reminders and the digest. Backoff and timeout are for tests and tuning.
    inline_worker: bool = True
    notify_poll_seconds: float = 30.0
    notify_max_tries: int = 8
    # DESIGN.md §1.7: a new-case message sent at once would date the submission to the minute.
    notify_quiet_hours: int = 2
    notify_digest: bool = False
    notify_hour: int = 8
    notify_backoff_seconds: float = 30.0
    notify_timeout_seconds: float = 10.0
    templates_dir: Path = field(default_factory=lambda: asset_dir("templates"))
    static_dir: Path = field(default_factory=lambda: asset_dir("static"))
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def photo_body_bytes(self) -> int:
        """Body limit on the routes that take photos: the text form plus every photo."""
        return self.max_body_bytes + self.photo_max_count * (self.photo_max_bytes + 4096)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        c = _config()
        data_dir = Path(c("SUGGESTBOX_DATA_DIR", default="data"))
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": c("SUGGESTBOX_DATABASE_URL", default="") or _default_db_url(data_dir),
            "secret_key": c("SUGGESTBOX_SECRET_KEY", default=""),
            "base_url": c("SUGGESTBOX_BASE_URL", default="").rstrip("/"),
            "timezone": c("SUGGESTBOX_TIMEZONE", default="Asia/Shanghai"),
            "redis_url": c("SUGGESTBOX_REDIS_URL", default=""),
            "max_body_bytes": c("SUGGESTBOX_MAX_BODY_BYTES", cast=int, default=256 * 1024),
            "photo_max_count": c("SUGGESTBOX_PHOTO_MAX_COUNT", cast=int, default=3),
            "slip_expiry_days": c("SUGGESTBOX_SLIP_EXPIRY_DAYS", cast=int, default=365),
            "photo_max_bytes": c("SUGGESTBOX_PHOTO_MAX_BYTES", cast=int,
                                 default=10 * 1024 * 1024),
            "session_idle_minutes": c("SUGGESTBOX_SESSION_IDLE_MINUTES", cast=int, default=120),
            "session_max_hours": c("SUGGESTBOX_SESSION_MAX_HOURS", cast=int, default=12),
            "rating_window_days": c("SUGGESTBOX_RATING_WINDOW_DAYS", cast=int, default=7),
            "response_limit_days": c("SUGGESTBOX_RESPONSE_LIMIT_DAYS", cast=int, default=2),
            "small_group_k": c("SUGGESTBOX_SMALL_GROUP_K", cast=int, default=3),
            "workers": c("SUGGESTBOX_WORKERS", cast=int, default=1),
            "header_timeout": c("SUGGESTBOX_HEADER_TIMEOUT", cast=float, default=10.0),
            "body_timeout": c("SUGGESTBOX_BODY_TIMEOUT", cast=float, default=30.0),
            "error_digest_seconds": c("SUGGESTBOX_ERROR_DIGEST_SECONDS", cast=float,
                                      default=3600.0),
            "access_log": c("SUGGESTBOX_ACCESS_LOG", cast=bool, default=False),
            "inline_worker": c("SUGGESTBOX_INLINE_WORKER", cast=bool, default=True),
            "notify_poll_seconds": c("SUGGESTBOX_NOTIFY_POLL_SECONDS", cast=float, default=30.0),
            "notify_max_tries": c("SUGGESTBOX_NOTIFY_MAX_TRIES", cast=int, default=8),
            "notify_quiet_hours": c("SUGGESTBOX_NOTIFY_QUIET_HOURS", cast=int, default=2),
            "notify_digest": c("SUGGESTBOX_NOTIFY_DIGEST", cast=bool, default=False),
            "notify_hour": c("SUGGESTBOX_NOTIFY_HOUR", cast=int, default=8),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split("://", 1)[1].split("?", 1)[0]
        return None if path == ":memory:" else Path(path)

    def prepare(self) -> Settings:
        """Create the data directory (and the SQLite file's) and make sure a secret exists."""
        # Owner-only: the database and the secret live here.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.ensure_secret()

    def ensure_secret(self) -> Settings:
        """Return settings with a secret key, generating one into the data dir if none is set."""
        if self.secret_key:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return replace(self, secret_key=path.read_text().strip())


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Read by the `tortoise` console script through [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(
    _config()("SUGGESTBOX_DATABASE_URL", default="")
    or _default_db_url(Path(_config()("SUGGESTBOX_DATA_DIR", default="data")))
)

"""Throttling without identity (DESIGN.md §1.5).

A client is known only by an HMAC of its address under a key that rotates every day and lives in
memory (single process) or in Redis with a TTL (several processes). Neither the key nor the client
keys are ever written to the database or a log. IPv6 addresses are keyed by their /64 (one
subscriber usually holds a whole /64, so each of its addresses must not get a budget of its own).

Every limit is an atomic increment-and-test: a request takes its slot *before* the work it limits
(``take``), so a burst of concurrent requests cannot all pass a check made before any of them is
counted. Redis does it in one round trip (``INCR`` + ``EXPIRE … NX`` in one pipeline); the memory
store has no ``await`` between reading and writing a counter.

Redis down: the throttle falls back to a process-local memory store (limits then hold per
process, i.e. up to N workers × the limit), logs one warning a minute while it lasts, and
``/healthz`` reports it. Nothing a worker submits is refused or lost because Redis is away.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("suggestbox.throttle")
RETRY_SECONDS = 5.0


class Store(Protocol):
    async def incr(self, key: str, ttl: int) -> tuple[int, int]: ...
    async def decr(self, key: str) -> None: ...
    async def get(self, key: str) -> int: ...
    async def delete(self, key: str) -> None: ...
    async def day_key(self, day: str) -> bytes: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryStore:
    """Process-local store: correct for one process only (SQLite default)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[int, float]] = {}
        self._day_keys: dict[str, bytes] = {}
        self._ops = 0

    def _prune(self, now: float) -> None:
        self._ops += 1
        if self._ops % 1000 == 0:
            for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[k]

    async def incr(self, key: str, ttl: int) -> tuple[int, int]:
        """Add one; return (new count, seconds until the counter expires). Atomic: no await."""
        now = time.monotonic()
        self._prune(now)
        value, exp = self._data.get(key, (0, 0.0))
        if exp <= now:
            value, exp = 0, now + ttl
        self._data[key] = (value + 1, exp)
        return value + 1, max(1, int(exp - now + 0.999))

    async def get(self, key: str) -> int:
        value, exp = self._data.get(key, (0, 0.0))
        return value if exp > time.monotonic() else 0

    async def decr(self, key: str) -> None:
        value, exp = self._data.get(key, (0, 0.0))
        if value > 0 and exp > time.monotonic():
            self._data[key] = (value - 1, exp)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def day_key(self, day: str) -> bytes:
        if day not in self._day_keys:
            self._day_keys = {day: secrets.token_bytes(32)}  # drop yesterday's key
        return self._day_keys[day]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class RedisStore:
    """Shared store for several app processes; every key carries a TTL.

    A bounded pool that *waits* for a free connection (redis-py's default pool raises once it
    is exhausted), short socket timeouts so a dead Redis fails fast, and one round trip per
    check: the day key is fetched once per day and process and then kept in memory.
    """

    def __init__(self, url: str, prefix: str = "suggestbox:", max_connections: int = 32,
                 timeout: float = 2.0) -> None:
        import redis.asyncio as redis

        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout,
            socket_connect_timeout=timeout, socket_timeout=timeout,
        )
        self._r: Any = redis.Redis(connection_pool=pool)
        self._p = prefix
        self._day: tuple[str, bytes] | None = None

    async def incr(self, key: str, ttl: int) -> tuple[int, int]:
        k = self._p + key
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.incr(k)
            pipe.expire(k, ttl, nx=True)
            pipe.ttl(k)
            value, _, left = await pipe.execute()
        return int(value), max(1, int(left))

    async def decr(self, key: str) -> None:
        await self._r.decr(self._p + key)

    async def get(self, key: str) -> int:
        return int(await self._r.get(self._p + key) or 0)

    async def delete(self, key: str) -> None:
        await self._r.delete(self._p + key)

    async def day_key(self, day: str) -> bytes:
        if self._day is not None and self._day[0] == day:
            return self._day[1]
        k = f"{self._p}daykey:{day}"
        # SET … NX GET: one round trip; answers the key already there, or None when ours won.
        mine = secrets.token_bytes(32)
        value = await self._r.set(k, mine, nx=True, ex=2 * 86400, get=True)
        key = value if isinstance(value, bytes) else mine
        self._day = (day, key)
        return key

    async def ping(self) -> bool:
        return bool(await self._r.ping())

    async def close(self) -> None:
        await self._r.aclose()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    wait: int  # seconds until the window's counter expires


class Throttle:
    """Counters over a shared store, with a process-local fallback when the store fails."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fallback = MemoryStore()
        self._down_since: float | None = None
        self._last_try = 0.0
        self._last_warning = 0.0

    @property
    def shared(self) -> bool:
        return not isinstance(self.store, MemoryStore)

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("redis unavailable (%s): throttling per process until it is back",
                        type(exc).__name__)

    def _recovered(self) -> None:
        if self._down_since is not None:
            self._down_since = None
            log.warning("redis available again: throttling shared across processes")

    async def _call(self, name: str, *args: Any) -> Any:
        if not self.shared:
            return await getattr(self.store, name)(*args)
        now = time.monotonic()
        if self._down_since is not None and now - self._last_try < RETRY_SECONDS:
            # Down: one request tries again every few seconds, the others do not wait on it.
            return await getattr(self._fallback, name)(*args)
        self._last_try = now
        try:
            result = await getattr(self.store, name)(*args)
        except Exception as exc:  # redis errors, timeouts, pool timeouts
            self._failed(exc)
            return await getattr(self._fallback, name)(*args)
        self._recovered()
        return result

    async def ping(self) -> bool:
        try:
            ok = await self.store.ping()
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        return ok

    async def client_key(self, address: str) -> str:
        day = datetime.now(UTC).strftime("%Y%m%d")
        key: bytes = await self._call("day_key", day)
        return hmac.new(key, network_of(address).encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _bucket(name: str, key: str, window: int) -> str:
        return f"{name}:{key}:{int(time.time()) // window}"

    async def take(self, name: str, key: str, limit: int, window: int) -> Verdict:
        """Count one event in the current fixed window; refused once more than ``limit``."""
        count, wait = await self._call("incr", self._bucket(name, key, window), window)
        return Verdict(count <= limit, count, wait)

    async def hit(self, name: str, key: str, limit: int, window: int) -> bool:
        return (await self.take(name, key, limit, window)).ok

    async def refund(self, name: str, key: str, window: int) -> None:
        """Give back a slot taken by ``take`` (e.g. a look-up that found its case)."""
        await self._call("decr", self._bucket(name, key, window))

    async def mark(self, key: str, ttl: int) -> None:
        """Remember ``key`` for ``ttl`` seconds from its first mark (e.g. a receipt window)."""
        await self._call("incr", key, ttl)

    async def marked(self, key: str) -> bool:
        return int(await self._call("get", key)) > 0

    async def reset(self, name: str, key: str, window: int) -> None:
        await self._call("delete", self._bucket(name, key, window))

    async def close(self) -> None:
        await self.store.close()


def network_of(address: str) -> str:
    """The throttling identity of an address: IPv4 as is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def make_throttle(redis_url: str) -> Throttle:
    return Throttle(RedisStore(redis_url) if redis_url else MemoryStore())

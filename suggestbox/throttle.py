"""Throttling without identity (DESIGN.md §1.5).

A client is known only by an HMAC of its address under a key that rotates every day and lives in
memory (single process) or in Redis with a TTL (several processes). Neither the key nor the client
keys are ever written to the database or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Protocol


class Store(Protocol):
    async def incr(self, key: str, ttl: int) -> int: ...
    async def get(self, key: str) -> int: ...
    async def set(self, key: str, ttl: int) -> None: ...
    async def ttl(self, key: str) -> int: ...
    async def delete(self, key: str) -> None: ...
    async def day_key(self, day: str) -> bytes: ...
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

    async def incr(self, key: str, ttl: int) -> int:
        now = time.monotonic()
        self._prune(now)
        value, exp = self._data.get(key, (0, 0.0))
        if exp <= now:
            value, exp = 0, now + ttl
        self._data[key] = (value + 1, exp)
        return value + 1

    async def get(self, key: str) -> int:
        value, exp = self._data.get(key, (0, 0.0))
        return value if exp > time.monotonic() else 0

    async def set(self, key: str, ttl: int) -> None:
        self._data[key] = (1, time.monotonic() + ttl)

    async def ttl(self, key: str) -> int:
        value, exp = self._data.get(key, (0, 0.0))
        return max(0, int(exp - time.monotonic() + 0.999))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def day_key(self, day: str) -> bytes:
        if day not in self._day_keys:
            self._day_keys = {day: secrets.token_bytes(32)}  # drop yesterday's key
        return self._day_keys[day]

    async def close(self) -> None:
        return None


class RedisStore:
    """Shared store for several app processes; every key carries a TTL."""

    def __init__(self, url: str, prefix: str = "suggestbox:") -> None:
        import redis.asyncio as redis

        self._r = redis.from_url(url)
        self._p = prefix

    async def incr(self, key: str, ttl: int) -> int:
        k = self._p + key
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.incr(k)
            pipe.expire(k, ttl, nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def get(self, key: str) -> int:
        value = await self._r.get(self._p + key)
        return int(value) if value is not None else 0

    async def set(self, key: str, ttl: int) -> None:
        await self._r.set(self._p + key, 1, ex=ttl)

    async def ttl(self, key: str) -> int:
        return max(0, int(await self._r.ttl(self._p + key)))

    async def delete(self, key: str) -> None:
        await self._r.delete(self._p + key)

    async def day_key(self, day: str) -> bytes:
        k = f"{self._p}daykey:{day}"
        await self._r.set(k, secrets.token_bytes(32), nx=True, ex=2 * 86400)
        value = await self._r.get(k)
        if not isinstance(value, bytes):
            raise RuntimeError("throttle key missing from Redis")
        return value

    async def close(self) -> None:
        await self._r.aclose()


class Throttle:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def client_key(self, address: str) -> str:
        day = datetime.now(UTC).strftime("%Y%m%d")
        key = await self.store.day_key(day)
        return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _bucket(name: str, key: str, window: int) -> str:
        return f"{name}:{key}:{int(time.time()) // window}"

    async def hit(self, name: str, key: str, limit: int, window: int) -> bool:
        """Count one event; False once more than ``limit`` happened in the current window."""
        return await self.store.incr(self._bucket(name, key, window), window) <= limit

    async def exceeded(self, name: str, key: str, limit: int, window: int) -> bool:
        return await self.store.get(self._bucket(name, key, window)) >= limit

    # Login: after ``limit`` failures, each further failure locks for a growing delay.
    async def locked_for(self, name: str, key: str) -> int:
        return await self.store.ttl(f"{name}:lock:{key}")

    async def fail(self, name: str, key: str, limit: int, base_delay: int = 30) -> None:
        count = await self.store.incr(f"{name}:fails:{key}", 3600)
        if count >= limit:
            delay = min(3600, base_delay * 2 ** (count - limit))
            await self.store.set(f"{name}:lock:{key}", delay)

    async def succeed(self, name: str, key: str) -> None:
        await self.store.delete(f"{name}:fails:{key}")
        await self.store.delete(f"{name}:lock:{key}")


def make_throttle(redis_url: str) -> Throttle:
    return Throttle(RedisStore(redis_url) if redis_url else MemoryStore())

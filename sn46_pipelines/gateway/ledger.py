"""Replay protection and daily quotas, shared by every worker: Redis, or SQLite on one machine.

:meth:`Ledger.admit` is the only write, and it is atomic: claim the request's
replay key, then check and charge the caller's quota and the global quota
(UTC days). A replayed request charges nothing; a refused request charges
nothing; two workers can never both spend the last unit. The app calls it only
after the signature and metagraph checks passed, so unauthenticated traffic
never reaches the ledger at all.

Redis does all of it in one Lua script (``SET NX EX`` for the replay key,
``INCR`` with ``EXPIRE`` for the counters): one round trip per request.
Without ``REDIS_URL``, a SQLite file in WAL mode serves several worker
processes on one host (``BEGIN IMMEDIATE`` serializes the read-check-write).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: Counter of the global quota.
TOTAL = "*total*"
_PREFIX = "sn46:gateway"


class LedgerUnavailableError(Exception):
    """The ledger cannot be reached; the gateway refuses (fails closed) rather than skip the checks."""


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    REPLAYED = "replayed"
    OVER_QUOTA = "over_quota"
    OVER_TOTAL = "over_total"


@dataclass(frozen=True, slots=True)
class Admission:
    """The ledger's answer, with the counts as of this request."""

    verdict: Verdict
    used: int
    limit: int
    total_used: int
    total_limit: int

    @property
    def remaining(self) -> int:
        """Requests left today for this caller, the global quota included."""
        return max(0, min(self.limit - self.used, self.total_limit - self.total_used))


def utc_day(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).strftime("%Y-%m-%d")


def seconds_to_midnight(now: float | None = None) -> int:
    """Seconds until the quotas reset (the next UTC midnight), at least 1."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - moment).total_seconds()) + 1)


def _counter_ttl() -> int:
    # Counters carry their day in the key; keep them one extra hour for late readers.
    return seconds_to_midnight() + 3600


class Ledger(abc.ABC):
    """Replay keys and daily counters."""

    @abc.abstractmethod
    async def admit(
        self, replay_key: str, replay_ttl: int, counter: str, limit: int, total_limit: int
    ) -> Admission:
        """Claim ``replay_key`` for ``replay_ttl`` s, then charge ``counter`` and the global counter."""

    @abc.abstractmethod
    async def usage(self, counter: str) -> tuple[int, int]:
        """Today's count of ``counter`` and of the global counter."""

    async def total_used(self) -> int:
        """Today's count of the global quota."""
        return (await self.usage(TOTAL))[1]

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the backing store answers."""

    async def close(self) -> None:
        """Release connections."""

    name: str


_ADMIT_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {1, 0, 0} end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
if total >= tonumber(ARGV[3]) then return {3, used, total} end
if used >= tonumber(ARGV[2]) then return {2, used, total} end
used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
total = redis.call('INCR', KEYS[3])
if total == 1 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
return {0, used, total}
"""
_VERDICTS = {0: Verdict.ADMITTED, 1: Verdict.REPLAYED, 2: Verdict.OVER_QUOTA, 3: Verdict.OVER_TOTAL}


class RedisLedger(Ledger):
    """The ledger in Redis (``REDIS_URL``), shared by all workers and hosts."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._admit = self._redis.register_script(_ADMIT_LUA)
        self._errors = (aioredis.RedisError, OSError)

    async def admit(
        self, replay_key: str, replay_ttl: int, counter: str, limit: int, total_limit: int
    ) -> Admission:
        day = utc_day()
        keys = [f"{_PREFIX}:replay:{replay_key}", f"{_PREFIX}:{day}:{counter}", f"{_PREFIX}:{day}:{TOTAL}"]
        args = [replay_ttl, limit, total_limit, _counter_ttl()]
        try:
            code, used, total = await self._admit(keys=keys, args=args)
        except self._errors as exc:
            raise LedgerUnavailableError(f"redis: {type(exc).__name__}") from exc
        return Admission(_VERDICTS[int(code)], int(used), limit, int(total), total_limit)

    async def usage(self, counter: str) -> tuple[int, int]:
        day = utc_day()
        used, total = await self._redis.mget(f"{_PREFIX}:{day}:{counter}", f"{_PREFIX}:{day}:{TOTAL}")
        return int(used or 0), int(total or 0)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout=2))
        except Exception:  # any failure means "not ok" on the healthcheck
            return False

    async def close(self) -> None:
        await self._redis.aclose()


class SqliteLedger(Ledger):
    """The ledger in one SQLite file: safe across worker processes on one machine.

    Calls run in worker threads (SQLite blocks); each thread keeps its own
    connection. Expired replay keys are purged every ``PURGE_EVERY`` admits.
    """

    name = "sqlite"
    PURGE_EVERY = 1000

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._admits = 0
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS replay (key TEXT PRIMARY KEY, expires REAL NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS counter (day TEXT, name TEXT, count INTEGER NOT NULL, "
                "PRIMARY KEY (day, name))"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _admit_sync(
        self, replay_key: str, replay_ttl: int, counter: str, limit: int, total_limit: int
    ) -> Admission:
        conn, now, day = self._conn(), time.time(), utc_day()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT expires FROM replay WHERE key = ?", (replay_key,)).fetchone()
            if row is not None and row[0] > now:
                conn.execute("COMMIT")
                return Admission(Verdict.REPLAYED, 0, limit, 0, total_limit)
            conn.execute("INSERT OR REPLACE INTO replay VALUES (?, ?)", (replay_key, now + replay_ttl))
            used, total = self._counts(conn, day, counter)
            verdict = (
                Verdict.OVER_TOTAL if total >= total_limit
                else Verdict.OVER_QUOTA if used >= limit
                else Verdict.ADMITTED
            )
            if verdict is Verdict.ADMITTED:
                conn.executemany(
                    "INSERT INTO counter VALUES (?, ?, 1) "
                    "ON CONFLICT (day, name) DO UPDATE SET count = count + 1",
                    [(day, counter), (day, TOTAL)],
                )
                used, total = used + 1, total + 1
            self._admits += 1
            if self._admits % self.PURGE_EVERY == 0:
                conn.execute("DELETE FROM replay WHERE expires <= ?", (now,))
                conn.execute("DELETE FROM counter WHERE day < ?", (utc_day(now - 2 * 86400),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return Admission(verdict, used, limit, total, total_limit)

    @staticmethod
    def _counts(conn: sqlite3.Connection, day: str, counter: str) -> tuple[int, int]:
        rows = dict(conn.execute(
            "SELECT name, count FROM counter WHERE day = ? AND name IN (?, ?)", (day, counter, TOTAL)
        ).fetchall())
        return rows.get(counter, 0), rows.get(TOTAL, 0)

    async def admit(
        self, replay_key: str, replay_ttl: int, counter: str, limit: int, total_limit: int
    ) -> Admission:
        try:
            return await asyncio.to_thread(
                self._admit_sync, replay_key, replay_ttl, counter, limit, total_limit
            )
        except sqlite3.Error as exc:
            raise LedgerUnavailableError(f"sqlite: {type(exc).__name__}") from exc

    async def usage(self, counter: str) -> tuple[int, int]:
        return await asyncio.to_thread(lambda: self._counts(self._conn(), utc_day(), counter))

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(lambda: self._conn().execute("SELECT 1").fetchone())
        except sqlite3.Error:
            return False
        return True


def open_ledger(redis_url: str | None, sqlite_path: Path) -> Ledger:
    """Redis when a URL is given, else the SQLite file."""
    return RedisLedger(redis_url) if redis_url else SqliteLedger(sqlite_path)

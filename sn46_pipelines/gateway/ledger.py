"""Replay protection, idempotent retries and daily quotas, shared by every worker: Redis, or SQLite.

:meth:`Ledger.admit` is atomic. A request's replay key (its signature, or its
signer and nonce) is looked up first:

- held by the same request (same fingerprint: method, path and body bytes):
  a retry. It is answered with the first answer, stored with the claim (or
  right after it, by :meth:`Ledger.remember`, where the answer is costly to
  build before admission), and charges nothing, so a client that lost a
  response, or whose library resends the same signed body, gets its grant
  instead of a 401;
- held by a different request: a replay with something changed, refused;
- free: the caller's quota and the global quota (UTC days) are checked, and
  only an admitted request claims the key and is charged. A request refused
  for quota leaves its key free, so the same signed request may come back.

Two workers can never both spend the last unit, nor both claim one key. The
app calls the ledger only after the signature and metagraph checks passed, so
unauthenticated or unregistered traffic never reaches it.

Redis does each call in one Lua script (one round trip): the claim is a
string key holding the fingerprint, then the answer, expiring when the signed
request could no longer pass the freshness check; the counters are ``INCR``
with ``EXPIRE``. Without ``REDIS_URL``, a SQLite file in WAL mode serves
several worker processes on one host (``BEGIN IMMEDIATE`` serializes the
read-check-write).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..errors import TransientError

#: Counter of the global quota.
TOTAL = "*total*"
_PREFIX = "sn46:gateway"


class LedgerUnavailableError(TransientError):
    """The ledger cannot be reached; the gateway refuses (fails closed) rather than skip the checks."""


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    #: The same request again, within its window: answer it as the first time, charge nothing.
    REPEATED = "repeated"
    #: The replay key is held by a different request.
    REPLAYED = "replayed"
    OVER_QUOTA = "over_quota"
    OVER_TOTAL = "over_total"


#: Length of a request fingerprint (hex SHA-256).
FINGERPRINT_CHARS = 64


@dataclass(frozen=True, slots=True)
class Claim:
    """What makes a request unique, and how long the ledger must remember it."""

    #: The signature bytes, or the signer and nonce.
    key: str
    #: Hex SHA-256 of the whole request (method, path, body): a retry matches it, a changed replay not.
    fingerprint: str
    #: Seconds until the signed request could no longer pass the freshness check.
    ttl: int

    def __post_init__(self) -> None:
        if len(self.fingerprint) != FINGERPRINT_CHARS:
            raise ValueError(f"a fingerprint is {FINGERPRINT_CHARS} hex characters")


@dataclass(frozen=True, slots=True)
class Admission:
    """The ledger's answer, with the counts as of this request."""

    verdict: Verdict
    used: int
    limit: int
    total_used: int
    total_limit: int
    #: For :attr:`Verdict.REPEATED`: the first answer, or None while it is not stored (still being
    #: built, or its worker died before storing it).
    answer: bytes | None = None

    @property
    def remaining(self) -> int:
        """Requests left today for this caller, the global quota included."""
        return max(0, min(self.limit - self.used, self.total_limit - self.total_used))


def utc_day(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(now: float | None = None) -> int:
    """Seconds until the quotas reset (the next UTC midnight), at least 1."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - moment).total_seconds()) + 1)


def _claim_key(claim: Claim) -> str:
    # The key name of the gateways before retries were answered: in a rolling deploy both see each
    # other's claims (an older claim's value, "1", matches no fingerprint: a replay).
    return f"{_PREFIX}:replay:{claim.key}"


def _counter_ttl() -> int:
    # Counters carry their day in the key; keep them one extra hour for late readers.
    return seconds_to_midnight() + 3600


class Ledger(abc.ABC):
    """Replay claims with their answers, and daily counters."""

    @abc.abstractmethod
    async def admit(
        self, claim: Claim, counter: str, limit: int, total_limit: int, answer: bytes = b""
    ) -> Admission:
        """A retry of ``claim``'s request, a replay, or: check quotas, then claim and charge.

        ``answer`` is kept with the claim when the request is admitted (empty: none yet, see
        :meth:`remember`).
        """

    @abc.abstractmethod
    async def remember(self, claim: Claim, answer: bytes) -> None:
        """Store the answer of an admitted request for its retries (the first answer stored wins)."""

    @abc.abstractmethod
    async def usage(self, counter: str) -> tuple[int, int]:
        """Today's count of ``counter`` and of the global counter."""

    async def total_used(self) -> int:
        """Today's count of the global quota."""
        return (await self.usage(TOTAL))[1]

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the backing store answers."""

    async def close(self) -> None:  # noqa: B027 - optional: a ledger without connections keeps it
        """Release connections."""

    name: str


# KEYS: claim, caller's counter, global counter. ARGV: fingerprint, claim ttl, limit, total limit,
# counter ttl, answer. A claim's value is the fingerprint, followed by the answer once there is one.
_ADMIT_LUA = """
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, 1, 64) == ARGV[1] then return {4, used, total, string.sub(held, 65)} end
  return {1, used, total, ''}
end
if total >= tonumber(ARGV[4]) then return {3, used, total, ''} end
if used >= tonumber(ARGV[3]) then return {2, used, total, ''} end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[6], 'EX', ARGV[2])
used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
total = redis.call('INCR', KEYS[3])
if total == 1 then redis.call('EXPIRE', KEYS[3], ARGV[5]) end
return {0, used, total, ''}
"""
# Only a claim still waiting for its answer takes one, for the rest of the claim's lifetime.
_REMEMBER_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'PX', ttl)
return 1
"""
_VERDICTS = dict(
    enumerate((Verdict.ADMITTED, Verdict.REPLAYED, Verdict.OVER_QUOTA, Verdict.OVER_TOTAL, Verdict.REPEATED))
)


class RedisLedger(Ledger):
    """The ledger in Redis (``REDIS_URL``), shared by all workers and hosts."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._admit = self._redis.register_script(_ADMIT_LUA)
        self._remember = self._redis.register_script(_REMEMBER_LUA)
        self._errors = (aioredis.RedisError, OSError)

    async def admit(
        self, claim: Claim, counter: str, limit: int, total_limit: int, answer: bytes = b""
    ) -> Admission:
        day = utc_day()
        keys = [_claim_key(claim), f"{_PREFIX}:{day}:{counter}", f"{_PREFIX}:{day}:{TOTAL}"]
        args: list[str | int | float | bytes] = [
            claim.fingerprint,
            claim.ttl,
            limit,
            total_limit,
            _counter_ttl(),
            answer,
        ]
        try:
            code, used, total, held = await self._admit(keys=keys, args=args)
        except self._errors as exc:
            raise LedgerUnavailableError(f"redis: {type(exc).__name__}") from exc
        return Admission(_VERDICTS[int(code)], int(used), limit, int(total), total_limit, held or None)

    async def remember(self, claim: Claim, answer: bytes) -> None:
        try:
            await self._remember(keys=[_claim_key(claim)], args=[claim.fingerprint, answer])
        except self._errors as exc:
            raise LedgerUnavailableError(f"redis: {type(exc).__name__}") from exc

    async def usage(self, counter: str) -> tuple[int, int]:
        day = utc_day()
        used, total = await self._redis.mget(f"{_PREFIX}:{day}:{counter}", f"{_PREFIX}:{day}:{TOTAL}")
        return int(used or 0), int(total or 0)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout=2))
        except Exception:  # noqa: BLE001 - any failure means "not ok" on the healthcheck
            return False

    async def close(self) -> None:
        await self._redis.aclose()


class SqliteLedger(Ledger):
    """The ledger in one SQLite file: safe across worker processes on one machine.

    Calls run in worker threads (SQLite blocks); each thread keeps its own
    connection. Expired claims are purged every ``PURGE_EVERY`` admits. A
    file written by an older gateway gains the fingerprint and answer
    columns; its claims match no fingerprint, so they stay refused replays.
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
            columns = {row[1] for row in conn.execute("PRAGMA table_info(replay)")}
            for column in ("fingerprint TEXT NOT NULL DEFAULT ''", "answer BLOB"):
                if column.split()[0] not in columns:
                    conn.execute(f"ALTER TABLE replay ADD COLUMN {column}")
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
        self, claim: Claim, counter: str, limit: int, total_limit: int, answer: bytes
    ) -> Admission:
        conn, now, day = self._conn(), time.time(), utc_day()
        conn.execute("BEGIN IMMEDIATE")
        try:
            used, total = self._counts(conn, day, counter)
            held = conn.execute(
                "SELECT fingerprint, answer FROM replay WHERE key = ? AND expires > ?", (claim.key, now)
            ).fetchone()
            stored = None
            if held is not None:
                verdict = Verdict.REPEATED if held[0] == claim.fingerprint else Verdict.REPLAYED
                stored = held[1] if verdict is Verdict.REPEATED else None
            elif total >= total_limit:
                verdict = Verdict.OVER_TOTAL
            elif used >= limit:
                verdict = Verdict.OVER_QUOTA
            else:
                verdict = Verdict.ADMITTED
                conn.execute(
                    "INSERT OR REPLACE INTO replay (key, expires, fingerprint, answer) VALUES (?, ?, ?, ?)",
                    (claim.key, now + claim.ttl, claim.fingerprint, answer or None),
                )
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
        return Admission(verdict, used, limit, total, total_limit, stored)

    def _remember_sync(self, claim: Claim, answer: bytes) -> None:
        self._conn().execute(
            "UPDATE replay SET answer = ? "
            "WHERE key = ? AND fingerprint = ? AND answer IS NULL AND expires > ?",
            (answer, claim.key, claim.fingerprint, time.time()),
        )

    @staticmethod
    def _counts(conn: sqlite3.Connection, day: str, counter: str) -> tuple[int, int]:
        rows = dict(
            conn.execute(
                "SELECT name, count FROM counter WHERE day = ? AND name IN (?, ?)", (day, counter, TOTAL)
            ).fetchall()
        )
        return rows.get(counter, 0), rows.get(TOTAL, 0)

    async def admit(
        self, claim: Claim, counter: str, limit: int, total_limit: int, answer: bytes = b""
    ) -> Admission:
        try:
            return await asyncio.to_thread(self._admit_sync, claim, counter, limit, total_limit, answer)
        except sqlite3.Error as exc:
            raise LedgerUnavailableError(f"sqlite: {type(exc).__name__}") from exc

    async def remember(self, claim: Claim, answer: bytes) -> None:
        try:
            await asyncio.to_thread(self._remember_sync, claim, answer)
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

"""Daily quotas: per miner, per validator, global; only authenticated, registered callers spend them."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import time

import pytest

from sn46_pipelines.gateway.ledger import Claim, RedisLedger, SqliteLedger, Verdict
from tests.gateway.helpers import MINER2, STRANGER, miner_request, sign, validator_request


def test_miner_quota_exhaustion_answers_429_with_retry_after(make_client):
    client = make_client(DAILY_LIMIT_PER_MINER="3")
    for remaining in ("2", "1", "0"):
        r = client.post("/get-folder-access", json=miner_request())
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == remaining
    r = client.post("/get-folder-access", json=miner_request())
    assert r.status_code == 429
    body = r.json()
    assert body["detail"] == "Daily limit of 3 exceeded." and body["remaining"] == 0 and body["limit"] == 3
    assert 0 < int(r.headers["Retry-After"]) <= 86401 and r.headers["X-RateLimit-Remaining"] == "0"
    # Another miner's quota is untouched.
    other = miner_request(MINER2, coldkey=MINER2.ss58_address)
    assert client.post("/get-folder-access", json=other).status_code == 200


def test_validator_quota_exhaustion(make_client):
    client = make_client(DAILY_LIMIT_PER_VALIDATOR="2")
    assert [client.post("/get-validator-access", json=validator_request()).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]


def test_global_quota_exhaustion(make_client):
    client = make_client(TOTAL_DAILY_LIMIT="2")
    assert client.post("/get-folder-access", json=miner_request()).status_code == 200
    assert client.post("/get-validator-access", json=validator_request()).status_code == 200
    r = client.post("/get-folder-access", json=miner_request(MINER2, coldkey=MINER2.ss58_address))
    assert r.status_code == 429 and r.json()["detail"] == "Global request limit reached."


def claim(key: str, body: str = "body", ttl: int = 60) -> Claim:
    return Claim(key, hashlib.sha256(body.encode()).hexdigest(), ttl)


def test_unauthenticated_flood_touches_no_quota(make_client):
    """Forged, stale, unregistered, replayed-with-changes and retried requests never spend a quota."""
    client = make_client(DAILY_LIMIT_PER_MINER="2", TOTAL_DAILY_LIMIT="3")
    used = miner_request()
    first = client.post("/get-folder-access", json=used)
    assert first.status_code == 200
    now = int(time.time())
    flood = []
    for i in range(40):
        forged = miner_request(ts=now - i % 5)
        forged["signature"] = sign(STRANGER, "s3:data:access:x:y:1")
        flood += [
            forged,
            miner_request(ts=now - 1000),  # stale
            miner_request(STRANGER, coldkey=STRANGER.ss58_address),  # unregistered
            {**used, "job_id": f"job_{i}"},  # replayed with a change
        ]
    statuses = {client.post("/get-folder-access", json=body).status_code for body in flood}
    assert statuses == {401, 403}
    retries = [client.post("/get-folder-access", json=used) for _ in range(20)]
    assert {(r.status_code, r.content) for r in retries} == {(200, first.content)}
    limits = client.get("/rate-limits").json()
    assert limits["total_used_today"] == 1
    r = client.post("/get-folder-access", json=miner_request())
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "0"


def _admit_many(path: str, n: int, tag: str) -> int:
    ledger = SqliteLedger(path)

    async def run() -> int:
        verdicts = [await ledger.admit(claim(f"{tag}-{i}"), "miner:x", 100, 10_000) for i in range(n)]
        return sum(v.verdict is Verdict.ADMITTED for v in verdicts)

    return asyncio.run(run())


def test_sqlite_ledger_is_atomic_across_processes(tmp_path):
    """Four processes race for a quota of 100: exactly 100 are admitted, none twice."""
    path = str(tmp_path / "ledger.sqlite3")
    SqliteLedger(path)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        admitted = pool.starmap(_admit_many, [(path, 60, f"p{p}") for p in range(4)])
    assert sum(admitted) == 100
    assert asyncio.run(SqliteLedger(path).usage("miner:x")) == (100, 100)


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_ledger_concurrent_admits_respect_the_limit(backend, redis_url, tmp_path):
    async def run() -> list:
        ledger = RedisLedger(redis_url) if backend == "redis" else SqliteLedger(tmp_path / "l.sqlite3")
        try:
            admits = (ledger.admit(claim(f"k{i}"), "validator:v", 25, 1000) for i in range(80))
            return await asyncio.gather(*admits)
        finally:
            await ledger.close()

    results = asyncio.run(run())
    verdicts = [r.verdict for r in results]
    assert verdicts.count(Verdict.ADMITTED) == 25
    assert verdicts.count(Verdict.OVER_QUOTA) == 55
    assert max(r.used for r in results) == 25


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_ledger_answers_retries_refuses_changed_replays_and_frees_refused_keys(backend, redis_url, tmp_path):
    async def run() -> None:
        ledger = RedisLedger(redis_url) if backend == "redis" else SqliteLedger(tmp_path / "l.sqlite3")
        try:
            first = await ledger.admit(claim("a"), "miner:m", 1, 1000)
            assert first.verdict is Verdict.ADMITTED and first.used == 1
            pending = await ledger.admit(claim("a"), "miner:m", 1, 1000)  # before the answer is stored
            assert (pending.verdict, pending.answer, pending.used) == (Verdict.REPEATED, None, 1)
            await ledger.remember(claim("a"), b'{"grant": 1}')
            await ledger.remember(claim("a"), b'{"grant": 2}')  # a racing second answer: the first stays
            retry = await ledger.admit(claim("a"), "miner:m", 1, 1000)
            assert (retry.verdict, retry.answer) == (Verdict.REPEATED, b'{"grant": 1}')
            changed = await ledger.admit(claim("a", body="other"), "miner:m", 1, 1000)
            assert changed.verdict is Verdict.REPLAYED
            await ledger.remember(claim("a", body="other"), b"forged")  # stores nothing
            assert (await ledger.admit(claim("a"), "miner:m", 1, 1000)).answer == b'{"grant": 1}'

            kept = await ledger.admit(claim("c"), "miner:n", 1, 1000, answer=b'{"grant": 3}')
            assert kept.verdict is Verdict.ADMITTED  # answered and charged in one call
            assert (await ledger.admit(claim("c"), "miner:n", 1, 1000)).answer == b'{"grant": 3}'

            refused = await ledger.admit(claim("b"), "miner:m", 1, 1000)
            assert refused.verdict is Verdict.OVER_QUOTA
            # Refused for quota, its key stays free: the same request is admitted once quota allows.
            later = await ledger.admit(claim("b"), "miner:m", 2, 1000)
            assert later.verdict is Verdict.ADMITTED and later.used == 2
            assert await ledger.usage("miner:m") == (2, 3)  # and miner:n's one
        finally:
            await ledger.close()

    asyncio.run(run())


def test_sqlite_backend_serves_the_app(make_client):
    client = make_client(REDIS_URL="")
    assert client.post("/get-folder-access", json=miner_request()).status_code == 200
    body = validator_request()
    first = client.post("/get-validator-access", json=body)
    assert first.status_code == 200
    assert client.post("/get-validator-access", json=body).content == first.content
    changed = client.post("/get-validator-access", json={**body, "continuation_token": "t"})
    assert changed.status_code == 401
    health = client.get("/healthcheck").json()
    assert health["ledger"] == {"backend": "sqlite", "ok": True} and health["redis_ok"] is None


def test_gateway_fails_closed_when_redis_is_down(make_client):
    """No ledger, no grant: a 503 with Retry-After, never a grant without replay and quota checks."""
    from .conftest import free_port

    client = make_client(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    r = client.post("/get-folder-access", json=miner_request())
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    assert r.json() == {"detail": "Service temporarily unavailable, retry shortly"}
    health = client.get("/healthcheck").json()
    assert health["status"] == "degraded" and health["redis_ok"] is False


def test_a_ledger_file_of_an_older_gateway_keeps_refusing_its_claims(tmp_path):
    """Claims written before answers were kept carry no fingerprint: they stay refused replays."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE replay (key TEXT PRIMARY KEY, expires REAL NOT NULL)")
        conn.execute("INSERT INTO replay VALUES ('sig:ab', ?)", (time.time() + 300,))

    async def run() -> tuple[Verdict, Verdict]:
        ledger = SqliteLedger(path)
        old = await ledger.admit(claim("sig:ab"), "miner:m", 5, 100)
        new = await ledger.admit(claim("sig:cd"), "miner:m", 5, 100, answer=b"{}")
        return old.verdict, new.verdict

    assert asyncio.run(run()) == (Verdict.REPLAYED, Verdict.ADMITTED)

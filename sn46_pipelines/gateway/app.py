"""The HTTP API: today's endpoints and fields, with every check in a safe order.

Each signed endpoint goes through :meth:`Gateway.serve`, which runs
:meth:`Gateway.authorize`:

1. read the body, at most ``max_body_bytes`` (413), parse it (400/422), and
   refuse unserviceable requests (bad job id, too many file keys) (400/422);
2. authenticate: ``btauth/1`` or ``X-Tao`` headers if present, else the
   signed commitment (fresh timestamp, valid signature) (401; an endpoint
   with no commitment, ``/get-file-upload-url``, takes headers only);
3. check the metagraph: registered hotkey, and for validator endpoints the
   validator rule (403; 503 before the first snapshot);
4. one atomic ledger call: an exact repeat of an admitted request (same
   replay key, same method, path and body) is answered with the first answer
   and charges nothing; a replay with anything changed is refused (401);
   otherwise the quotas are checked (429 with ``Retry-After``, the replay key
   left free) and the request claims its key and is charged. 503 when the
   ledger is down: without replay and quota checks nothing is granted.

Checks that need the signer or the store (``/get-file-upload-url``'s file
name in the signer's folder, and whether that file exists: 400, 409) run
after check 3 and before check 4: only registered callers cause a store
request, and a refused request charges nothing and leaves its key free.

Only a caller past checks 1-3 gets anything presigned, and a grant leaves
the gateway only once the ledger admitted it; the answer is kept for the
request's retries, with the claim itself where it is cheap to build first.
Unauthenticated or unregistered traffic never touches a quota.
Responses never carry exception text: unexpected errors are logged and
answered with a plain 500.

``GET /metrics`` counts each grant by kind and each refusal by the reason
its :class:`GatewayError` names (docs/gateway.md, Metrics).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from ..listings.keys import PARQUET, InvalidUploadKeyError, parse_upload_key
from ..listings.layout import (
    EPOCH_FOLDER_STRUCTURE,
    FOLDER_STRUCTURE,
    MINERS_PREFIX,
    job_folder,
    miner_folder,
)
from .auth import (
    TAO_HEADERS,
    AuthError,
    Caller,
    has_btauth_headers,
    has_tao_headers,
    verify_btauth,
    verify_commitment,
    verify_tao,
)
from .ledger import Admission, Claim, Ledger, LedgerUnavailableError, Verdict, seconds_to_midnight
from .metagraph import MetagraphSyncer
from .metrics import FILE_UPLOAD, FILE_URLS, MINER_FOLDER, MINER_LISTING, VALIDATOR_LISTING, GatewayMetrics
from .models import (
    FileUploadRequest,
    FileUrlsRequest,
    MinerAccessRequest,
    MinerSpecificRequest,
    SignedBody,
    ValidatorAccessRequest,
)
from .presign import EXAMPLE_PATHS, Presigner
from .settings import GatewaySettings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=SignedBody)

#: Commitment strings, exactly as today's miners and validators sign them.
COMMITMENTS = {
    "miner_format": "s3:data:access:{coldkey}:{hotkey}:{timestamp}",
    "validator_format": "s3:validator:access:{timestamp}",
    "miner_specific_format": "s3:validator:miner:{miner_hotkey}:{timestamp}",
    "file_urls_format": "s3:validator:files:{miner_hotkey}:{hotkey}:{timestamp}",
}
_S3_CHECK_CACHE_S = 5.0
#: Marks an answer given again to an exact retry (the name some payment APIs use for the same idea).
REPEAT_HEADER = "Idempotent-Replayed"


def request_fingerprint(method: str, target: str, body: bytes) -> str:
    """Hex SHA-256 of what a retry repeats byte for byte: method, path with query string, and body.

    Legacy commitments sign only a timestamp and a few names, ``X-Tao`` signs
    only the body: the fingerprint is what makes "the same request" cover
    every field, so a captured signature cannot be replayed with a changed
    ``file_keys``, ``job_id`` or path and come back with a grant.
    """
    digest = hashlib.sha256()
    for part in (method.encode(), target.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


#: The ``reason`` a refusal is counted under (``sn46_gateway_refusals_total``), by status; a check
#: that shares its status with others names its own (``replay``, ``unregistered``, ``global_quota``).
REFUSAL_REASONS = {
    400: "invalid",
    401: "signature",
    403: "permission",
    409: "conflict",
    413: "invalid",
    422: "invalid",
    429: "quota",
    503: "unavailable",
}


class GatewayError(Exception):
    """An answer other than 200: status, a safe message, optional headers and fields, and the reason."""

    def __init__(
        self,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
        *,
        reason: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers or {}, extra
        self.reason = reason or REFUSAL_REASONS.get(status, "other")


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


class RequestStats:
    """Per-worker request counters for the healthcheck."""

    def __init__(self) -> None:
        self.started = time.time()
        self.by_status: Counter[int] = Counter()

    def summary(self) -> dict[str, Any]:
        total = sum(self.by_status.values())
        errors = sum(n for status, n in self.by_status.items() if status >= 400)
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "total_requests": total,
            "total_errors": errors,
            "error_rate": round(errors / total, 4) if total else 0.0,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


class CountRequests:
    """Pure ASGI middleware feeding :class:`RequestStats` (no per-request task, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: Any, stats: RequestStats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.stats.by_status[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


@dataclass(frozen=True, slots=True)
class Authorized(Generic[M]):
    """A request that passed checks 1-3: its fields, its signer, its claim and the quota it spends."""

    fields: M
    caller: Caller
    claim: Claim
    counter: str
    limit: int


class Gateway:
    """What the routes share: settings, presigner, ledger, metagraph, store check, metrics."""

    def __init__(
        self,
        settings: GatewaySettings,
        presigner: Presigner,
        ledger: Ledger,
        metagraph: MetagraphSyncer,
        check_store: Callable[[], None],
        object_exists: Callable[[str], bool],
    ) -> None:
        self.settings = settings
        self.presigner = presigner
        self.ledger = ledger
        self.metagraph = metagraph
        self._check_store = check_store
        #: Whether a store key (not a bucket key) holds an object.
        self.object_exists = object_exists
        self.metrics = GatewayMetrics()
        self._s3_health: tuple[float, bool, float] = (0.0, False, 0.0)

    async def read_body(self, request: Request) -> bytes:
        """The raw body, refused with 413 past ``max_body_bytes`` whether or not it declares a length."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise GatewayError(413, f"Request body larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"Request body larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def parse(model: type[M], body: bytes) -> M:
        try:
            data = json.loads(body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser allows
            raise GatewayError(400, "Malformed JSON body") from None
        if not isinstance(data, dict):
            raise GatewayError(400, "Expected a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
            ]
            raise GatewayError(422, "Invalid request fields", errors=problems) from None

    def authenticate(
        self,
        request: Request,
        target: str,
        body: bytes,
        fields: SignedBody,
        commitment: Callable[[Any], str] | None,
    ) -> Caller:
        """btauth/1 or X-Tao when their headers are present, else the signed commitment in the body.

        ``commitment`` None: the endpoint has no commitment string, so it takes headers only.
        """
        settings = self.settings
        btauth, tao = has_btauth_headers(request.headers), has_tao_headers(request.headers)
        if btauth and tao:
            raise AuthError("Sign a request with one scheme: btauth/1 or X-Tao headers, not both")
        if btauth or tao:
            caller = (
                verify_btauth(
                    request.headers,
                    body,
                    method=request.method,
                    path=target,
                    gateway_hotkey=settings.gateway_hotkey,
                )
                if btauth
                else verify_tao(
                    request.headers, body, max_age_s=settings.max_age_s, max_skew_s=settings.max_skew_s
                )
            )
            if fields.hotkey is not None and fields.hotkey != caller.hotkey:
                raise AuthError("Body hotkey differs from the signing hotkey")
            return caller
        if commitment is None:
            raise AuthError("This endpoint takes X-Tao or btauth/1 headers, not signature fields")
        hotkey, signature, timestamp = fields.hotkey, fields.signature, fields.timestamp
        no_coldkey = isinstance(fields, MinerAccessRequest) and fields.coldkey is None
        if hotkey is None or signature is None or timestamp is None or no_coldkey:
            given = {"hotkey": hotkey, "signature": signature, "timestamp": timestamp}
            missing = [name for name, value in given.items() if value is None] + (
                ["coldkey"] if no_coldkey else []
            )
            raise GatewayError(
                422,
                "Invalid request fields",
                errors=[{"field": name, "problem": "Field required"} for name in missing],
            )
        return verify_commitment(
            commitment(fields),
            hotkey=hotkey,
            signature=signature,
            timestamp=timestamp,
            expiry=fields.expiry,
            max_age_s=settings.max_age_s,
            max_skew_s=settings.max_skew_s,
        )

    async def authorize(
        self,
        request: Request,
        model: type[M],
        *,
        validator: bool,
        commitment: Callable[[M], str] | None,
        check: Callable[[M], None] | None = None,
    ) -> Authorized[M]:
        """Run checks 1-3 of the module docstring in order; raise :class:`GatewayError` on the first failure.

        ``check`` refuses requests that are well-formed but unserviceable, before anything is charged.
        """
        body = await self.read_body(request)
        fields = self.parse(model, body)
        if check is not None:
            check(fields)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            caller = self.authenticate(request, target, body, fields, commitment)
        except AuthError as exc:
            raise GatewayError(401, str(exc)) from None
        snapshot = self.metagraph.snapshot
        if snapshot is None:
            raise GatewayError(503, "Metagraph not loaded yet, retry shortly", {"Retry-After": "30"})
        neuron = snapshot.get(caller.hotkey)
        if neuron is None:
            raise GatewayError(
                403, f"Hotkey not registered on subnet {snapshot.netuid}", reason="unregistered"
            )
        coldkey = getattr(fields, "coldkey", None)
        if coldkey is not None and neuron.coldkey and coldkey != neuron.coldkey:
            raise GatewayError(403, "Coldkey does not own this hotkey")
        settings = self.settings
        rule = settings.validator_rule
        if validator and not rule.admits(neuron):
            raise GatewayError(403, f"You are not validator: this gateway requires {rule.describe()}")
        scope, limit = (
            ("validator", settings.per_validator_limit) if validator else ("miner", settings.per_miner_limit)
        )
        claim = Claim(caller.replay_key, request_fingerprint(request.method, target, body), caller.replay_ttl)
        return Authorized(fields, caller, claim, f"{scope}:{caller.hotkey}", limit)

    async def admit(self, authorized: Authorized[Any], answer: bytes = b"") -> Admission:
        """Check 4: the ledger's verdict, :attr:`Verdict.ADMITTED` or :attr:`Verdict.REPEATED`, or an error.

        ``answer`` is kept with the claim if the request is admitted.
        """
        try:
            admission = await self.ledger.admit(
                authorized.claim, authorized.counter, authorized.limit, self.settings.total_limit, answer
            )
        except LedgerUnavailableError as exc:
            log.error("ledger unavailable: %s", exc)
            raise GatewayError(
                503, "Service temporarily unavailable, retry shortly", {"Retry-After": "30"}
            ) from None
        if admission.verdict is Verdict.REPLAYED:
            raise GatewayError(
                401, "Request already used (replay): a retry must repeat the request exactly", reason="replay"
            )
        if admission.verdict not in (Verdict.ADMITTED, Verdict.REPEATED):
            retry = seconds_to_midnight()
            over_total = admission.verdict is Verdict.OVER_TOTAL
            detail = (
                "Global request limit reached."
                if over_total
                else f"Daily limit of {admission.limit} exceeded."
            )
            raise GatewayError(
                429,
                detail,
                {**_limit_headers(admission), "Retry-After": str(retry)},
                reason="global_quota" if over_total else "quota",
                limit=admission.limit,
                remaining=0,
                retry_after_s=retry,
            )
        return admission

    async def serve(
        self,
        request: Request,
        model: type[M],
        build: Callable[[M, Caller], Awaitable[dict[str, Any]]],
        *,
        kind: str,
        validator: bool,
        commitment: Callable[[M], str] | None,
        check: Callable[[M], None] | None = None,
        answer_first: bool = True,
    ) -> Response:
        """Authorize, then answer: a retry gets the first answer; a new request, a grant kept for its retries.

        With ``answer_first`` the answer is built before the ledger call and
        kept with the claim in the same round trip (a few presigns cost less
        than a second round trip). Otherwise (hundreds of presigns, worth
        building only once admitted) it is stored right after; a retry that
        finds none stored (still being built, or its worker died after the
        charge) gets one built again, uncharged: the same caller, the same rights.
        ``kind`` names the grant in the metrics (:mod:`.metrics`).
        """
        authorized = await self.authorize(
            request, model, validator=validator, commitment=commitment, check=check
        )

        async def render() -> bytes:
            return bytes(JSONResponse(await build(authorized.fields, authorized.caller)).body)

        answer = await render() if answer_first else b""
        admission = await self.admit(authorized, answer)
        headers = _limit_headers(admission)
        served = self.metrics.repeats if admission.verdict is Verdict.REPEATED else self.metrics.grants
        if admission.verdict is Verdict.REPEATED:
            headers[REPEAT_HEADER] = "true"
            if admission.answer is not None:
                served.labels(kind).inc()
                return Response(admission.answer, media_type="application/json", headers=headers)
        if not (answer_first and admission.verdict is Verdict.ADMITTED):  # not kept with the claim yet
            answer = answer or await render()
            try:
                await self.ledger.remember(authorized.claim, answer)
            except LedgerUnavailableError as exc:  # the grant stands; a retry would get a new one, uncharged
                log.warning("could not store the answer for retries: %s", exc)
        served.labels(kind).inc()
        return Response(answer, media_type="application/json", headers=headers)

    async def s3_health(self) -> tuple[bool, float]:
        """(ok, latency ms) of a HEAD on the bucket, cached a few seconds: the healthcheck cannot flood S3."""
        checked_at, ok, latency = self._s3_health
        if time.monotonic() - checked_at < _S3_CHECK_CACHE_S:
            return ok, latency
        start = time.perf_counter()
        try:
            await asyncio.wait_for(run_in_threadpool(self._check_store), timeout=5)
            ok = True
        except Exception as exc:  # noqa: BLE001 - any failure is "not ok"; the reason goes to the log only
            log.warning("S3 health check failed: %s: %s", type(exc).__name__, exc)
            ok = False
        latency = round((time.perf_counter() - start) * 1000, 2)
        self._s3_health = (time.monotonic(), ok, latency)
        return ok, latency


def _limit_headers(admission: Admission) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(admission.limit), "X-RateLimit-Remaining": str(admission.remaining)}


def _structure_info(description: str) -> dict[str, str]:
    return {"folder_structure": FOLDER_STRUCTURE, "description": description}


def create_app(gateway: Gateway) -> FastAPI:
    """The FastAPI app over one :class:`Gateway`; the metagraph syncer runs for the app's lifetime."""
    settings = gateway.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        gateway.metagraph.start()
        try:
            yield
        finally:
            gateway.metagraph.stop()
            await gateway.ledger.close()

    app = FastAPI(
        title="Subnet 46 upload gateway",
        description=(
            "Signed access to the SN46 data bucket: presigned uploads for miners, presigned listings and "
            "downloads for validators. Sign the commitment string of each endpoint "
            "(see /commitment-formats), sign the body with X-Tao v2 headers, "
            "or, recommended, sign the whole request with btauth/1 (bittensor.http_auth)."
        ),
        version="2.0.0",
        lifespan=lifespan,
    )
    stats = RequestStats()
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[
                "Content-Type",
                "X-Bittensor-Version",
                "X-Bittensor-Hotkey",
                "X-Bittensor-Nonce",
                "X-Bittensor-Signature",
                "X-Bittensor-Receiver",
                "X-Bittensor-Crypto",
                *TAO_HEADERS,
            ],
        )
    app.add_middleware(CountRequests, stats=stats)
    gateway.metrics.install(app)

    @app.exception_handler(GatewayError)
    async def _gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        gateway.metrics.refusals.labels(exc.reason).inc()
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal error"}, status_code=500)

    def body_doc(model: type[BaseModel]) -> dict[str, Any]:
        schema = {"application/json": {"schema": model.model_json_schema()}}
        return {"requestBody": {"required": True, "content": schema}}

    p = gateway.presigner

    @app.post("/get-folder-access", openapi_extra=body_doc(MinerAccessRequest), tags=["miners"])
    async def get_folder_access(request: Request) -> Response:
        """A presigned POST for the caller's folder, and a listing URL of it."""

        async def build(fields: MinerAccessRequest, caller: Caller) -> dict[str, Any]:
            now = time.time()
            expires_in = settings.upload_expiry_s
            if fields.expiry is not None:
                expires_in = max(1, min(expires_in, int(fields.expiry - now)))
            folder = miner_folder(caller.hotkey)
            post = p.upload_post(caller.hotkey, fields.job_id, expires_in)
            return {
                "folder": p.key(folder),
                "url": post["url"],
                "fields": post["fields"],
                "expiry": _iso(now + expires_in),
                "expiry_seconds": expires_in,
                "list_url": p.list_url(folder, expires_in),
                "structure_info": _structure_info(
                    "Upload files to job_id folders within your hotkey directory under data/ prefix"
                ),
                "upload_rules": {
                    "key_prefix": p.upload_prefix(caller.hotkey, fields.job_id),
                    "min_bytes": p.min_bytes,
                    "max_bytes": p.max_bytes,
                },
            }

        return await gateway.serve(
            request,
            MinerAccessRequest,
            build,
            kind=MINER_FOLDER,
            validator=False,
            commitment=lambda f: f"s3:data:access:{f.coldkey}:{f.hotkey}:{f.timestamp}",
        )

    @app.post("/get-file-upload-url", openapi_extra=body_doc(FileUploadRequest), tags=["miners"])
    async def get_file_upload_url(request: Request) -> Response:
        """A presigned POST for one named parquet file of one job in the caller's folder (SN13's uploader).

        Signed with X-Tao (or btauth/1) headers. 400 for a name ingest would not read, 409 when the
        file is already there (uploaded files are never replaced); neither charges anything.
        """

        async def build(fields: FileUploadRequest, caller: Caller) -> dict[str, Any]:
            key = job_folder(caller.hotkey, fields.job_id) + fields.filename
            try:
                parsed = parse_upload_key(key)
            except InvalidUploadKeyError:
                parsed = None
            if parsed is None or parsed.format != PARQUET:
                raise GatewayError(400, "filename must be data_{YYYYmmdd_HHMMSS}_{rows}[_{16 hex}].parquet")
            if await run_in_threadpool(gateway.object_exists, key):
                raise GatewayError(409, f"File already exists: {p.key(key)}")
            expires_in = settings.upload_expiry_s
            post = p.file_post(p.key(key), expires_in)
            return {
                "s3_key": p.key(key),
                "url": post["url"],
                "fields": post["fields"],
                "expires_in_seconds": expires_in,
                "method": "POST",
            }

        return await gateway.serve(
            request, FileUploadRequest, build, kind=FILE_UPLOAD, validator=False, commitment=None
        )

    @app.post("/get-validator-access", openapi_extra=body_doc(ValidatorAccessRequest), tags=["validators"])
    async def get_validator_access(request: Request) -> Response:
        """Listing URLs over all miner data; pass ``continuation_token`` to get the next page's URL."""

        async def build(fields: ValidatorAccessRequest, caller: Caller) -> dict[str, Any]:
            expires_in = settings.url_expiry_s
            return {
                "bucket": p.bucket,
                "region": settings.region,
                "validator_hotkey": caller.hotkey,
                "expiry": _iso(time.time() + expires_in),
                "expiry_seconds": expires_in,
                "urls": {
                    "global": {
                        "list_all_data": p.list_url(
                            MINERS_PREFIX, expires_in, continuation_token=fields.continuation_token
                        ),
                    },
                    "miners": {"list_all_miners": p.list_url(MINERS_PREFIX, expires_in, delimiter="/")},
                },
                "structure_info": _structure_info(
                    "Job-based folder structure with explicit hotkey and job_id labels under data/ prefix"
                ),
            }

        return await gateway.serve(
            request,
            ValidatorAccessRequest,
            build,
            kind=VALIDATOR_LISTING,
            validator=True,
            commitment=lambda f: f"s3:validator:access:{f.timestamp}",
        )

    @app.post("/get-miner-specific-access", openapi_extra=body_doc(MinerSpecificRequest), tags=["validators"])
    @app.post("/get-miner-list", openapi_extra=body_doc(MinerSpecificRequest), tags=["validators"])
    async def get_miner_specific_access(request: Request) -> Response:
        """A listing URL of one miner's folder; pass ``continuation_token`` to get the next page's URL.

        ``/get-miner-list`` is the same endpoint under the name some validators page through.
        """

        async def build(fields: MinerSpecificRequest, _: Caller) -> dict[str, Any]:
            expires_in = settings.url_expiry_s
            folder = miner_folder(fields.miner_hotkey)
            url = p.list_url(folder, expires_in, continuation_token=fields.continuation_token)
            return {
                "bucket": p.bucket,
                "region": settings.region,
                "miner_hotkey": fields.miner_hotkey,
                "miner_url": url,
                "list_url": url,
                "prefix": p.key(folder),
                "expiry": _iso(time.time() + expires_in),
                "expiry_seconds": expires_in,
            }

        return await gateway.serve(
            request,
            MinerSpecificRequest,
            build,
            kind=MINER_LISTING,
            validator=True,
            commitment=lambda f: f"s3:validator:miner:{f.miner_hotkey}:{f.timestamp}",
        )

    @app.post("/get-file-presigned-urls", openapi_extra=body_doc(FileUrlsRequest), tags=["validators"])
    async def get_file_presigned_urls(request: Request) -> Response:
        """Presigned GETs for files inside one miner's folder; keys elsewhere are listed as invalid."""

        def in_folder(f: FileUrlsRequest) -> list[str]:
            folder = p.key(miner_folder(f.miner_hotkey))
            return [k for k in dict.fromkeys(f.file_keys) if k.startswith(folder) and k.isprintable()]

        def check(f: FileUrlsRequest) -> None:
            if len(f.file_keys) > settings.max_file_keys:
                raise GatewayError(400, f"At most {settings.max_file_keys} file_keys per request")
            if not in_folder(f):
                raise GatewayError(400, "No valid files for specified miner")

        async def build(fields: FileUrlsRequest, caller: Caller) -> dict[str, Any]:
            valid = in_folder(fields)
            invalid = [k for k in fields.file_keys if k not in set(valid)]
            expires_in = min(settings.url_expiry_s, (fields.expiry_hours or 1) * 3600)

            def sign_all() -> dict[str, dict[str, Any]]:
                return {
                    key: {
                        "presigned_url": p.download_url(key, expires_in),
                        "file_key": key,
                        "expires_in_seconds": expires_in,
                        "file_name": key.rsplit("/", 1)[-1],
                    }
                    for key in valid
                }

            # Hundreds of signatures take a while: keep the event loop free for other requests.
            file_urls = await run_in_threadpool(sign_all) if len(valid) > 16 else sign_all()
            return {
                "validator_hotkey": caller.hotkey,
                "miner_hotkey": fields.miner_hotkey,
                "bucket": p.bucket,
                "expiry_hours": expires_in / 3600,
                "expiry_time": _iso(time.time() + expires_in),
                "total_requested_files": len(fields.file_keys),
                "valid_files_count": len(valid),
                "invalid_files_count": len(invalid),
                "successful_urls": len(file_urls),
                "failed_files": 0,
                "file_urls": file_urls,
                "invalid_files": invalid,
            }

        return await gateway.serve(
            request,
            FileUrlsRequest,
            build,
            kind=FILE_URLS,
            validator=True,
            check=check,
            answer_first=False,
            commitment=lambda f: f"s3:validator:files:{f.miner_hotkey}:{f.hotkey}:{f.timestamp}",
        )

    @app.get("/healthcheck", tags=["service"])
    async def healthcheck() -> JSONResponse:
        """S3, ledger and metagraph status, and this worker's request counters."""
        (s3_ok, s3_latency), ledger_ok = await asyncio.gather(gateway.s3_health(), gateway.ledger.ping())
        metagraph = gateway.metagraph.status()
        healthy = s3_ok and ledger_ok and metagraph["loaded"]
        return JSONResponse(
            {
                "status": "ok" if healthy else "degraded",
                "timestamp": time.time(),
                "bucket": p.bucket,
                "region": settings.region,
                "folder_structure": FOLDER_STRUCTURE,
                "s3_ok": s3_ok,
                "s3_latency_ms": s3_latency,
                "redis_ok": ledger_ok if gateway.ledger.name == "redis" else None,
                "ledger": {"backend": gateway.ledger.name, "ok": ledger_ok},
                "metagraph": metagraph,
                "stats": stats.summary(),
            }
        )

    @app.get("/commitment-formats", tags=["service"])
    async def commitment_formats() -> dict[str, Any]:
        """How to sign each request."""
        return {
            **COMMITMENTS,
            "example_miner": "s3:data:access:5F3...coldkey:5H2...hotkey:1682345678",
            "example_validator": "s3:validator:access:1682345678",
            "example_miner_specific": "s3:validator:miner:5F3...miner_hotkey:1682345678",
            "signature": "sr25519 signature of the UTF-8 commitment by the hotkey, hex (0x optional)",
            "timestamp_window": {"max_age_s": settings.max_age_s, "max_future_s": settings.max_skew_s},
            "replay": "each signed request is granted once; sent again unchanged within its timestamp window "
            f"it gets the first answer back (header {REPEAT_HEADER}: true), uncharged; "
            "sent again with anything changed it is refused",
            "validator_rule": settings.validator_rule.describe(),
            "x_tao": {
                "headers": list(TAO_HEADERS),
                "version": "2",
                "signed_message": "sha256(body).hexdigest() + '.' + nonce + '.' + timestamp_ms",
                "signature": "base64 sr25519 signature by the X-Tao-Signed-By hotkey",
                "timestamp_window": {"max_age_s": settings.max_age_s, "max_future_s": settings.max_skew_s},
            },
            "btauth": {
                "recommended": True,
                "enabled": settings.gateway_hotkey is not None,
                "receiver_hotkey": settings.gateway_hotkey,
                "how": "bittensor.http_auth.sign(wallet, method='POST', path=<path>, "
                "body=<exact JSON bytes>, receiver_ss58=<receiver_hotkey>); "
                "send the headers with the same body, no signature fields",
            },
            "folder_structure": {"new_structure": FOLDER_STRUCTURE, "example_paths": list(EXAMPLE_PATHS)},
        }

    @app.get("/structure-info", tags=["service"])
    async def structure_info() -> dict[str, Any]:
        """Where uploads go and how the flow works."""
        return {
            "folder_structure": FOLDER_STRUCTURE,
            "example_paths": list(EXAMPLE_PATHS),
            "upload_flow": [
                "1. Get job IDs from Gravity, or zipcode assignments for the epoch",
                "2. Request an upload policy via POST /get-folder-access",
                (
                    "3. POST files to {url} with {fields} and a key in your folder: "
                    f"{job_folder('{hotkey}', '{job_id}')}{{file}} or {EPOCH_FOLDER_STRUCTURE}{{file}}"
                ),
            ],
            "upload_rules": {
                "key_prefix": miner_folder("{hotkey}"),
                "min_bytes": p.min_bytes,
                "max_bytes": p.max_bytes,
                "policy_expiry_s": settings.upload_expiry_s,
            },
        }

    @app.get("/rate-limits", tags=["service"])
    async def rate_limits() -> dict[str, Any]:
        """Daily quotas (UTC days) and today's global use."""
        return {
            "per_miner": settings.per_miner_limit,
            "per_validator": settings.per_validator_limit,
            "total": settings.total_limit,
            "total_used_today": await gateway.ledger.total_used(),
            "window": "UTC day",
            "resets_in_s": seconds_to_midnight(),
        }

    return app

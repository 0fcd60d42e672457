"""moto's S3 behind an IAM check, so tests can run real code under a role's policy.

moto's own IAM enforcement cannot be used for this: it ignores conditions
(``s3:prefix``) and authorises HeadBucket as ``s3:HeadBucket``, an action
AWS does not have. This gate sits in front of moto's WSGI app instead:

1. it reads the access key of each request (SigV4 header, presigned URL or
   presigned POST form) and looks up that key's policy; keys without a policy
   (the test's own set-up credentials) pass unchecked;
2. it turns the REST request into the authorisations S3 performs for it
   (the table in :func:`authorisations`, after AWS's "Required permissions for
   Amazon S3 API operations"), with the request's ``s3:prefix``;
3. it evaluates them with :func:`sn46_pipelines.infra.evaluate` and answers
   403 AccessDenied, as S3 would, or forwards to moto;
4. like S3, it turns moto's 404 for a missing object into 403 unless the
   caller may list the bucket. Which context S3 uses for that check is not
   documented, so the gate demands both readings: no ``s3:prefix``, and
   ``s3:prefix`` equal to the key.

A request it cannot classify is refused with 501 so a test never passes by
accident. Every decision is logged for the assertions.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

from sn46_pipelines.infra import Decision, Request, evaluate

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

#: Bucket sub-resources: (method, query key) -> IAM action.
_BUCKET_SUBRESOURCES = {
    ("GET", "encryption"): "s3:GetEncryptionConfiguration",
    ("PUT", "encryption"): "s3:PutEncryptionConfiguration",
    ("DELETE", "encryption"): "s3:PutEncryptionConfiguration",
    ("GET", "lifecycle"): "s3:GetLifecycleConfiguration",
    ("PUT", "lifecycle"): "s3:PutLifecycleConfiguration",
    ("DELETE", "lifecycle"): "s3:PutLifecycleConfiguration",
    ("GET", "cors"): "s3:GetBucketCORS",
    ("PUT", "cors"): "s3:PutBucketCORS",
    ("DELETE", "cors"): "s3:PutBucketCORS",
    ("GET", "versioning"): "s3:GetBucketVersioning",
    ("PUT", "versioning"): "s3:PutBucketVersioning",
    ("GET", "publicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("GET", "policy"): "s3:GetBucketPolicy",
    ("PUT", "policy"): "s3:PutBucketPolicy",
    ("DELETE", "policy"): "s3:DeleteBucketPolicy",
    ("GET", "location"): "s3:GetBucketLocation",
    ("GET", "uploads"): "s3:ListBucketMultipartUploads",
    ("GET", "versions"): "s3:ListBucketVersions",
}
_IGNORED_QUERY = {
    "x-id",
    "list-type",
    "encoding-type",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
}


class Unmodelled(Exception):
    """The gate does not know which permissions S3 checks for this request."""


@dataclass(frozen=True)
class Call:
    """One request the gate decided on."""

    key_id: str
    operation: str
    checks: tuple[tuple[Request, Decision], ...]
    status: int

    @property
    def allowed(self) -> bool:
        return all(decision.allowed for _, decision in self.checks)


@dataclass(frozen=True)
class S3Request:
    method: str
    bucket: str
    key: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, str]


def authorisations(r: S3Request) -> tuple[str, list[Request]]:
    """The S3 operation a REST request is, and every authorisation S3 performs for it."""
    bucket_arn = f"arn:aws:s3:::{r.bucket}"
    subresources = set(r.query) - _IGNORED_QUERY
    if not r.bucket:
        raise Unmodelled(f"{r.method} on the service endpoint")
    if not r.key:
        for sub in subresources:
            if (r.method, sub) in _BUCKET_SUBRESOURCES:
                action = _BUCKET_SUBRESOURCES[(r.method, sub)]
                return action.removeprefix("s3:"), [Request(action, bucket_arn, _listing_context(r.query))]
        if r.method == "HEAD" and not subresources:
            return "HeadBucket", [Request("s3:ListBucket", bucket_arn)]
        if r.method in ("PUT", "DELETE") and not subresources:
            operation = "CreateBucket" if r.method == "PUT" else "DeleteBucket"
            return operation, [Request(f"s3:{operation}", bucket_arn)]
        if r.method == "GET" and subresources <= {
            "prefix",
            "delimiter",
            "max-keys",
            "continuation-token",
            "start-after",
            "fetch-owner",
            "marker",
        }:
            return "ListObjects", [Request("s3:ListBucket", bucket_arn, _listing_context(r.query))]
        if r.method == "POST" and subresources == {"delete"}:
            keys = [
                el.text or ""
                for el in ElementTree.fromstring(r.form["body"]).iter()
                if el.tag.endswith("Key")
            ]
            return "DeleteObjects", [Request("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys]
        if r.method == "POST" and not subresources and "key" in r.form:
            key = r.form["key"]
            checks = [Request("s3:PutObject", f"{bucket_arn}/{key}")]
            if "acl" in r.form:
                checks.append(Request("s3:PutObjectAcl", f"{bucket_arn}/{key}"))
            return "PostObject", checks
        raise Unmodelled(f"{r.method} /{r.bucket}?{'&'.join(sorted(subresources))}")
    object_arn = f"{bucket_arn}/{r.key}"
    if r.method in ("GET", "HEAD") and not subresources:
        return ("HeadObject" if r.method == "HEAD" else "GetObject"), [Request("s3:GetObject", object_arn)]
    if r.method == "PUT" and subresources in (set(), {"partNumber", "uploadId"}):
        operation = "UploadPart" if subresources else "PutObject"
        checks = [Request("s3:PutObject", object_arn)]
        if "x-amz-copy-source" in r.headers:
            source = unquote(r.headers["x-amz-copy-source"]).lstrip("/")
            if "?" in source:
                raise Unmodelled(f"copy of a version: {source}")
            checks.insert(0, Request("s3:GetObject", f"arn:aws:s3:::{source}"))
            operation = operation.replace("Put", "Copy").replace("UploadPart", "UploadPartCopy")
        if any(h.startswith("x-amz-grant-") or h == "x-amz-acl" for h in r.headers):
            checks.append(Request("s3:PutObjectAcl", object_arn))
        if "x-amz-tagging" in r.headers:
            checks.append(Request("s3:PutObjectTagging", object_arn))
        return operation, checks
    if r.method == "POST" and subresources in ({"uploads"}, {"uploadId"}):
        operation = "CreateMultipartUpload" if "uploads" in subresources else "CompleteMultipartUpload"
        return operation, [Request("s3:PutObject", object_arn)]
    if r.method == "GET" and subresources == {"uploadId"}:
        return "ListParts", [Request("s3:ListMultipartUploadParts", object_arn)]
    if r.method == "DELETE" and subresources == {"uploadId"}:
        return "AbortMultipartUpload", [Request("s3:AbortMultipartUpload", object_arn)]
    if r.method == "DELETE" and not subresources:
        return "DeleteObject", [Request("s3:DeleteObject", object_arn)]
    raise Unmodelled(f"{r.method} /{r.bucket}/{r.key}?{'&'.join(sorted(subresources))}")


def _listing_context(query: dict[str, list[str]]) -> dict[str, str]:
    return {f"s3:{name}": query[name][0] for name in ("prefix", "delimiter", "max-keys") if name in query}


class IamGate:
    """A WSGI server: moto's S3 app behind :func:`authorisations` and the policies of ``policies``."""

    def __init__(self, policies: dict[str, dict[str, Any]]) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.policies = policies
        self.calls: list[Call] = []
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._lock = threading.Lock()

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()

    # -- what tests look at ------------------------------------------------------------------
    def of(self, key_id: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.key_id == key_id]

    def denied(self, key_id: str) -> list[Call]:
        return [c for c in self.of(key_id) if not c.allowed]

    def statements_used(self, key_id: str) -> set[str]:
        return {d.statement for c in self.of(key_id) for _, d in c.checks if d.allowed and d.statement}

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- WSGI --------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        # The server hands over the socket itself: read exactly the body, or to the end of a chunked one.
        length = environ.get("CONTENT_LENGTH")
        body = stream.read() if environ.get("wsgi.input_terminated") else stream.read(int(length or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        request = _parse(environ, body)
        key_id = _access_key(environ, request)
        policy = self.policies.get(key_id or "")
        if key_id is not None and policy is None:
            return self._moto(environ, start_response)  # the test's own set-up credentials
        try:
            operation, requests = authorisations(request)
        except Unmodelled as exc:
            start_response("501 Not Implemented", [("Content-Type", "text/plain")])
            self._log(Call(key_id or "(anonymous)", f"unmodelled: {exc}", (), 501))
            return [f"iam gate: unmodelled request: {exc}".encode()]
        checks = [(r, evaluate(policy, r) if policy else Decision(False)) for r in requests]
        if not all(d.allowed for _, d in checks):
            self._log(Call(key_id or "(anonymous)", operation, tuple(checks), 403))
            return _denied(start_response, request.method, operation)
        status, headers, chunks = _forward(self._moto, environ)
        if status.startswith("404") and operation in ("GetObject", "HeadObject"):
            bucket_arn = f"arn:aws:s3:::{request.bucket}"
            listing = [
                Request("s3:ListBucket", bucket_arn),
                Request("s3:ListBucket", bucket_arn, {"s3:prefix": request.key}),
            ]
            checks += [(r, evaluate(policy, r)) for r in listing]  # type: ignore[arg-type]
            if not all(d.allowed for _, d in checks):
                self._log(Call(key_id or "(anonymous)", operation, tuple(checks), 403))
                return _denied(start_response, request.method, operation)
        self._log(Call(key_id or "(anonymous)", operation, tuple(checks), int(status[:3])))
        start_response(status, headers)
        return [chunks]

    def _log(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def _parse(environ: dict[str, Any], body: bytes) -> S3Request:
    raw = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    path = unquote(raw.encode("latin-1").decode("utf-8").split("?", 1)[0]).lstrip("/")
    bucket, _, key = path.partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
    form: dict[str, str] = {"body": body.decode("utf-8", "replace")} if "delete" in query else {}
    if environ["REQUEST_METHOD"] == "POST" and environ.get("CONTENT_TYPE", "").startswith(
        "multipart/form-data"
    ):
        from werkzeug.formparser import parse_form_data

        copy = {**environ, "wsgi.input": io.BytesIO(body)}
        _, fields, files = parse_form_data(copy)
        form = {k.lower(): v for k, v in fields.items()}
        upload = files.get("file")
        if "key" in form and upload is not None:
            form["key"] = form["key"].replace("${filename}", upload.filename or "")
    return S3Request(environ["REQUEST_METHOD"], bucket, key, query, headers, form)


def _access_key(environ: dict[str, Any], request: S3Request) -> str | None:
    for source in (
        environ.get("HTTP_AUTHORIZATION", ""),
        f"Credential={request.query.get('X-Amz-Credential', [''])[0]}",
        f"Credential={request.form.get('x-amz-credential', '')}",
    ):
        match = _CREDENTIAL.search(source)
        if match:
            return match.group(1)
    return None


def _forward(app: Callable, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured.update(status=status, headers=headers)

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return captured["status"], captured["headers"], body


def _denied(start_response: Callable, method: str, operation: str) -> list[bytes]:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        b"<Message>Access Denied (iam gate: " + operation.encode() + b")</Message></Error>"
    )
    start_response(
        "403 Forbidden",
        [
            ("Content-Type", "application/xml"),
            ("Content-Length", "0" if method == "HEAD" else str(len(body))),
        ],
    )
    return [] if method == "HEAD" else [body]

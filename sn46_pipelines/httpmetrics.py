"""Prometheus metrics of the project's HTTP apps (the upload gateway and the inference server).

Each app owns one :class:`HttpMetrics`: its own ``CollectorRegistry`` rather
than prometheus_client's global one, so several apps built in one process
(tests, a benchmark) never register the same series twice.

Latency and request counts are labelled by the route's template
(``/get-folder-access``), never the raw path: a client choosing paths cannot
grow the number of series, and paths no route matches share one label.

Several worker processes (``sn46 gateway --workers 2``): a scrape reaches one
worker, so in-process counters would show that worker's share only. When
``PROMETHEUS_MULTIPROC_DIR`` is set before the process starts,
prometheus_client keeps every value in a memory-mapped file of that folder
instead, one per worker, and ``/metrics`` reads all of them through a
``MultiProcessCollector`` on a fresh registry: every worker answers with the
sums over all workers. The folder must be emptied before the workers start
(``sn46 gateway`` does it), or the last run's counts would be added in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

#: prometheus_client's switch to multiprocess mode: a folder shared by the worker processes.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The route label of requests no route matched (a template always starts with ``/``).
UNMATCHED = "unmatched"
#: Methods labelled as themselves; any other token a client sends is ``other``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpMetrics:
    """One app's registry: request latency and counts by route, method and status, and the app's own.

    ``namespace`` prefixes every name (``sn46_gateway``, ``sn46_inference``).
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        #: Read here, as prometheus_client reads it on import: set it before the process starts.
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry()
        self._live: list[Collector] = []
        labels = ("route", "method", "status")
        self.latency = Histogram(
            f"{namespace}_http_request_duration_seconds",
            "Seconds from a request's arrival to its last response byte, by route template.",
            labels,
            registry=self.registry,
        )
        self.requests = Counter(
            f"{namespace}_http_requests",
            "HTTP requests answered, by route template.",
            labels,
            registry=self.registry,
        )

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        """A counter ``{namespace}_{name}_total`` in this registry."""
        return Counter(f"{self.namespace}_{name}", documentation, labels, registry=self.registry)

    def add_live(self, collector: Collector) -> None:
        """A collector that reads this process's state at scrape time (no stored values, so no files).

        In multiprocess mode it describes the worker that answers the scrape.
        """
        self.registry.register(collector)
        self._live.append(collector)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request; a method outside the usual ones is ``other``, so clients add no series."""
        method = method if method in _METHODS else "other"
        labels = (route, method, str(status))
        self.latency.labels(*labels).observe(seconds)
        self.requests.labels(*labels).inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its content type: the text format, or OpenMetrics when ``accept`` asks."""
        registry = self.registry
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            for collector in self._live:
                registry.register(collector)
        encode, content_type = choose_encoder(accept)
        return encode(registry), content_type

    def install(self, app: FastAPI) -> None:
        """Time every request of ``app`` and serve ``GET /metrics`` from it."""
        app.add_middleware(TimeRequests, metrics=self)

        @app.get("/metrics", tags=["service"], include_in_schema=False)
        def metrics(request: Request) -> Response:
            """Prometheus scrape (text format; OpenMetrics when the Accept header asks for it)."""
            body, content_type = self.exposition(request.headers.get("accept", ""))
            return Response(body, headers={"Content-Type": content_type})


class TimeRequests:
    """Pure ASGI middleware: one observation per HTTP request, labelled by the route that matched.

    The observation is made before the last body chunk goes out, so a client
    that has the whole answer finds it counted by its next scrape, whichever
    worker takes that.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status, recorded = 500, False  # 500: the app raised before answering

        def record() -> None:
            nonlocal recorded
            recorded = True
            route = getattr(scope.get("route"), "path", None) or UNMATCHED  # the router sets scope["route"]
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not recorded:
                record()

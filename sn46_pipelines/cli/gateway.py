"""``sn46 gateway [--host H] [--port P] [--workers N]``: serve the upload gateway with uvicorn.

Nothing heavy is imported until the handler runs, so ``sn46 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..logs import add_logging_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="serve the upload gateway (the SN46 S3 auth API)",
        description="Serve the upload gateway. Configuration comes from SN46_ENV and the variables "
        "documented in docs/gateway.md (S3_BUCKET, REDIS_URL, SN46_METAGRAPH_FILE, ...).",
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The gateway's options and handler (shared with ``python -m sn46_pipelines.gateway``)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    add_logging_arguments(parser)
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Validate the settings and read the store's secret here (one clear error line), then run uvicorn."""
    import uvicorn

    from ..gateway.settings import load_gateway_settings
    from ..logs import configure_logging

    env = getattr(args, "env", None)  # `sn46 --env`; absent under `python -m sn46_pipelines.gateway`
    settings = load_gateway_settings(env)
    # A missing secret: one line here, not a traceback per worker.
    settings.environment.object_store_credentials()
    log_config = configure_logging(args.log_level, args.log_format)
    if settings.redis_url is None and args.workers > 1:
        print(f"sn46 gateway: {args.workers} workers share the SQLite ledger at {settings.state_db}")
    with _worker_variables(env), _metrics_folder(args.workers):
        uvicorn.run(
            "sn46_pipelines.gateway.service:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            server_header=False,
            log_config=log_config,
        )
    return 0


@contextlib.contextmanager
def _worker_variables(env: str | None) -> Iterator[None]:
    """``SN46_ENV`` set to ``env`` while uvicorn runs, when ``--env`` named one.

    The app is built by ``app_from_env`` in each worker, a process that
    reads its settings from the variables it inherits: this is how the
    workers learn the environment the command was given. The variable is
    restored when the server stops.
    """
    if not env:
        yield
        return
    previous = os.environ.get("SN46_ENV")
    os.environ["SN46_ENV"] = env
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SN46_ENV"]
        else:
            os.environ["SN46_ENV"] = previous


@contextlib.contextmanager
def _metrics_folder(workers: int) -> Iterator[None]:
    """The folder where the workers' metrics meet (``PROMETHEUS_MULTIPROC_DIR``), ready before they start.

    uvicorn's workers are new processes that inherit the environment, so
    setting the variable here puts every worker in multiprocess mode. A
    folder the deployment names is created or emptied of the last run's
    files (kept, they would be added to this run's counts); with several
    workers and none named, a temporary one is used and removed at exit, so
    ``/metrics`` sums every worker rather than showing the share of whichever
    worker answers the scrape.
    """
    from ..httpmetrics import MULTIPROC_ENV as variable

    configured = os.environ.get(variable)
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # prometheus_client's files: {kind}_{pid}.db
            stale.unlink()
        yield
    elif workers > 1:
        with tempfile.TemporaryDirectory(prefix="sn46-gateway-metrics-") as folder_name:
            os.environ[variable] = folder_name
            try:
                yield
            finally:
                del os.environ[variable]
    else:
        yield

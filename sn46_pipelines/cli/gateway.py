"""``sn46 gateway [--host H] [--port P] [--workers N]``: serve the upload gateway with uvicorn.

Nothing heavy is imported until the handler runs, so ``sn46 --help`` stays fast.
"""

from __future__ import annotations

import argparse

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

    settings = load_gateway_settings()
    # A missing secret: one line here, not a traceback per worker.
    settings.environment.object_store_credentials()
    log_config = configure_logging(args.log_level, args.log_format)
    if settings.redis_url is None and args.workers > 1:
        print(f"sn46 gateway: {args.workers} workers share the SQLite ledger at {settings.state_db}")
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

"""``sn46 serve [--pin prod]``: the price-model inference server (see docs/training.md).

Nothing heavy is imported until the handler runs, so ``sn46 --help`` stays fast.
"""

from __future__ import annotations

import argparse

from ..logs import add_logging_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the price model over HTTP (POST /predict, GET /health), hot-swapping on pin moves",
        description="Serve the model the environment's inference settings name (pin or head), polling the "
        "model store and swapping to a new version without failing requests in flight.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--pin", help="serve what this pin points at (default: the environment's inference.pin)"
    )
    target.add_argument("--version", help="serve one fixed version (v0000000012, 12 or head)")
    parser.add_argument("--store", help="model store URL (default: the environment's model_store)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument(
        "--poll-interval", type=float, help="seconds between pin checks (default: the environment's)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per request (default 1: requests run in parallel instead)",
    )
    add_logging_arguments(parser)
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: /predict may take thousands a second)",
    )
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Check the target once (a fixed version that cannot be served is refused here, exit 2), then serve."""
    import torch
    import uvicorn

    from ..config import load_settings
    from ..logs import configure_logging
    from ..modelstore import InferenceClient, ModelStore
    from ..pricemodel.predictor import load_predictor
    from ..pricemodel.serve import create_app, serve_target

    log_config = configure_logging(args.log_level, args.log_format)
    settings = load_settings(args.env)
    torch.set_num_threads(max(1, args.threads))
    # Through Settings.open_store, so a --store URL signs with the environment's object-store keys too.
    store = ModelStore(settings.open_store(args.store or settings.model_store))
    client = InferenceClient(
        store,
        serve_target(settings.inference, pin=args.pin, version=args.version),
        loader=load_predictor,
        poll_interval=args.poll_interval or settings.inference.poll_interval,
    )
    waiting = client.check_target()
    print(f"sn46 serve: {client.target} from {store.url} on http://{args.host}:{args.port}", flush=True)
    if waiting:
        print(f"sn46 serve: {waiting}; /predict answers 503 until then", flush=True)
    uvicorn.run(
        create_app(client),
        host=args.host,
        port=args.port,
        log_config=log_config,
        access_log=args.access_log,
        server_header=False,
    )
    return 0

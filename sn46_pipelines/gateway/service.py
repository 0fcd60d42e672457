"""Wiring: settings to a running app (store, presigner, ledger, metagraph syncer).

:func:`app_from_env` is the factory uvicorn imports in every worker process,
so each worker builds its own clients after the fork.
"""

from __future__ import annotations

from botocore.exceptions import NoCredentialsError
from fastapi import FastAPI

from ..config import ConfigError
from ..objectstore import open_store
from ..objectstore.s3 import S3ObjectStore
from .app import Gateway, create_app
from .ledger import open_ledger
from .metagraph import MetagraphSyncer, chain_source, file_source
from .presign import Presigner
from .settings import GatewaySettings, load_gateway_settings


def build_gateway(settings: GatewaySettings) -> Gateway:
    """Open the store, ledger and metagraph source that ``settings`` name; contacts no server yet.

    The store's client, and so every presigned POST and URL, signs with the
    environment's object-store keys (Secrets Manager where the environment
    says so, else boto3's chain), like every other store of the project; a
    URL signed with a role's session token would die with that token before
    its expiry. A missing or unreadable secret is a
    :class:`~sn46_pipelines.secrets.SecretError` and the worker does not start.
    """
    credentials = settings.environment.object_store_credentials()
    store = open_store(
        settings.data_store,
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        credentials=credentials,
    )
    assert isinstance(store, S3ObjectStore)  # load_gateway_settings only accepts s3:// stores
    try:
        presigner = Presigner(
            store.client,
            store.bucket,
            store.prefix,
            min_bytes=settings.upload_min_bytes,
            max_bytes=settings.upload_max_bytes,
        )
    except NoCredentialsError:
        raise ConfigError(
            "no AWS credentials to presign with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "a profile, or a task role"
        ) from None
    if settings.metagraph_file is not None:
        source = file_source(settings.metagraph_file, settings.netuid)
        name = f"file:{settings.metagraph_file}"
    else:
        source = chain_source(settings.network, settings.netuid, settings.validator_stake)
        name = f"chain:{settings.network}"
    metagraph = MetagraphSyncer(source, settings.metagraph_refresh_s, name)
    ledger = open_ledger(settings.redis_url, settings.state_db)
    return Gateway(settings, presigner, ledger, metagraph, store.check, store.exists)


def app_from_env() -> FastAPI:
    """The app configured from the environment (``SN46_ENV`` and the gateway variables)."""
    return create_app(build_gateway(load_gateway_settings()))

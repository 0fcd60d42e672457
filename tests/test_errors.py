"""The error hierarchy: outages are marked as such, misconfiguration is not an outage, exit codes by class."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sn46_pipelines.errors import (
    EXIT_TEMPORARY,
    EXIT_USAGE,
    ConfigError,
    SN46Error,
    TransientError,
    exit_code,
    is_transient,
)
from sn46_pipelines.infra.errors import InfraError
from sn46_pipelines.secrets import (
    MalformedSecretError,
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretUnavailableError,
)


@pytest.mark.parametrize("error", [SecretNotFoundError, SecretAccessDeniedError, MalformedSecretError])
def test_a_secret_someone_must_fix_is_misconfiguration_not_an_outage(error):
    assert issubclass(error, ConfigError) and not issubclass(error, TransientError)
    assert exit_code(error("x")) == EXIT_USAGE


def test_secrets_manager_out_of_reach_is_an_outage_not_misconfiguration():
    assert issubclass(SecretUnavailableError, TransientError)
    assert not issubclass(SecretUnavailableError, ConfigError)
    assert exit_code(SecretUnavailableError("x")) == EXIT_TEMPORARY


def test_an_infrastructure_error_is_no_value_error():
    assert issubclass(InfraError, SN46Error) and not issubclass(InfraError, ValueError)


def test_a_bug_has_no_exit_code_and_is_not_transient():
    assert exit_code(ValueError("a bug")) is None
    assert exit_code(KeyError("a bug")) is None
    assert not is_transient(RuntimeError("a bug"))


def test_an_outage_is_found_through_the_errors_raised_from_it():
    try:
        try:
            raise SecretUnavailableError("cannot reach Secrets Manager")
        except SecretUnavailableError as exc:
            raise RuntimeError("opening the store failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)


def test_the_errors_module_imports_nothing_of_the_project():
    code = "import sys, sn46_pipelines.errors; print(sorted(m for m in sys.modules if m.startswith('sn46')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['sn46_pipelines', 'sn46_pipelines.errors']"


def test_object_and_model_store_errors_are_apart_and_only_outages_are_retried():
    from sn46_pipelines.modelstore import ModelStoreError, StoreBusyError
    from sn46_pipelines.modelstore.errors import IntegrityError
    from sn46_pipelines.objectstore import (
        AccessDeniedError,
        ObjectStoreError,
        StoreOutageError,
        StoreUnavailableError,
    )

    assert issubclass(ObjectStoreError, SN46Error) and issubclass(ModelStoreError, SN46Error)
    assert not issubclass(ModelStoreError, ObjectStoreError)  # a corrupt chain is no store failure
    assert is_transient(StoreOutageError("s3://b: ReadTimeoutError")) and is_transient(
        StoreBusyError("lease held")
    )
    # Someone must fix these: asking again for five minutes would only delay the page.
    for error in (
        AccessDeniedError("access denied"),
        StoreUnavailableError("bucket does not exist"),
        IntegrityError("hash mismatch"),
    ):
        assert not is_transient(error) and exit_code(error) == EXIT_USAGE
    assert exit_code(StoreOutageError("down")) == EXIT_TEMPORARY


def test_an_unreachable_s3_endpoint_is_an_outage(monkeypatch):
    import socket

    from sn46_pipelines.objectstore import StoreOutageError, open_store

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreOutageError, match="EndpointConnectionError"):
        open_store("s3://no-server-here/data").get("key")

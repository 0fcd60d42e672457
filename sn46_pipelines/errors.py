"""The project's error hierarchy, and the exit code the ``sn46`` command gives each kind.

Two questions decide what happens to an error, and each has one class to ask:

- *Will asking again help?* :class:`TransientError` marks an outage (a store,
  Secrets Manager or Redis out of reach, a throttled request). Retry
  policies, the upload sensor and the CLI's exit code read this marker and
  nothing else, so retrying is decided by inclusion: an error is retried
  only when its class says it is an outage.
- *Must a person fix something?* :class:`ConfigError` is a deployment that
  cannot work as configured (a field, a variable, a missing secret, a denied
  permission); the message names the field and where its value came from.

Every other :class:`SN46Error` is an answer about the data (a corrupt chain,
a refused upload, a conflict): reported, never retried blindly. Anything that
is not an :class:`SN46Error` is a bug and keeps its traceback.

This module imports nothing, so every package (the object store included)
can build on it without an import cycle.
"""

from __future__ import annotations

#: ``sn46`` exit codes, by class: the first entry the error is an instance of wins.
#: 75 is ``EX_TEMPFAIL`` from sysexits.h: a supervisor (cron, systemd, a CI step) may try again.
EXIT_OK = 0
#: A check ran and found a problem (an invalid chain, a replica out of sync, a denied request).
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_TEMPORARY = 75


class SN46Error(Exception):
    """Root of every error this project raises on purpose."""


class TransientError(SN46Error):
    """An outage: the same call may succeed later, so retry policies retry it (and only it)."""


class ConfigError(SN46Error, ValueError):
    """The configuration cannot be used; the message names the field and its source.

    Also a :class:`ValueError` because it is raised for values (pydantic
    validators and callers treat it as one); commands catch it as an
    :class:`SN46Error`, never as a bare ``ValueError``.
    """


class UsageError(SN46Error):
    """The command line asks for something that cannot be done as written (the message says how)."""


def exit_code(error: BaseException) -> int | None:
    """The exit code ``sn46`` gives ``error``, or None for a bug (which keeps its traceback).

    Outages get :data:`EXIT_TEMPORARY`; every other deliberate error (bad
    configuration, an unusable store, a refused operation) :data:`EXIT_USAGE`.
    """
    if isinstance(error, TransientError):
        return EXIT_TEMPORARY
    if isinstance(error, SN46Error):
        return EXIT_USAGE
    return None


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is an outage worth retrying."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TransientError):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False

"""Which handler failures mean "infrastructure unavailable" (retried, never dead-lettered)."""

from __future__ import annotations

import errno

import asyncpg
import pytest
import redis.exceptions

from shared.kafka import is_transient

pytestmark = pytest.mark.unit


def _caused(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as final:
        return final


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
        ConnectionResetError(),
        TimeoutError(),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.InterfaceError("pool is closing"),
        redis.exceptions.ConnectionError("Error 111 connecting"),
        _caused(RuntimeError("effect failed"), ConnectionRefusedError()),
    ],
)
def test_infrastructure_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("handler bug"),
        ValueError("bad amount"),
        KeyError("customer"),
        FileNotFoundError(errno.ENOENT, "font missing"),  # an OSError, but retrying cannot fix it
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
        _caused(RuntimeError("effect failed"), ValueError("bad")),
    ],
)
def test_message_and_programming_errors_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)

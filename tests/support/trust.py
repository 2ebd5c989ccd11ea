"""Tests act as aqsha's outside systems: they sign what they produce with the session's test keys.

``tests/conftest.py`` generates a keyring of every principal per session (``AQSHA_TRUST_*``); this
module reads it. ``envelope(payload)`` names the principal that would send ``payload`` in
production (``shared.trust.producer_for``) as its producer; ``signed(...)`` gives the headers for a
record, as that principal unless another is named; ``publish(...)`` publishes an envelope signed.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.contracts.base import Contract
from shared.contracts.envelope import Envelope, encode, envelope_headers, new_envelope
from shared.settings import TrustSettings
from shared.trust import Keyring, TrustRegistry, load_registry, producer_for


@functools.cache
def keyring() -> Keyring:
    """Signers of every principal: the session's test keys."""
    return Keyring.from_dir(Path(os.environ["AQSHA_TRUST_KEYS_DIR"]))


def platform_keyring(platform: Any) -> Keyring:
    """Signers of every principal of a prepared ``shared.ops.platform.Platform``: the keyring its
    settings point at (the run's fresh one, or the test session's when tests started it). For the
    chaos and bench drivers, which act for the outside systems of the platform they run.
    """
    keys_dir = platform.settings().trust.keys_dir
    if keys_dir is None:
        raise RuntimeError("the platform has no signing keys yet: call prepare() first")
    return Keyring.from_dir(Path(keys_dir))


def registry() -> TrustRegistry:
    """The session's trust registry (the public side of ``keyring()``)."""
    return load_registry(TrustSettings())


def envelope(payload: Contract, *, producer: str | None = None, **kwargs: Any) -> Envelope[Any]:
    """``new_envelope`` with the producer that would send ``payload`` (or ``producer``)."""
    kwargs.setdefault("occurred_at", datetime.now(UTC))
    return new_envelope(payload, producer=producer or producer_for(payload), **kwargs)


def signed(topic: str, key: bytes | None, value: bytes, principal: str) -> dict[str, str]:
    """The signature headers of a record ``principal`` writes to the concrete ``topic``."""
    return keyring().signer(principal).sign(topic, key, value)


def signed_list(topic: str, key: bytes | None, value: bytes, principal: str) -> list[tuple[str, bytes]]:
    """``signed`` in aiokafka's header-list form."""
    return [(k, v.encode()) for k, v in signed(topic, key, value, principal).items()]


def record(env: Envelope[Any], topic: str) -> tuple[bytes, bytes, dict[str, str]]:
    """Value, key and headers (envelope headers plus the signature of ``env.producer``) for ``topic``."""
    value = encode(env)
    key = env.key.encode()
    return value, key, {**envelope_headers(env), **signed(topic, key, value, env.producer)}


async def publish(broker: Any, env: Envelope[Any], topic: str) -> Any:
    """Publish ``env`` signed to the concrete ``topic`` through a FastStream broker."""
    value, key, headers = record(env, topic)
    return await broker.publish(value, topic=topic, key=key, headers=headers)

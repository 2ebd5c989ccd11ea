"""Inbox: each consumer group records the event ids it processed, in the handler's transaction.

``claim`` returns False for an event this group already processed, so a redelivery (Kafka's
at-least-once, a relay republishing after a crash, an operator's DLQ redrive) has no effect. The
row and the effects commit or roll back together; the Kafka offset is committed afterwards.

TEST-ONLY switch: ``AQSHA_TEST_DISABLE_INBOX=1`` in a process's environment makes every claim
succeed (a redelivered event runs its effects again). It exists only so the chaos suite
(``tests/chaos``, docs/chaos.md) can prove its auditor notices a broken inbox. Default off; when
on, every ``Inbox`` logs an ERROR at construction. Never set it anywhere else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from shared.contracts.envelope import Envelope
from shared.db import Conn

T = TypeVar("T")

log = logging.getLogger("aqsha.inbox")

#: Test-only mutation switch (module docstring). Read at import, i.e. once per process.
TEST_DISABLE_ENV = "AQSHA_TEST_DISABLE_INBOX"
DISABLED_FOR_TEST: bool = os.environ.get(TEST_DISABLE_ENV, "") not in ("", "0")


class Inbox:
    """The processed-events table of one consumer group."""

    def __init__(self, group: str) -> None:
        self.group = group
        if DISABLED_FOR_TEST:
            log.error(
                "TEST-ONLY %s=1: the inbox is DISABLED, redelivered events run again (never in production)",
                TEST_DISABLE_ENV,
                extra={"consumer_group": group},
            )

    async def claim(self, conn: Conn, envelope: Envelope[Any]) -> bool:
        """Record the event as processed; False if this group had already processed it."""
        row = await conn.fetchval(
            "INSERT INTO inbox(consumer_group, event_id, event_type) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            self.group,
            envelope.event_id,
            envelope.type,
        )
        return True if DISABLED_FOR_TEST else bool(row)

    async def once(
        self,
        pool: asyncpg.Pool,
        envelope: Envelope[Any],
        effect: Callable[[Conn], Awaitable[T]],
    ) -> T | None:
        """Run ``effect`` in one transaction with the claim; None (no effect) for a duplicate."""
        async with pool.acquire() as conn, conn.transaction():
            if not await self.claim(conn, envelope):
                return None
            return await effect(conn)

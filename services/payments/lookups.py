"""Checking the debt (seed 000, "Checkskuld"): ``LookupDebt`` → ``DebtLookedUp`` or ``DebtLookupFailed``.

"Enter the personal account number, then the debt is shown, and for some services the owner's name
and address too." The provider adapter answers (``ProviderAdapter.lookup``; the simulator reads
``provider_simulator.toml``); payments replies on ``aqsha.payments.events`` with the command's
``request_id``, which is all a client needs to correlate the answer.

A lookup changes no balance and writes no payment. It is still run once per ``request_id`` through
the same ``IdempotencyGuard`` as every payments command (scope ``payments``): a redelivered or resent
lookup replays the stored reply byte for byte (same event id, same debt, even if the provider's
figure changed since), and a different command under the same id is answered
``DebtLookupFailed(IDEMPOTENCY_CONFLICT)`` (not stored). ``iin_required`` tells the app whether a
``PayService`` to this provider must carry the payer's IIN (``identity.toml``).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from services.payments import store
from services.payments.domain import IinRules
from services.payments.provider import ProviderAdapter, ProviderUnavailable
from shared.clock import Clock
from shared.contracts.common import ReasonCode, ServiceCategory
from shared.contracts.envelope import Envelope, decode, encode, new_envelope
from shared.contracts.payments import DebtLookedUp, DebtLookupFailed, LookupDebt
from shared.db import Conn
from shared.idempotency import IdempotencyConflict, IdempotencyGuard
from shared.outbox import Outbox
from shared.trust import current_origin

log = logging.getLogger("aqsha.payments.lookups")
PRODUCER = "payments"


class DebtLookups:
    """Answers ``LookupDebt`` commands: once per request_id, nothing but the reply is written."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        guard: IdempotencyGuard,
        provider: ProviderAdapter,
        identity: IinRules,
        clock: Clock,
        outbox: Outbox | None = None,
    ) -> None:
        self.pool = pool
        self.guard = guard
        self.provider = provider
        self.identity = identity
        self.clock = clock
        self.outbox = outbox or Outbox()

    async def handle(self, env: Envelope[Any]) -> None:
        """Answer a lookup once per request_id; replay the stored reply for a duplicate."""
        cmd = env.payload
        assert isinstance(cmd, LookupDebt)
        payload = {"type": env.type, "command": cmd.model_dump(mode="json")}
        try:
            outcome = await self.guard.run(str(cmd.request_id), payload, lambda conn: self._answer(conn, env))
        except IdempotencyConflict as exc:
            async with self.pool.acquire() as conn:
                await self._failed(conn, env, ReasonCode.IDEMPOTENCY_CONFLICT, str(exc))
            return
        if outcome.replayed:
            original = decode(outcome.value["envelope"])
            async with self.pool.acquire() as conn:
                await self.outbox.add_many(conn, [original])

    async def _answer(self, conn: Conn, env: Envelope[Any]) -> dict[str, Any]:
        cmd: LookupDebt = env.payload
        if await store.customer(conn, cmd.customer_id) is None:
            return await self._failed(conn, env, ReasonCode.UNKNOWN_CUSTOMER, "unknown customer")
        if not self.provider.knows(cmd.provider):
            return await self._failed(
                conn, env, ReasonCode.UNKNOWN_PROVIDER, f"unknown provider {cmd.provider!r}"
            )
        try:
            debt = await self.provider.lookup(cmd.provider, cmd.provider_account)
        except ProviderUnavailable as exc:
            return await self._failed(
                conn, env, ReasonCode.PROVIDER_FAILED, f"the provider did not answer: {exc}"
            )
        if debt is None:
            return await self._failed(
                conn,
                env,
                ReasonCode.UNKNOWN_PROVIDER_ACCOUNT,
                f"{cmd.provider} has no account {cmd.provider_account!r}",
            )
        out = self._env(
            DebtLookedUp(
                request_id=cmd.request_id,
                customer_id=cmd.customer_id,
                provider=cmd.provider,
                provider_account=cmd.provider_account,
                provider_name=debt.provider_name,
                category=ServiceCategory(debt.category) if debt.category is not None else None,
                debt=debt.debt,
                owner_name=debt.owner_name,
                owner_address=debt.owner_address,
                iin_required=self.identity.requires_iin(debt.category, cmd.provider),
                looked_up_at=self.clock.now(),
            ),
            env,
        )
        await self.outbox.add_many(conn, [out])
        origin = current_origin()
        log.info(
            "debt looked up",
            extra={
                "customer_id": str(cmd.customer_id),
                "provider": cmd.provider,
                "requested_by": origin.principal if origin else None,
            },
        )
        return _outcome(out)

    async def _failed(
        self, conn: Conn, env: Envelope[Any], reason: ReasonCode, message: str
    ) -> dict[str, Any]:
        cmd: LookupDebt = env.payload
        out = self._env(
            DebtLookupFailed(
                request_id=cmd.request_id,
                customer_id=cmd.customer_id,
                provider=cmd.provider,
                provider_account=cmd.provider_account,
                reason_code=reason,
                message=message[:500],
            ),
            env,
        )
        await self.outbox.add_many(conn, [out])
        return _outcome(out)

    def _env(self, payload: DebtLookedUp | DebtLookupFailed, cause: Envelope[Any]) -> Envelope[Any]:
        return new_envelope(payload, producer=PRODUCER, occurred_at=self.clock.now(), causation=cause)


def _outcome(env: Envelope[Any]) -> dict[str, Any]:
    # As for payments commands: the stored outcome is the reply envelope, replayed byte for byte.
    return {"type": env.type, "envelope": encode(env).decode()}

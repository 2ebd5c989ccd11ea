"""Card payments: a PayService funded by another bank's card (EXTERNAL_CARD) goes through its issuer.

seed 003 lists why an online card payment fails: the issuer's restrictions (more than 100 USD
online without 3-D Secure; online payments switched off), a wrong one-time code, the issuer being
unavailable (and insufficient funds, which for a card is the issuer's to say). ``CardPayments``
asks the card's issuer (``issuer.IssuerAdapter``) and drives the payment through payments' own
steps (``PaymentsService._fail``, ``_wait``, ``_proceed``), so a card payment ends, is notified
and is audited like any other. Its record is ``card_payments`` (``card_store.py``).

The flow (docs/payments.md "Card payments"):

1. **Authorise** (``open``, before the payment is written): an unknown or missing token is
   rejected (FUNDING_NOT_ALLOWED); a restriction fails the payment with ISSUER_RESTRICTION and an
   unreachable issuer with ISSUER_UNAVAILABLE — nothing is charged or held. A card with 3-D Secure:
   the issuer sends its own code, the payment waits in PENDING_CONFIRMATION. Otherwise the card is
   charged after payments' own SMS code (above 5,000 ₸) or, without any code, by the janitor.
2. **Charge**, always under a payment id that is already committed, so a request asked again
   (redelivery, crash, lost answer) reaches the issuer with the same idempotency key and charges at
   most once. Charged → the total is held from EXTERNAL_CARDS like any other debit and the payment
   proceeds (provider, completion). No answer (Unknown) → PENDING_PROVIDER, and the janitor asks
   again every ``issuer_retry_s`` until the issuer answers: only the issuer knows whether it charged.
3. **Refund**: a charged payment that fails later (the provider refused) is voided in the ledger
   and its charge returned to the card.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeGuard
from uuid import UUID

import asyncpg

from services.payments import card_store, store
from services.payments.domain.cards import is_online
from services.payments.domain.ledger import SystemAccount, hold_posting
from services.payments.issuer import (
    Approved,
    AttemptsExhausted,
    CardRequest,
    ChallengeSent,
    Charged,
    CodeExpired,
    Declined,
    IssuerAdapter,
    Unavailable,
    Unknown,
    WrongCode,
)
from shared.clock import Clock
from shared.contracts.base import Contract
from shared.contracts.common import Channel, Funding, PaymentStatus, ReasonCode
from shared.contracts.envelope import Envelope
from shared.contracts.payments import ConfirmPayment, PaymentPending, PayService
from shared.db import Conn
from shared.money import Money

log = logging.getLogger("aqsha.payments.cards")

Lock = Callable[[Conn, UUID], Awaitable[dict[str, Any] | None]]


class Flow(Protocol):
    """The steps of ``PaymentsService`` a card payment goes through (so it ends like any other)."""

    pool: asyncpg.Pool

    def _env(self, payload: Contract, causation: Envelope[Any] | None = None) -> Envelope[Any]: ...

    async def _emit(self, conn: Conn, *envs: Envelope[Any]) -> None: ...

    def _outcome(self, env: Envelope[Any]) -> dict[str, Any]: ...

    async def _reject(
        self,
        conn: Conn,
        cmd_env: Envelope[Any],
        reason: ReasonCode,
        message: str,
        payment_id: UUID | None = None,
    ) -> dict[str, Any]: ...

    async def _fail(
        self, conn: Conn, p: dict[str, Any], reason: ReasonCode, message: str, cause: Envelope[Any] | None
    ) -> Envelope[Any]: ...

    async def _wait(
        self, conn: Conn, p: dict[str, Any], cause: Envelope[Any] | None, **changes: Any
    ) -> Envelope[Any]: ...

    async def _proceed(self, conn: Conn, p: dict[str, Any], cause: Envelope[Any] | None) -> Envelope[Any]: ...


class CardPayments:
    """The issuer step of EXTERNAL_CARD payments (see the module docstring)."""

    def __init__(
        self, flow: Flow, issuer: IssuerAdapter, clock: Clock, *, retry_s: float, lock: Lock
    ) -> None:
        self.flow = flow
        self.issuer = issuer
        self.clock = clock
        self.retry = timedelta(seconds=retry_s)
        self._lock = lock

    # -- 1. authorise ------------------------------------------------------------------------------
    async def open(
        self,
        conn: Conn,
        env: Envelope[Any],
        cmd: PayService,
        fields: dict[str, Any],
        customer: dict[str, Any],
        *,
        needs_code: bool,
    ) -> dict[str, Any] | None:
        """Ask the issuer before the payment is written; the outcome, or None for payments' own code.

        None means: no restriction, no 3-D Secure, but the amount needs payments' SMS code (above
        5,000 ₸, seed 000), so the caller writes the payment and sends the code as for any other;
        the card is charged after it (``charge``). Every other answer is handled here.
        """
        flow = self.flow
        if cmd.funding != Funding.EXTERNAL_CARD:
            return await flow._reject(
                conn, env, ReasonCode.FUNDING_NOT_ALLOWED, "card_token is only for EXTERNAL_CARD funding"
            )
        token = cmd.card_token
        issuer = self.issuer.issuer_of(token) if token else None
        if token is None or issuer is None:
            what = "needs a card_token" if token is None else "names a card no issuer knows"
            return await flow._reject(
                conn, env, ReasonCode.FUNDING_NOT_ALLOWED, f"the EXTERNAL_CARD payment {what} (UNKNOWN_CARD)"
            )
        payment_id: UUID = fields["payment_id"]
        now: datetime = fields["created_at"]
        request = CardRequest(
            str(payment_id), token, Money(fields["total"]), is_online(cmd.channel), now, customer["phone"]
        )
        answer = await self.issuer.authorize(request)
        card_token: str = token

        async def record(**columns: Any) -> None:
            await card_store.insert(conn, payment_id, card_token, issuer, now, **columns)

        if isinstance(answer, Approved) and needs_code:
            await record(state="AUTHORISED", last_answer="APPROVED")
            return None
        waiting = PaymentStatus.PENDING_CONFIRMATION if isinstance(answer, ChallengeSent) else None
        await store.insert_payment(
            conn, {**fields, "status": (waiting or PaymentStatus.PENDING_PROVIDER).value}
        )
        p = await self._lock(conn, payment_id)
        assert p is not None
        if isinstance(answer, ChallengeSent):
            # seed 003, "dynamic" 3-D Secure: the issuer sent its code to the cardholder; the
            # customer confirms with ConfirmPayment, which payments passes on to the issuer.
            await record(
                state="CHALLENGE",
                challenge_expires_at=answer.expires_at,
                last_answer="CHALLENGE_SENT",
            )
            log.info(
                "card payment awaits the issuer's 3-D Secure code", extra={"payment_id": str(payment_id)}
            )
            return flow._outcome(await self._pending(conn, p, env, answer.expires_at))
        if isinstance(answer, Approved):
            # Charged by the janitor right after this commits: under a committed payment id.
            await record(state="AUTHORISED", charge_due_at=now, last_answer="APPROVED")
            return flow._outcome(await self._pending(conn, p, env, None))
        await record(state="NOT_CHARGED", last_answer=_answer(answer))
        return flow._outcome(await self._refused(conn, p, answer, env))

    async def _pending(
        self, conn: Conn, p: dict[str, Any], cause: Envelope[Any], expires_at: datetime | None
    ) -> Envelope[Any]:
        status = PaymentStatus.PENDING_CONFIRMATION if expires_at else PaymentStatus.PENDING_PROVIDER
        env = self.flow._env(
            PaymentPending(
                payment_id=p["payment_id"],
                request_id=p["request_id"],
                customer_id=p["customer_id"],
                kind=p["kind"],
                status=status,
                amount=p["amount"],
                fee=p["fee"],
                total=p["total"],
                confirmation_expires_at=expires_at,
            ),
            cause,
        )
        await self.flow._emit(conn, env)
        return env

    # -- 2. charge ---------------------------------------------------------------------------------
    async def charge(
        self, conn: Conn, p: dict[str, Any], cause: Envelope[Any] | None
    ) -> Envelope[Any] | None:
        """In ``_proceed`` (after payments' own code): charge the card; None when charged (go on)."""
        card = await card_store.get(conn, p["payment_id"])
        if card is None:  # an EXTERNAL_CARD payment from before card payments: nothing to ask
            return None
        answer = await self.issuer.charge(await self._request(conn, p, card))
        await card_store.update(conn, p["payment_id"], {"attempts": card["attempts"] + 1})
        if isinstance(answer, Charged):
            await self._charged(conn, p, answer)
            return None
        if _unresolved(answer, card):
            await self._ask_again_later(conn, p, answer)
            return await self.flow._wait(conn, p, cause)
        assert isinstance(answer, Declined | Unavailable)
        return await self._refused(conn, p, answer, cause)

    async def confirm(
        self, conn: Conn, env: Envelope[Any], cmd: ConfirmPayment, p: dict[str, Any]
    ) -> dict[str, Any] | None:
        """ConfirmPayment of a payment waiting for the issuer's 3-D Secure code; None if it is not one.

        The code is the issuer's, so the issuer checks it (its attempts and expiry, like payments'
        own: a wrong code answers WRONG_CODE, the last wrong one fails the payment).
        """
        card = await card_store.get(conn, cmd.payment_id)
        if card is None or card["state"] != "CHALLENGE":
            return None
        flow = self.flow
        answer = await self.issuer.confirm(await self._request(conn, p, card), cmd.code)
        if isinstance(answer, WrongCode):
            return await flow._reject(
                conn,
                env,
                ReasonCode.WRONG_CODE,
                f"wrong 3-D Secure code, {answer.attempts_left} attempt(s) left",
                cmd.payment_id,
            )
        await card_store.update(conn, p["payment_id"], {"attempts": card["attempts"] + 1})
        if isinstance(answer, Charged):
            await self._charged(conn, p, answer)
            return flow._outcome(await flow._proceed(conn, p, env))
        if isinstance(answer, CodeExpired | AttemptsExhausted):
            reason, message = (
                (ReasonCode.CODE_EXPIRED, "the issuer's 3-D Secure code expired")
                if isinstance(answer, CodeExpired)
                else (ReasonCode.TOO_MANY_ATTEMPTS, "too many wrong 3-D Secure codes")
            )
            return flow._outcome(await self._give_up(conn, p, reason, message, reason.value, env))
        if _unresolved(answer, card):
            await self._ask_again_later(conn, p, answer)
            return flow._outcome(await flow._wait(conn, p, env))
        assert isinstance(answer, Declined | Unavailable)
        return flow._outcome(await self._refused(conn, p, answer, env))

    async def _charged(self, conn: Conn, p: dict[str, Any], answer: Charged) -> None:
        """The card is charged: hold the total from EXTERNAL_CARDS, like any other debit before capture."""
        now = self.clock.now()
        total = Money(p["total"])
        await store.apply_posting(
            conn, hold_posting(str(p["payment_id"]), SystemAccount.EXTERNAL_CARDS, total), now
        )
        held = {"held": total.tiyn, "source_account": SystemAccount.EXTERNAL_CARDS.value}
        await store.update_payment(conn, p["payment_id"], {**held, "updated_at": now})
        p.update(held)
        await card_store.update(
            conn,
            p["payment_id"],
            {
                "state": "CHARGED",
                "charge_ref": answer.reference,
                "charge_due_at": None,
                "last_answer": "CHARGED",
                "updated_at": now,
            },
        )

    async def _ask_again_later(self, conn: Conn, p: dict[str, Any], answer: Unknown | Unavailable) -> None:
        now = self.clock.now()
        await card_store.update(
            conn,
            p["payment_id"],
            {
                "state": "UNKNOWN",
                "charge_due_at": now + self.retry,
                "last_answer": _answer(answer),
                "updated_at": now,
            },
        )
        log.warning(
            "card charge outcome unknown; the janitor will ask the issuer again",
            extra={"payment_id": str(p["payment_id"])},
        )

    async def _refused(
        self, conn: Conn, p: dict[str, Any], answer: Declined | Unavailable, cause: Envelope[Any] | None
    ) -> Envelope[Any]:
        """seed 003: a restriction or an unavailable issuer fails the payment; nothing was charged."""
        reason = (
            ReasonCode.ISSUER_RESTRICTION if isinstance(answer, Declined) else ReasonCode.ISSUER_UNAVAILABLE
        )
        message = f"{answer.message}; nothing was charged"
        return await self._give_up(conn, p, reason, message, _answer(answer), cause)

    async def _give_up(
        self,
        conn: Conn,
        p: dict[str, Any],
        reason: ReasonCode,
        message: str,
        last_answer: str,
        cause: Envelope[Any] | None,
    ) -> Envelope[Any]:
        now = self.clock.now()
        await card_store.update(
            conn,
            p["payment_id"],
            {"state": "NOT_CHARGED", "charge_due_at": None, "last_answer": last_answer, "updated_at": now},
        )
        return await self.flow._fail(conn, p, reason, message, cause)

    # -- 3. refund ---------------------------------------------------------------------------------
    async def refund(self, conn: Conn, p: dict[str, Any]) -> None:
        """A charged card payment failed afterwards: return the charge to the card (idempotent)."""
        card = await card_store.get(conn, p["payment_id"])
        if card is None or card["state"] != "CHARGED":
            return
        await self.issuer.refund(await self._request(conn, p, card))
        await card_store.update(
            conn,
            p["payment_id"],
            {"state": "REFUNDED", "last_answer": "REFUNDED", "updated_at": self.clock.now()},
        )

    # -- the janitor -------------------------------------------------------------------------------
    async def run_janitor_once(self, now: datetime) -> int:
        """Expired 3-D Secure codes fail; due charges are sent (again); returns payments touched."""
        async with self.flow.pool.acquire() as conn:
            due = await card_store.due(conn, now)
        done = 0
        for payment_id, why in due:
            async with self.flow.pool.acquire() as conn, conn.transaction():
                p = await self._lock(conn, payment_id)  # first: a second janitor waits here, then re-reads
                card = await card_store.get(conn, payment_id)
                if p is None or card is None:
                    continue
                if (
                    why == "challenge"
                    and p["status"] == PaymentStatus.PENDING_CONFIRMATION
                    and card["state"] == "CHALLENGE"
                    and _before(card["challenge_expires_at"], now)
                ):
                    message = "the issuer's 3-D Secure code expired"
                    await self._give_up(conn, p, ReasonCode.CODE_EXPIRED, message, "CODE_EXPIRED", None)
                elif (
                    why == "charge"
                    and p["status"] == PaymentStatus.PENDING_PROVIDER
                    and card["state"] in ("AUTHORISED", "UNKNOWN")
                    and _before(card["charge_due_at"], now)
                ):
                    await self._charge_due(conn, p, card)
                else:
                    continue
                done += 1
        return done

    async def _charge_due(self, conn: Conn, p: dict[str, Any], card: dict[str, Any]) -> None:
        # Same payment id as every earlier request: the issuer answers its single charge, if any.
        answer = await self.issuer.charge(await self._request(conn, p, card))
        await card_store.update(conn, p["payment_id"], {"attempts": card["attempts"] + 1})
        if isinstance(answer, Charged):
            await self._charged(conn, p, answer)
            await self.flow._proceed(conn, p, None)  # the provider, then completion
        elif _unresolved(answer, card):
            await self._ask_again_later(conn, p, answer)
        else:
            assert isinstance(answer, Declined | Unavailable)
            await self._refused(conn, p, answer, None)

    async def _request(self, conn: Conn, p: dict[str, Any], card: dict[str, Any]) -> CardRequest:
        customer = await store.customer(conn, p["customer_id"])
        return CardRequest(
            str(p["payment_id"]),
            card["card_token"],
            Money(p["total"]),
            is_online(Channel(p["channel"])),
            self.clock.now(),
            customer["phone"] if customer else "",
        )


def _unresolved(answer: object, card: dict[str, Any]) -> TypeGuard[Unknown | Unavailable]:
    """No answer, or no contact after a request that got none: the card may have been charged."""
    return isinstance(answer, Unknown) or (isinstance(answer, Unavailable) and card["state"] == "UNKNOWN")


def _answer(answer: Declined | Unavailable | Unknown) -> str:
    if isinstance(answer, Declined):
        return f"DECLINED {answer.restriction.value}"
    return "UNAVAILABLE" if isinstance(answer, Unavailable) else "UNKNOWN"


def _before(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now

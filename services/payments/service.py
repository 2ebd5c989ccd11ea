"""The payments application service: idempotency → validation → fee → OTP/hold → sagas → posting → events.

Each request runs in ONE PostgreSQL transaction together with its idempotency key, its ledger
postings and its outgoing events (outbox). Holds: every debit of a customer account first moves
the money to the HOLDS system account (checked against the balance); completion captures it from
HOLDS, failure voids it back. So "any debit taken for a payment that ends FAILED is returned"
(domain §2 step 6) is one code path.

Interpretations (see docs/payments.md): Red and bonus replies are awaited in PENDING_PROVIDER
(the contract's only "waiting for someone else" status); insufficient funds is a
``PaymentRejected`` (nothing moved); the provider is called inside the transaction (the simulator
is instant; a real gateway would need a separate step).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from redis.asyncio import Redis

from services.payments import store
from services.payments.cards import CardPayments
from services.payments.domain import (
    IIN_MESSAGES,
    AccountType,
    CustomerAccount,
    Exhausted,
    Expired,
    FeeSchedule,
    IinRules,
    OtpChallenge,
    RefundTooLarge,
    SystemAccount,
    TariffError,
    Verified,
    Wrong,
    capture_posting,
    check_iin,
    funding_account,
    generate_code,
    hold_posting,
    mask_payer_name,
    operation_for,
    overpayment_credit_posting,
    purchase_posting,
    receipt_number,
    red_bill_posting,
    refund_posting,
    refund_split,
    refund_status,
    requires_otp,
    top_up_posting,
    transfer_posting,
    validate_request,
    void_hold_posting,
)
from services.payments.domain import Channel as DChannel
from services.payments.domain import Funding as DFunding
from services.payments.domain import Merchant as DMerchant
from services.payments.domain import PaymentStatus as DStatus
from services.payments.domain import ReasonCode as DReason
from services.payments.domain.ledger import Account
from services.payments.domain.requests import (
    PaymentRequest,
    PayRedBillRequest,
    PayServiceRequest,
    PurchaseRequest,
    TopUpRequest,
    TransferRequest,
)
from services.payments.issuer import IssuerAdapter, IssuerSimulator
from services.payments.lookups import DebtLookups
from services.payments.provider import ProviderAdapter, ProviderResult
from services.payments.settings import PaymentsSettings
from services.payments.store import InsufficientFunds
from shared.clock import Clock
from shared.contracts.base import Contract
from shared.contracts.billing import (
    OverpaymentRefunded,
    RedPurchaseApproved,
    RedPurchaseDeclined,
)
from shared.contracts.bonus import BonusRedeemed, BonusRedemptionDeclined
from shared.contracts.common import (
    AccountKind,
    Channel,
    Funding,
    Merchant,
    PaymentKind,
    PaymentStatus,
    ReasonCode,
    ServiceCategory,
)
from shared.contracts.customers import CustomerPhoneChanged, CustomerRegistered
from shared.contracts.envelope import Envelope, decode, encode, new_envelope
from shared.contracts.payments import (
    BonusRedemptionCancelled,
    BonusRedemptionRequested,
    CancelPayment,
    ConfirmPayment,
    OtpRequested,
    PaymentCancelled,
    PaymentCompleted,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRejected,
    PayRedBill,
    PayService,
    Purchase,
    Receipt,
    RedPurchaseCancelled,
    RedPurchaseRequested,
    Refund,
    TopUp,
    TopUpCompleted,
    Transfer,
    TransferCompleted,
)
from shared.customers import check_registration, phone_change_applies, registration_digest
from shared.db import Conn
from shared.idempotency import IdempotencyConflict, IdempotencyGuard
from shared.inbox import Inbox
from shared.money import MAX_TIYN, Money
from shared.otp_seal import seal_code
from shared.outbox import Outbox
from shared.trust import current_origin

log = logging.getLogger("aqsha.payments")
PRODUCER = "payments"
IDEMPOTENCY_SCOPE = "payments"

# Domain reason codes without a contract twin (shared.contracts.common.ReasonCode cannot be
# extended from this service); the precise local code is kept in the message text.
_LOCAL_REASONS: dict[DReason, ReasonCode] = {
    DReason.ACCOUNT_NOT_ALLOWED: ReasonCode.FUNDING_NOT_ALLOWED,
    DReason.BONUS_NOT_ALLOWED: ReasonCode.FUNDING_NOT_ALLOWED,
    DReason.BONUS_PART_INVALID: ReasonCode.INVALID_AMOUNT,
    DReason.UNKNOWN_CATEGORY: ReasonCode.UNKNOWN_PROVIDER,
    DReason.UNKNOWN_RECIPIENT: ReasonCode.UNKNOWN_CUSTOMER,
    DReason.UNKNOWN_TARIFF_PROFILE: ReasonCode.INTERNAL_ERROR,
}

_KIND = {
    PayService.TYPE: PaymentKind.SERVICE,
    Purchase.TYPE: PaymentKind.PURCHASE,
    Transfer.TYPE: PaymentKind.TRANSFER,
    PayRedBill.TYPE: PaymentKind.RED_BILL,
}


def contract_reason(reason: DReason) -> ReasonCode:
    """The wire reason code of a domain reason (same value where the contract has it)."""
    if reason in _LOCAL_REASONS:
        return _LOCAL_REASONS[reason]
    return ReasonCode(reason.value)


def to_request(cmd: Contract) -> PaymentRequest:
    """The pure domain request of a command contract."""
    if isinstance(cmd, TopUp):
        return TopUpRequest(
            str(cmd.customer_id), DChannel(cmd.channel), Money(cmd.amount), AccountType(cmd.account)
        )
    if isinstance(cmd, PayService):
        return PayServiceRequest(
            str(cmd.customer_id),
            DChannel(cmd.channel),
            Money(cmd.amount),
            DFunding(cmd.funding),
            cmd.category.value,
            cmd.provider,
            cmd.provider_account,
        )
    if isinstance(cmd, Purchase):
        return PurchaseRequest(
            str(cmd.customer_id),
            DChannel(cmd.channel),
            Money(cmd.amount),
            DFunding(cmd.funding),
            DMerchant(cmd.merchant),
            Money(cmd.bonus_amount),
        )
    if isinstance(cmd, Transfer):
        return TransferRequest(
            str(cmd.customer_id),
            DChannel(cmd.channel),
            Money(cmd.amount),
            AccountType(cmd.from_account),
            str(cmd.to_customer_id or cmd.customer_id),
            AccountType(cmd.to_account),
        )
    if isinstance(cmd, PayRedBill):
        return PayRedBillRequest(
            str(cmd.customer_id),
            DChannel(cmd.channel),
            Money(cmd.amount),
            DFunding(cmd.funding),
            cmd.use_bonus,
        )
    raise TypeError(f"not a payment command: {type(cmd).__name__}")


class PaymentsService:
    """Handles commands, saga replies, customer registrations and the janitor's work."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis | None,
        settings: PaymentsSettings,
        clock: Clock,
        provider: ProviderAdapter,
        schedule: FeeSchedule | None = None,
        identity: IinRules | None = None,
        issuer: IssuerAdapter | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.provider = provider
        self.schedule = schedule or FeeSchedule.load()
        self.guard = IdempotencyGuard(
            pool,
            redis,
            scope=IDEMPOTENCY_SCOPE,
            prefix=settings.redis.prefix,
            ttl_s=settings.idempotency_ttl_s,
        )
        self.inbox = Inbox(settings.consumer_group)
        self.outbox = Outbox()
        # seed 000: which services need the payer's IIN (identity.toml), and debt lookups.
        self.identity = identity or IinRules.load()
        self.lookups = DebtLookups(pool, self.guard, provider, self.identity, clock, self.outbox)
        keys = settings.otp_keys()  # refuses insecure keys outside development mode
        self._otp_key = keys.hash_key
        self._otp_transport_key = keys.transport_key
        self._threshold = Money(settings.otp_threshold_tiyn)
        # seed 003: EXTERNAL_CARD payments go through the card's issuer (services/payments/cards.py).
        self.cards = CardPayments(
            self,
            issuer or IssuerSimulator.load(settings.issuer_cards_file),
            clock,
            retry_s=settings.issuer_retry_s,
            lock=_lock,
        )

    # ------------------------------------------------------------------------------- plumbing
    def _env(self, payload: Contract, causation: Envelope[Any] | None = None) -> Envelope[Any]:
        return new_envelope(payload, producer=PRODUCER, occurred_at=self.clock.now(), causation=causation)

    async def _emit(self, conn: Conn, *envs: Envelope[Any]) -> None:
        await self.outbox.add_many(conn, list(envs))

    @staticmethod
    def _outcome(env: Envelope[Any]) -> dict[str, Any]:
        # The stored outcome is the customer-facing envelope, replayed byte for byte (same event_id).
        return {"type": env.type, "envelope": encode(env).decode()}

    async def _reject(
        self,
        conn: Conn,
        cmd_env: Envelope[Any],
        reason: ReasonCode,
        message: str,
        payment_id: UUID | None = None,
    ) -> dict[str, Any]:
        cmd = cmd_env.payload
        env = self._env(
            PaymentRejected(
                request_id=cmd.request_id,
                customer_id=cmd.customer_id,
                command_type=cmd_env.type,
                payment_id=payment_id,
                reason_code=reason,
                message=message[:500],
            ),
            cmd_env,
        )
        await self._emit(conn, env)
        return self._outcome(env)

    # ------------------------------------------------------------------------------- commands
    async def handle_command(self, env: Envelope[Any]) -> None:
        """Run a command once per request_id; replay the original outcome for a duplicate."""
        cmd = env.payload
        payload = {"type": env.type, "command": cmd.model_dump(mode="json")}
        try:
            outcome = await self.guard.run(
                str(cmd.request_id), payload, lambda conn: self._execute(conn, env)
            )
        except IdempotencyConflict as exc:
            async with self.pool.acquire() as conn:
                await self._reject(conn, env, ReasonCode.IDEMPOTENCY_CONFLICT, str(exc))
            return
        if outcome.replayed:
            original = decode(outcome.value["envelope"])
            async with self.pool.acquire() as conn:
                await self._emit(conn, original)

    async def _execute(self, conn: Conn, env: Envelope[Any]) -> dict[str, Any]:
        cmd = env.payload
        if isinstance(cmd, TopUp):
            return await self._top_up(conn, env, cmd)
        if isinstance(cmd, PayService | Purchase | Transfer | PayRedBill):
            return await self._new_payment(conn, env, cmd)
        if isinstance(cmd, ConfirmPayment):
            return await self._confirm(conn, env, cmd)
        if isinstance(cmd, CancelPayment):
            return await self._cancel(conn, env, cmd)
        if isinstance(cmd, Refund):
            return await self._refund(conn, env, cmd)
        raise TypeError(f"unexpected command {env.type}")

    async def _top_up(self, conn: Conn, env: Envelope[Any], cmd: TopUp) -> dict[str, Any]:
        if await store.customer(conn, cmd.customer_id) is None:
            return await self._reject(conn, env, ReasonCode.UNKNOWN_CUSTOMER, "unknown customer")
        reason = validate_request(to_request(cmd))
        if reason is not None:
            return await self._reject(conn, env, contract_reason(reason), f"top-up declined: {reason}")
        if await store.balance(conn, cmd.customer_id, cmd.account.value) + cmd.amount > MAX_TIYN:
            # Found by the fuzz suite: the credit would overflow what a balance may hold, and the
            # TopUpCompleted could not be built, so the command failed until it was dead-lettered.
            return await self._reject(
                conn, env, ReasonCode.INVALID_AMOUNT, "top-up declined: the balance would exceed its maximum"
            )
        now = self.clock.now()
        payment_id = uuid4()
        posting = top_up_posting(
            str(payment_id), str(cmd.customer_id), AccountType(cmd.account), Money(cmd.amount)
        )
        await store.apply_posting(conn, posting, now)
        await store.insert_payment(
            conn,
            {
                "payment_id": payment_id,
                "request_id": cmd.request_id,
                "customer_id": cmd.customer_id,
                "kind": PaymentKind.TOP_UP.value,
                "status": PaymentStatus.COMPLETED.value,
                "amount": cmd.amount,
                "total": cmd.amount,
                "funding": Funding.CASH.value,
                "channel": cmd.channel.value,
                "to_account": cmd.account.value,
                "created_at": now,
                "completed_at": now,
                "updated_at": now,
                **_commanded_by(),
            },
        )
        out = self._env(
            TopUpCompleted(
                payment_id=payment_id,
                request_id=cmd.request_id,
                customer_id=cmd.customer_id,
                account=cmd.account,
                amount=cmd.amount,
                channel=cmd.channel,
                balance_after=await store.balance(conn, cmd.customer_id, cmd.account.value),
                completed_at=now,
            ),
            env,
        )
        await self._emit(conn, out)
        return self._outcome(out)

    async def _new_payment(
        self, conn: Conn, env: Envelope[Any], cmd: PayService | Purchase | Transfer | PayRedBill
    ) -> dict[str, Any]:
        customer = await store.customer(conn, cmd.customer_id)
        if customer is None:
            return await self._reject(conn, env, ReasonCode.UNKNOWN_CUSTOMER, "unknown customer")
        request = to_request(cmd)
        reason = validate_request(request, known_categories=set(self.schedule.categories))
        if reason is not None:
            return await self._reject(conn, env, contract_reason(reason), f"request declined: {reason}")
        if isinstance(cmd, PayService) and not self.provider.knows(cmd.provider):
            return await self._reject(
                conn, env, ReasonCode.UNKNOWN_PROVIDER, f"unknown provider {cmd.provider!r}"
            )
        if isinstance(cmd, PayService):
            # seed 000: the IIN must match the registered one, for the services that need it and
            # whenever one is given; declined before any hold, so nothing is debited.
            failed = check_iin(
                required=self.identity.requires_iin(cmd.category.value, cmd.provider),
                given=cmd.iin,
                registered=customer["iin"],
            )
            if failed is not None:
                return await self._reject(
                    conn, env, ReasonCode.IDENTITY_MISMATCH, f"request declined: {IIN_MESSAGES[failed]}"
                )
        if (
            isinstance(cmd, Transfer)
            and cmd.to_customer_id is not None
            and await store.customer(conn, cmd.to_customer_id) is None
        ):
            return await self._reject(conn, env, ReasonCode.UNKNOWN_CUSTOMER, "unknown recipient")
        try:
            quote = self.schedule.quote_fee(customer["tariff_profile"], operation_for(request))
        except TariffError as exc:
            return await self._reject(conn, env, contract_reason(exc.reason), str(exc))
        fee = quote.fee.tiyn
        amount = cmd.amount
        total = amount + fee
        now = self.clock.now()
        payment_id = uuid4()
        kind = _KIND[env.type]
        fields: dict[str, Any] = {
            "payment_id": payment_id,
            "request_id": cmd.request_id,
            "customer_id": cmd.customer_id,
            "kind": kind.value,
            "amount": amount,
            "fee": fee,
            "total": total,
            "channel": cmd.channel.value,
            "created_at": now,
            "updated_at": now,
            **_commanded_by(),
        }
        source: Account | None
        hold = 0
        if isinstance(cmd, PayService):
            fields.update(
                funding=cmd.funding.value,
                category=cmd.category.value,
                provider=cmd.provider,
                provider_account=cmd.provider_account,
            )
            source = funding_account(str(cmd.customer_id), DFunding(cmd.funding))
            # A card is held only once its issuer charged it (services/payments/cards.py).
            hold = 0 if cmd.funding == Funding.EXTERNAL_CARD else total
        elif isinstance(cmd, Purchase):
            fields.update(
                funding=cmd.funding.value,
                merchant=cmd.merchant.value,
                partner_id=cmd.partner_id,
                order_id=cmd.order_id,
                bonus_amount=cmd.bonus_amount,
            )
            source = (
                None
                if cmd.funding == Funding.RED
                else CustomerAccount(str(cmd.customer_id), AccountType.GOLD)
            )
            hold = 0 if source is None else total - cmd.bonus_amount
        elif isinstance(cmd, Transfer):
            fields.update(
                funding=cmd.from_account.value,
                to_customer_id=cmd.to_customer_id,
                to_account=cmd.to_account.value,
            )
            source = CustomerAccount(str(cmd.customer_id), AccountType(cmd.from_account))
            hold = total
        else:
            fields.update(funding=cmd.funding.value)
            source = (
                None
                if cmd.funding == Funding.CASH
                else CustomerAccount(str(cmd.customer_id), AccountType.GOLD)
            )
            hold = 0 if source is None else total
        if isinstance(cmd, PayService) and (cmd.funding == Funding.EXTERNAL_CARD or cmd.card_token):
            # seed 003: the card's issuer decides first (restriction, 3-D Secure,
            # availability); nothing is held before it charged the card.
            decided = await self.cards.open(
                conn, env, cmd, fields, customer, needs_code=requires_otp(request, self._threshold)
            )
            if decided is not None:
                return decided
        if source is not None and hold > 0:
            try:
                async with conn.transaction():  # a savepoint: a declined hold leaves nothing behind
                    await store.apply_posting(conn, hold_posting(str(payment_id), source, Money(hold)), now)
            except InsufficientFunds:
                return await self._reject(
                    conn, env, ReasonCode.INSUFFICIENT_FUNDS, f"insufficient funds for {Money(hold)}"
                )
            fields.update(source_account=store.account_ref(source)[0], held=hold)
        otp = requires_otp(request, self._threshold)
        fields["status"] = (
            PaymentStatus.PENDING_CONFIRMATION if otp else PaymentStatus.PENDING_PROVIDER
        ).value
        await store.insert_payment(conn, fields)
        if not otp:
            payment = await _lock(conn, payment_id)
            assert payment is not None
            return self._outcome(await self._proceed(conn, payment, env))
        # domain §2 step 4: hold placed, code sent to the registered phone, payment waits.
        code = generate_code()
        ttl = timedelta(seconds=self.settings.otp_ttl_s)
        challenge = OtpChallenge.issue(
            str(payment_id), code, self._otp_key, now, ttl=ttl, attempts=self.settings.otp_attempts
        )
        await store.save_challenge(
            conn, payment_id, challenge.code_hash, challenge.expires_at, challenge.attempts_left
        )
        pending = self._env(
            PaymentPending(
                payment_id=payment_id,
                request_id=cmd.request_id,
                customer_id=cmd.customer_id,
                kind=kind,
                status=PaymentStatus.PENDING_CONFIRMATION,
                amount=amount,
                fee=fee,
                total=total,
                confirmation_expires_at=challenge.expires_at,
            ),
            env,
        )
        # The code leaves payments only sealed for notify (shared.otp_seal), bound to these fields.
        otp_fields: dict[str, Any] = {
            "payment_id": payment_id,
            "customer_id": cmd.customer_id,
            "phone": customer["phone"],
            "expires_at": challenge.expires_at,
            "amount": total,
        }
        sealed = seal_code(code, self._otp_transport_key, **otp_fields)
        otp_env = self._env(OtpRequested(**otp_fields, sealed_code=sealed), env)
        await self._emit(conn, pending, otp_env)
        log.info("payment awaits its one-time code", extra={"payment_id": str(payment_id)})
        return self._outcome(pending)

    async def _proceed(self, conn: Conn, p: dict[str, Any], cause: Envelope[Any] | None) -> Envelope[Any]:
        """After authorisation: the provider step, the sagas, or straight to completion."""
        if p["funding"] == Funding.EXTERNAL_CARD and not p["held"]:
            charged = await self.cards.charge(conn, p, cause)  # seed 003: the card first
            if charged is not None:
                return charged
        kind = PaymentKind(p["kind"])
        now = self.clock.now()
        if kind == PaymentKind.SERVICE:
            result = await self.provider.pay(
                p["provider"], p["provider_account"], p["amount"], str(p["payment_id"])
            )
            if result == ProviderResult.FAILED:
                return await self._fail(
                    conn, p, ReasonCode.PROVIDER_FAILED, "the provider refused the payment", cause
                )
            if result == ProviderResult.DELAYED:
                due = now + timedelta(seconds=self.settings.provider_delay_s)
                return await self._wait(conn, p, cause, provider_due_at=due)
        if kind == PaymentKind.PURCHASE and (p["bonus_amount"] > 0 or p["funding"] == Funding.RED):
            events: list[Envelope[Any]] = []
            changes: dict[str, Any] = {"saga_deadline": now + timedelta(seconds=self.settings.saga_timeout_s)}
            if p["bonus_amount"] > 0:
                changes["bonus_state"] = "REQUESTED"
                events.append(
                    self._env(
                        BonusRedemptionRequested(
                            payment_id=p["payment_id"],
                            customer_id=p["customer_id"],
                            amount=p["bonus_amount"],
                            purchase_amount=p["amount"],
                            merchant=p["merchant"],
                        ),
                        cause,
                    )
                )
            if p["funding"] == Funding.RED:
                changes["red_state"] = "REQUESTED"
                events.append(
                    self._env(
                        RedPurchaseRequested(
                            payment_id=p["payment_id"],
                            customer_id=p["customer_id"],
                            amount=p["amount"] - p["bonus_amount"],
                            merchant=p["merchant"],
                            partner_id=p["partner_id"],
                            requested_at=p["created_at"],
                        ),
                        cause,
                    )
                )
            await self._emit(conn, *events)
            return await self._wait(conn, p, cause, **changes)
        return await self._complete(conn, p, cause)

    async def _wait(
        self, conn: Conn, p: dict[str, Any], cause: Envelope[Any] | None, **changes: Any
    ) -> Envelope[Any]:
        """Wait for the provider, the issuer or the sagas: PENDING_PROVIDER (once; the status machine
        has no PENDING_PROVIDER → PENDING_PROVIDER), and a PaymentPending saying so."""
        now = self.clock.now()
        if p["status"] != PaymentStatus.PENDING_PROVIDER:
            changes["status"] = PaymentStatus.PENDING_PROVIDER.value
            p["status"] = PaymentStatus.PENDING_PROVIDER
        await store.update_payment(conn, p["payment_id"], {"updated_at": now, **changes})
        env = self._env(
            PaymentPending(
                payment_id=p["payment_id"],
                request_id=p["request_id"],
                customer_id=p["customer_id"],
                kind=p["kind"],
                status=PaymentStatus.PENDING_PROVIDER,
                amount=p["amount"],
                fee=p["fee"],
                total=p["total"],
            ),
            cause,
        )
        await self._emit(conn, env)
        return env

    async def _complete(self, conn: Conn, p: dict[str, Any], cause: Envelope[Any] | None) -> Envelope[Any]:
        """Capture the money and publish the outcome with its receipt."""
        now = self.clock.now()
        pid = str(p["payment_id"])
        customer_id = str(p["customer_id"])
        kind = PaymentKind(p["kind"])
        amount, fee = Money(p["amount"]), Money(p["fee"])
        held = p["held"] > 0
        if kind == PaymentKind.SERVICE:
            posting = capture_posting(pid, amount, fee)
        elif kind == PaymentKind.PURCHASE:
            source: Account = SystemAccount.HOLDS if held else SystemAccount.RED_FUNDING
            posting = purchase_posting(pid, source, amount, Money(p["bonus_amount"]))
        elif kind == PaymentKind.TRANSFER:
            to = CustomerAccount(str(p["to_customer_id"] or customer_id), AccountType(p["to_account"]))
            posting = transfer_posting(pid, SystemAccount.HOLDS, to, amount, fee)
        else:
            posting = red_bill_posting(pid, SystemAccount.HOLDS if held else SystemAccount.CASH_IN, amount)
        await store.apply_posting(conn, posting, now)
        number = receipt_number(await store.next_receipt_sequence(conn), now)
        await store.update_payment(
            conn,
            p["payment_id"],
            {
                "status": PaymentStatus.COMPLETED.value,
                "held": 0,
                "receipt_number": number,
                "completed_at": now,
                "updated_at": now,
            },
        )
        if kind == PaymentKind.TRANSFER:
            env = self._env(
                TransferCompleted(
                    payment_id=p["payment_id"],
                    request_id=p["request_id"],
                    customer_id=p["customer_id"],
                    to_customer_id=p["to_customer_id"],
                    from_account=AccountKind(p["funding"].value),
                    to_account=p["to_account"],
                    amount=p["amount"],
                    fee=p["fee"],
                    total=p["total"],
                    completed_at=now,
                ),
                cause,
            )
        else:
            customer = await store.customer(conn, p["customer_id"])
            assert customer is not None
            payee = p["provider"] or p["merchant"] or "Kaspi Red"
            env = self._env(
                PaymentCompleted(
                    payment_id=p["payment_id"],
                    request_id=p["request_id"],
                    customer_id=p["customer_id"],
                    kind=kind,
                    completed_at=now,
                    amount=p["amount"],
                    fee=p["fee"],
                    total=p["total"],
                    funding=p["funding"],
                    channel=p["channel"],
                    category=p["category"],
                    provider=p["provider"],
                    merchant=p["merchant"],
                    partner_id=p["partner_id"],
                    bonus_amount=p["bonus_amount"],
                    red_plan_id=p["red_plan_id"],
                    # issue #3 step 7: billing applies the 20:00 cut-off to the time it was paid.
                    paid_at=now if kind == PaymentKind.RED_BILL else None,
                    receipt=Receipt(
                        receipt_number=number,
                        created_at=p["created_at"],
                        completed_at=now,
                        payer_masked=mask_payer_name(customer["full_name"]) or "****",
                        payee=payee,
                        provider_account=p["provider_account"],
                        amount=p["amount"],
                        fee=p["fee"],
                        total=p["total"],
                        funding=p["funding"],
                        channel=p["channel"],
                        status=PaymentStatus.COMPLETED,
                    ),
                ),
                cause,
            )
        await self._emit(conn, env)
        return env

    async def _release(
        self, conn: Conn, p: dict[str, Any], reason: ReasonCode, cause: Envelope[Any] | None
    ) -> None:
        """Void the hold and compensate the saga participants (whatever was reserved is released)."""
        now = self.clock.now()
        if p["held"] > 0:
            source = store.account_from(p["source_account"], p["customer_id"])
            await store.apply_posting(
                conn, void_hold_posting(str(p["payment_id"]), source, Money(p["held"])), now
            )
            if p["funding"] == Funding.EXTERNAL_CARD:
                await self.cards.refund(conn, p)  # the charge goes back to the card
        events: list[Envelope[Any]] = []
        changes: dict[str, Any] = {"held": 0}
        if p["bonus_state"] in ("REQUESTED", "REDEEMED"):
            changes["bonus_state"] = "CANCELLED"
            events.append(
                self._env(
                    BonusRedemptionCancelled(
                        payment_id=p["payment_id"],
                        customer_id=p["customer_id"],
                        amount=p["bonus_amount"],
                        reason_code=reason,
                    ),
                    cause,
                )
            )
        if p["red_state"] in ("REQUESTED", "APPROVED"):
            changes["red_state"] = "CANCELLED"
            events.append(
                self._env(
                    RedPurchaseCancelled(
                        payment_id=p["payment_id"], customer_id=p["customer_id"], reason_code=reason
                    ),
                    cause,
                )
            )
        await self._emit(conn, *events)
        await store.update_payment(conn, p["payment_id"], {**changes, "updated_at": now})

    async def _fail(
        self, conn: Conn, p: dict[str, Any], reason: ReasonCode, message: str, cause: Envelope[Any] | None
    ) -> Envelope[Any]:
        await self._release(conn, p, reason, cause)
        now = self.clock.now()
        await store.update_payment(
            conn,
            p["payment_id"],
            {"status": PaymentStatus.FAILED.value, "reason_code": reason.value, "updated_at": now},
        )
        env = self._env(
            PaymentFailed(
                payment_id=p["payment_id"],
                request_id=p["request_id"],
                customer_id=p["customer_id"],
                kind=p["kind"],
                reason_code=reason,
                message=message,
            ),
            cause,
        )
        await self._emit(conn, env)
        return env

    async def _own_payment(
        self, conn: Conn, env: Envelope[Any], cmd: ConfirmPayment | CancelPayment | Refund
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The customer's payment locked, or None and the UNKNOWN_PAYMENT rejection outcome."""
        p = await _lock(conn, cmd.payment_id)
        if p is None or p["customer_id"] != cmd.customer_id:
            return None, await self._reject(
                conn, env, ReasonCode.UNKNOWN_PAYMENT, "no such payment", cmd.payment_id
            )
        return p, {}

    async def _confirm(self, conn: Conn, env: Envelope[Any], cmd: ConfirmPayment) -> dict[str, Any]:
        p, rejected = await self._own_payment(conn, env, cmd)
        if p is None:
            return rejected
        if p["status"] != PaymentStatus.PENDING_CONFIRMATION:
            return await self._reject(
                conn, env, ReasonCode.INVALID_PAYMENT_STATE, f"payment is {p['status']}", cmd.payment_id
            )
        if p["funding"] == Funding.EXTERNAL_CARD:
            confirmed = await self.cards.confirm(conn, env, cmd, p)  # the issuer's 3-D Secure code
            if confirmed is not None:
                return confirmed
        row = await store.challenge(conn, cmd.payment_id)
        assert row is not None
        challenge = OtpChallenge(
            str(cmd.payment_id), row["code_hash"], row["expires_at"], row["attempts_left"]
        )
        outcome = challenge.verify(cmd.code, self.clock.now(), key=self._otp_key)
        await store.set_attempts(conn, cmd.payment_id, challenge.after(outcome).attempts_left)
        if isinstance(outcome, Verified):
            return self._outcome(await self._proceed(conn, p, env))
        if isinstance(outcome, Wrong):
            return await self._reject(
                conn,
                env,
                ReasonCode.WRONG_CODE,
                f"wrong code, {outcome.attempts_left} attempt(s) left",
                cmd.payment_id,
            )
        if isinstance(outcome, Expired):
            return self._outcome(await self._fail(conn, p, ReasonCode.CODE_EXPIRED, "the code expired", env))
        assert isinstance(outcome, Exhausted)
        return self._outcome(
            await self._fail(conn, p, ReasonCode.TOO_MANY_ATTEMPTS, "too many wrong codes", env)
        )

    async def _cancel(self, conn: Conn, env: Envelope[Any], cmd: CancelPayment) -> dict[str, Any]:
        p, rejected = await self._own_payment(conn, env, cmd)
        if p is None:
            return rejected
        # domain §2 step 5: the customer may cancel without penalty before confirming.
        if p["status"] != PaymentStatus.PENDING_CONFIRMATION:
            return await self._reject(
                conn, env, ReasonCode.INVALID_PAYMENT_STATE, f"payment is {p['status']}", cmd.payment_id
            )
        await self._release(conn, p, ReasonCode.CANCELLED_BY_CUSTOMER, env)
        now = self.clock.now()
        await store.update_payment(
            conn,
            p["payment_id"],
            {
                "status": PaymentStatus.CANCELLED.value,
                "reason_code": ReasonCode.CANCELLED_BY_CUSTOMER.value,
                "updated_at": now,
            },
        )
        out = self._env(
            PaymentCancelled(
                payment_id=p["payment_id"],
                request_id=cmd.request_id,
                customer_id=cmd.customer_id,
                kind=p["kind"],
            ),
            env,
        )
        await self._emit(conn, out)
        return self._outcome(out)

    async def _refund(self, conn: Conn, env: Envelope[Any], cmd: Refund) -> dict[str, Any]:
        p, rejected = await self._own_payment(conn, env, cmd)
        if p is None:
            return rejected
        if p["kind"] not in (PaymentKind.PURCHASE, PaymentKind.SERVICE):
            return await self._reject(
                conn, env, ReasonCode.REFUND_NOT_ALLOWED, f"a {p['kind']} cannot be refunded", cmd.payment_id
            )
        if p["status"] not in (PaymentStatus.COMPLETED, PaymentStatus.PARTIALLY_REFUNDED):
            return await self._reject(
                conn, env, ReasonCode.INVALID_PAYMENT_STATE, f"payment is {p['status']}", cmd.payment_id
            )
        paid, before, refund = Money(p["amount"]), Money(p["refunded"]), Money(cmd.amount)
        try:
            status = refund_status(DStatus(p["status"]), paid, before, refund)
        except RefundTooLarge as exc:
            return await self._reject(conn, env, ReasonCode.REFUND_EXCEEDS_PAYMENT, str(exc), cmd.payment_id)
        _, bonus_share = refund_split(paid, Money(p["bonus_amount"]), before, refund)
        destination = funding_account(str(p["customer_id"]), DFunding(p["funding"]))
        now = self.clock.now()
        await store.apply_posting(
            conn, refund_posting(str(p["payment_id"]), destination, refund, bonus_share), now
        )
        await store.insert_refund(
            conn,
            cmd.request_id,
            p["payment_id"],
            cmd.amount,
            bonus_share.tiyn,
            cmd.reason,
            now,
            origin=current_origin(),
        )
        total_refunded = p["refunded"] + cmd.amount
        await store.update_payment(
            conn, p["payment_id"], {"status": status.value, "refunded": total_refunded, "updated_at": now}
        )
        out = self._env(
            PaymentRefunded(
                payment_id=p["payment_id"],
                refund_id=cmd.request_id,
                customer_id=p["customer_id"],
                kind=p["kind"],
                amount=cmd.amount,
                total_refunded=total_refunded,
                original_amount=p["amount"],
                funding=p["funding"],
                merchant=p["merchant"],
                status=PaymentStatus(status.value),
            ),
            env,
        )
        await self._emit(conn, out)
        return self._outcome(out)

    # --------------------------------------------------------------------------------- events
    async def on_customer(self, env: Envelope[Any]) -> None:
        """CustomerRegistered: keep a local copy and open GOLD and WALLET.

        A registration is applied once (shared/customers.py): the same one again is a no-op, one
        with different data raises ``Refused("customer_conflict")`` and changes nothing.
        """
        c = env.payload
        assert isinstance(c, CustomerRegistered)

        async def effect(conn: Conn) -> None:
            digest = registration_digest(c)
            if await store.insert_customer(
                conn,
                c.customer_id,
                c.phone,
                c.full_name,
                c.tariff_profile.value,
                digest,
                env.occurred_at,
                c.iin,
            ):
                return
            stored = await store.customer(conn, c.customer_id, for_update=True)
            assert stored is not None
            kept = {k: stored[k] for k in ("phone", "full_name", "tariff_profile")}
            check_registration(c, kept, stored["registration_sha256"])
            if stored["iin"] is None and stored["registration_sha256"] == digest:
                # Stored before migration 004: the same registration again proves its IIN.
                await store.learn_iin(conn, c.customer_id, c.iin)

        await self.inbox.once(self.pool, env, effect)

    async def on_phone_changed(self, env: Envelope[Any]) -> None:
        """CustomerPhoneChanged: one-time codes go to the new phone (the rule of shared/customers.py).

        Unknown customer → ``Refused("unknown_customer")``; the phone already stored → no-op; not
        newer than the last change → ``Refused("stale_phone_change")``.
        """
        change = env.payload
        assert isinstance(change, CustomerPhoneChanged)

        async def effect(conn: Conn) -> None:
            stored = await store.customer(conn, change.customer_id, for_update=True)
            phone = stored["phone"] if stored else None
            last = stored["phone_changed_at"] if stored else None
            if phone_change_applies(change, phone, last):
                await store.change_phone(conn, change.customer_id, change.phone, change.changed_at)
                log.info("customer phone changed", extra={"customer_id": str(change.customer_id)})

        await self.inbox.once(self.pool, env, effect)

    async def on_saga_reply(self, env: Envelope[Any]) -> None:
        """Bonus and Red replies: advance, fail with compensation, or compensate a late approval."""
        reply = env.payload

        async def effect(conn: Conn) -> None:
            p = await _lock(conn, reply.payment_id)
            if p is None:
                log.warning("saga reply for an unknown payment", extra={"payment_id": str(reply.payment_id)})
                return
            waiting = p["status"] == PaymentStatus.PENDING_PROVIDER
            # One rule for both sagas: a reply counts only while its saga is REQUESTED; a decline
            # fails the payment (with compensation of the other saga), an approval is recorded.
            is_bonus = isinstance(reply, BonusRedeemed | BonusRedemptionDeclined)
            state = "bonus_state" if is_bonus else "red_state"
            if not waiting or p[state] != "REQUESTED":
                return await self._late(conn, p, reply, env)
            if isinstance(reply, BonusRedemptionDeclined | RedPurchaseDeclined):
                p[state] = "DECLINED"
                await store.update_payment(
                    conn, p["payment_id"], {state: "DECLINED", "updated_at": self.clock.now()}
                )
                reason, who = (
                    (ReasonCode.BONUS_DECLINED, "bonus") if is_bonus else (ReasonCode.RED_DECLINED, "Red")
                )
                await self._fail(conn, p, reason, f"{who} declined: {reply.reason_code}", env)
                return None
            changes: dict[str, Any] = {state: "REDEEMED" if is_bonus else "APPROVED"}
            if isinstance(reply, RedPurchaseApproved):
                changes["red_plan_id"] = reply.plan_id
            p.update(changes)
            await store.update_payment(conn, p["payment_id"], {**changes, "updated_at": self.clock.now()})
            if p["bonus_state"] in (None, "REDEEMED") and p["red_state"] in (None, "APPROVED"):
                await store.update_payment(
                    conn, p["payment_id"], {"saga_deadline": None, "updated_at": self.clock.now()}
                )
                await self._complete(conn, p, env)
            return None

        await self.inbox.once(self.pool, env, effect)

    async def _late(self, conn: Conn, p: dict[str, Any], reply: Any, env: Envelope[Any]) -> None:
        """A reply after the payment ended (timeout): an approval is compensated, anything else ignored."""
        reason = ReasonCode(p["reason_code"]) if p["reason_code"] else ReasonCode.INTERNAL_ERROR
        if isinstance(reply, BonusRedeemed) and p["status"] in (
            PaymentStatus.FAILED,
            PaymentStatus.CANCELLED,
        ):
            await self._emit(
                conn,
                self._env(
                    BonusRedemptionCancelled(
                        payment_id=p["payment_id"],
                        customer_id=p["customer_id"],
                        amount=reply.amount,
                        reason_code=reason,
                    ),
                    env,
                ),
            )
        elif isinstance(reply, RedPurchaseApproved) and p["status"] in (
            PaymentStatus.FAILED,
            PaymentStatus.CANCELLED,
        ):
            await self._emit(
                conn,
                self._env(
                    RedPurchaseCancelled(
                        payment_id=p["payment_id"], customer_id=p["customer_id"], reason_code=reason
                    ),
                    env,
                ),
            )
        log.info("late saga reply", extra={"payment_id": str(p["payment_id"]), "event_type": env.type})

    async def on_overpayment(self, env: Envelope[Any]) -> None:
        """billing's OverpaymentRefunded: credit the customer's GOLD (domain §4)."""
        ev = env.payload
        assert isinstance(ev, OverpaymentRefunded)

        async def effect(conn: Conn) -> None:
            if await store.customer(conn, ev.customer_id) is None:
                raise LookupError(f"OverpaymentRefunded for unknown customer {ev.customer_id}")
            now = self.clock.now()
            posting = overpayment_credit_posting(str(ev.refund_id), str(ev.customer_id), Money(ev.amount))
            await store.apply_posting(conn, posting, now)
            await store.insert_event_credit(
                conn,
                event_id=env.event_id,
                event_type=env.type,
                reference_id=ev.refund_id,
                customer_id=ev.customer_id,
                account=AccountType.GOLD.value,
                amount=ev.amount,
                origin=current_origin(),
                at=now,
            )

        await self.inbox.once(self.pool, env, effect)

    # -------------------------------------------------------------------------------- janitor
    async def run_janitor_once(self) -> int:
        """Resolve due work: expired codes, saga timeouts, delayed providers; returns payments touched."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            due = await store.due_payments(conn, now)
        done = 0
        for payment_id, why in due:
            async with self.pool.acquire() as conn, conn.transaction():
                p = await _lock(conn, payment_id)
                if p is None:
                    continue
                if why == "otp" and p["status"] == PaymentStatus.PENDING_CONFIRMATION:
                    await self._fail(conn, p, ReasonCode.CODE_EXPIRED, "the code expired", None)
                elif (
                    why == "saga"
                    and p["status"] == PaymentStatus.PENDING_PROVIDER
                    and _before(p["saga_deadline"], now)
                ):
                    reason = (
                        ReasonCode.RED_TIMEOUT if p["red_state"] == "REQUESTED" else ReasonCode.BONUS_TIMEOUT
                    )
                    await self._fail(conn, p, reason, "no answer in time", None)
                elif (
                    why == "provider"
                    and p["status"] == PaymentStatus.PENDING_PROVIDER
                    and _before(p["provider_due_at"], now)
                ):
                    result = await self.provider.status(p["provider"], str(payment_id))
                    if result == ProviderResult.FAILED:
                        await self._fail(
                            conn, p, ReasonCode.PROVIDER_FAILED, "the provider refused the payment", None
                        )
                    else:
                        await store.update_payment(
                            conn, payment_id, {"provider_due_at": None, "updated_at": now}
                        )
                        await self._complete(conn, p, None)
                else:
                    continue
                done += 1
        # seed 003: expired 3-D Secure codes, and card charges due (first, or asked again).
        return done + await self.cards.run_janitor_once(now)


_ENUM_COLUMNS: dict[str, Any] = {
    "kind": PaymentKind,
    "status": PaymentStatus,
    "funding": Funding,
    "channel": Channel,
    "category": ServiceCategory,
    "merchant": Merchant,
    "to_account": AccountKind,
}


async def _lock(conn: Conn, payment_id: UUID) -> dict[str, Any] | None:
    """The payment row locked, with its enum columns typed (the contracts are strict)."""
    p = await store.lock_payment(conn, payment_id)
    if p is None:
        return None
    for column, enum in _ENUM_COLUMNS.items():
        if p[column] is not None:
            p[column] = enum(p[column])
    return p


def _commanded_by() -> dict[str, str | None]:
    """The payment columns naming who commanded it: the verified sender of the command being handled."""
    origin = current_origin()
    return {"commanded_by": origin.principal if origin else None, "key_id": origin.key_id if origin else None}


def _before(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now

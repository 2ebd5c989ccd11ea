"""The other bank behind an EXTERNAL_CARD payment: an issuer adapter interface and a simulator.

seed 003 names four causes of a failed online card payment: insufficient funds, the issuer's
restrictions (e.g. more than 100 USD online without 3-D Secure), a wrong one-time code, and the
issuer being unavailable. ``IssuerAdapter`` is what payments asks the card's issuer; its answers
are the types below. ``IssuerSimulator`` plays the issuers from ``issuer_cards.toml`` (tokens,
never card numbers) with the rules of ``domain/cards.py`` and the rates of ``fx_rates.toml``.

Every request names the payment: its id is the issuer's **idempotency key**, so a request asked
again (a lost answer, a redelivered command, a crash before commit) charges the card at most once.
"""

from __future__ import annotations

import logging
import secrets
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import httpx

from services.payments.domain.cards import (
    CardProfile,
    RateTable,
    Restriction,
    needs_three_ds,
    restriction_for,
)
from services.payments.domain.otp import Expired, OtpChallenge, Verified, Wrong, generate_code
from shared.clock import business_date_of
from shared.money import Money

log = logging.getLogger("aqsha.payments.issuer")

DEFAULT_CARDS_PATH: Final = Path(__file__).resolve().parent / "issuer_cards.toml"
Behaviour = Literal["online", "unavailable", "unknown-outcome"]
BEHAVIOURS: Final = frozenset({"online", "unavailable", "unknown-outcome"})
#: ``event_type`` of the simulated issuer's SMS at the SMS gateway (notify's are event types too).
THREE_DS_SMS: Final = "IssuerThreeDSecure"


# -- what payments asks -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CardRequest:
    """One request about one payment to the card's issuer."""

    payment_id: str  # the idempotency key at the issuer
    card_token: str
    amount: Money  # the total to be charged (amount + fee)
    online: bool
    at: datetime
    #: Where the simulator sends its 3-D Secure code: the customer's registered phone, standing in
    #: for the trusted number the issuer keeps (a real issuer uses its own; seed 003 "dynamic" scheme).
    phone: str = field(repr=False, default="")


# -- what the issuer answers --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Approved:
    """The card may be charged without a code from the issuer (no 3-D Secure on it)."""


@dataclass(frozen=True, slots=True)
class ChallengeSent:
    """3-D Secure: the issuer sent its one-time code to the cardholder; it expires at ``expires_at``."""

    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Declined:
    """The issuer refused (a restriction); nothing was charged."""

    restriction: Restriction
    message: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The issuer could not be reached: this request charged nothing (an earlier one may have)."""

    message: str = "the card's issuer is unavailable"


@dataclass(frozen=True, slots=True)
class Unknown:
    """The charge request was sent but no answer came: the card may or may not have been charged."""

    message: str = "no answer from the card's issuer"


@dataclass(frozen=True, slots=True)
class Charged:
    """The card is charged, once, for this payment id; ``reference`` is the issuer's."""

    reference: str


@dataclass(frozen=True, slots=True)
class WrongCode:
    """The 3-D Secure code was wrong; ``attempts_left`` more tries remain."""

    attempts_left: int


@dataclass(frozen=True, slots=True)
class CodeExpired:
    """The 3-D Secure code expired."""


@dataclass(frozen=True, slots=True)
class AttemptsExhausted:
    """Too many wrong 3-D Secure codes."""


Authorisation = Approved | ChallengeSent | Declined | Unavailable
ChargeOutcome = Charged | Declined | Unavailable | Unknown
ConfirmOutcome = Charged | WrongCode | CodeExpired | AttemptsExhausted | Declined | Unavailable | Unknown


class IssuerAdapter(Protocol):
    """The card's issuing bank, as payments sees it."""

    def issuer_of(self, card_token: str) -> str | None:
        """The issuer of a card token, or None for a token no issuer knows."""
        ...

    async def authorize(self, request: CardRequest) -> Authorisation:
        """Before anything is charged: the issuer's restrictions, and 3-D Secure (it sends its code)."""
        ...

    async def confirm(self, request: CardRequest, code: str) -> ConfirmOutcome:
        """The customer's 3-D Secure code; the right one charges the card (idempotent by payment id)."""
        ...

    async def charge(self, request: CardRequest) -> ChargeOutcome:
        """Charge the card; asked again with the same payment id, answers the same single charge."""
        ...

    async def refund(self, request: CardRequest) -> None:
        """Return a charge to the card (the payment failed after it); idempotent by payment id."""
        ...


# -- where the simulated issuer's SMS goes ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IssuerSms:
    """An SMS the simulated issuer sent to a cardholder."""

    payment_id: str
    to: str = field(repr=False)
    text: str = field(repr=False)  # holds the code: never logged


class Courier(Protocol):
    """Delivers the simulated issuer's SMS."""

    async def send(self, sms: IssuerSms) -> None:
        """Deliver one SMS (failures are the courier's to report; the code then simply expires)."""
        ...


@dataclass
class MemoryCourier:
    """Keeps every SMS in memory (tests read the code from here)."""

    sent: list[IssuerSms] = field(default_factory=list)

    async def send(self, sms: IssuerSms) -> None:
        """Keep it."""
        self.sent.append(sms)

    def texts_for(self, payment_id: str) -> list[str]:
        """The texts sent about a payment, oldest first."""
        return [s.text for s in self.sent if s.payment_id == payment_id]


@dataclass(frozen=True, slots=True)
class WebhookCourier:
    """Posts each SMS to an SMS gateway webhook (``make run``: the platform's simulated gateway)."""

    url: str
    timeout_s: float = 5.0

    async def send(self, sms: IssuerSms) -> None:
        """POST it; a failure is logged (without the text) and the code simply expires."""
        body = {"to": sms.to, "text": sms.text, "event_type": THREE_DS_SMS, "payment_id": sms.payment_id}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.post(
                    self.url, json=body, headers={"Idempotency-Key": f"3ds:{sms.payment_id}"}
                )
                answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning(
                "the simulated issuer could not send its 3-D Secure SMS",
                extra={"payment_id": sms.payment_id, "error": type(exc).__name__},
            )


# -- the simulator's data -------------------------------------------------------------------------
class CardDataError(ValueError):
    """``issuer_cards.toml`` is malformed."""


@dataclass(frozen=True, slots=True)
class Issuer:
    """One simulated issuing bank."""

    id: str
    name: str
    behaviour: Behaviour
    online_limit_usd: Decimal
    code_ttl: timedelta
    code_attempts: int


@dataclass(frozen=True, slots=True)
class Card:
    """One test card: its issuer and what the issuer knows about it."""

    token: str
    issuer: str
    profile: CardProfile


@dataclass(frozen=True, slots=True)
class CardData:
    """The simulator's issuers and test cards."""

    issuers: Mapping[str, Issuer]
    cards: Mapping[str, Card]

    @classmethod
    def load(cls, path: Path | None = None) -> CardData:
        """Load and check the card file (default ``services/payments/issuer_cards.toml``)."""
        with (path or DEFAULT_CARDS_PATH).open("rb") as handle:
            return cls.from_mapping(tomllib.load(handle))

    @classmethod
    def from_toml(cls, text: str) -> CardData:
        """Parse and check card data given as TOML text."""
        return cls.from_mapping(tomllib.loads(text))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CardData:
        """Build from parsed TOML; ``CardDataError`` on anything malformed."""
        if data.get("schema_version") != 1:
            raise CardDataError("schema_version must be 1")
        raw_issuers, raw_cards = data.get("issuers"), data.get("cards")
        if not isinstance(raw_issuers, dict) or not raw_issuers:
            raise CardDataError("no [issuers] table")
        if not isinstance(raw_cards, dict) or not raw_cards:
            raise CardDataError("no [cards] table")
        issuers = {key: _issuer(key, raw) for key, raw in raw_issuers.items()}
        cards = {token: _card(token, raw, issuers) for token, raw in raw_cards.items()}
        return cls(issuers, cards)


def _issuer(key: str, raw: Any) -> Issuer:
    if not isinstance(raw, dict):
        raise CardDataError(f"issuer {key!r} must be a table")
    behaviour, limit = raw.get("behaviour"), raw.get("online_limit_usd")
    ttl, attempts, name = raw.get("code_ttl_s"), raw.get("code_attempts"), raw.get("name")
    if behaviour not in BEHAVIOURS:
        raise CardDataError(f"issuer {key!r}: behaviour must be one of {sorted(BEHAVIOURS)}")
    if not isinstance(limit, str):
        raise CardDataError(f"issuer {key!r}: online_limit_usd must be a decimal string (no floats)")
    try:
        limit_usd = Decimal(limit)
    except InvalidOperation:
        raise CardDataError(f"issuer {key!r}: online_limit_usd is not a decimal: {limit!r}") from None
    if not limit_usd.is_finite() or limit_usd <= 0:
        raise CardDataError(f"issuer {key!r}: online_limit_usd must be positive")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise CardDataError(f"issuer {key!r}: code_ttl_s must be a positive integer")
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise CardDataError(f"issuer {key!r}: code_attempts must be at least 1")
    if not isinstance(name, str) or not name.strip():
        raise CardDataError(f"issuer {key!r}: name is required")
    return Issuer(key, name.strip(), behaviour, limit_usd, timedelta(seconds=ttl), attempts)


def _card(token: str, raw: Any, issuers: Mapping[str, Issuer]) -> Card:
    if not isinstance(raw, dict):
        raise CardDataError(f"card {token!r} must be a table")
    if sum(ch.isdigit() for ch in token) >= 12:
        raise CardDataError(f"card {token!r}: a token must not look like a card number")
    issuer, three_ds, online = raw.get("issuer"), raw.get("three_ds"), raw.get("online_payments", True)
    if issuer not in issuers:
        raise CardDataError(f"card {token!r}: unknown issuer {issuer!r}")
    if not isinstance(three_ds, bool) or not isinstance(online, bool):
        raise CardDataError(f"card {token!r}: three_ds and online_payments are true or false")
    return Card(token, str(issuer), CardProfile(three_ds=three_ds, online_payments=online))


# -- the simulator -------------------------------------------------------------------------------
@dataclass
class IssuerSimulator:
    """Simulated issuing banks (in memory): restrictions, 3-D Secure codes, unavailability, lost answers.

    ``debits`` lists every charge actually made (one entry per charged payment id: a repeated
    request is answered with the same charge), ``charge_calls`` counts charge requests per payment
    and ``refunds`` the charges returned. Codes are generated from the OS CSPRNG and kept only as
    keyed hashes (``domain/otp.py``), like payments' own.
    """

    data: CardData
    rates: RateTable
    courier: Courier = field(default_factory=MemoryCourier)
    debits: list[str] = field(default_factory=list)
    charge_calls: Counter[str] = field(default_factory=Counter)
    refunds: list[str] = field(default_factory=list)
    _charges: dict[str, Charged] = field(default_factory=dict)
    _challenges: dict[str, OtpChallenge] = field(default_factory=dict)
    _authenticated: set[str] = field(default_factory=set)
    _answers_lost: set[str] = field(default_factory=set)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def load(
        cls, cards: Path | None = None, rates: Path | None = None, courier: Courier | None = None
    ) -> IssuerSimulator:
        """The simulator over ``issuer_cards.toml`` and ``fx_rates.toml`` (or the files given)."""
        return cls(CardData.load(cards), RateTable.load(rates), courier or MemoryCourier())

    # -- IssuerAdapter
    def issuer_of(self, card_token: str) -> str | None:
        """The issuer id of a test token, or None."""
        card = self.data.cards.get(card_token)
        return card.issuer if card is not None else None

    async def authorize(self, request: CardRequest) -> Authorisation:
        """Restrictions first; then 3-D Secure (the code goes to the cardholder) or approval."""
        card, issuer = self._card(request)
        if issuer.behaviour == "unavailable":
            return Unavailable(f"{issuer.name} is unavailable")
        refused = self._restriction(request, card, issuer)
        if refused is not None:
            return refused
        if not needs_three_ds(card.profile, online=request.online):
            return Approved()
        code = generate_code()
        challenge = OtpChallenge.issue(
            request.payment_id,
            code,
            self._key,
            request.at,
            ttl=issuer.code_ttl,
            attempts=issuer.code_attempts,
        )
        self._challenges[request.payment_id] = challenge
        text = (
            f"{issuer.name}, 3-D Secure: код {code} для оплаты {request.amount}. Никому не сообщайте. / "
            f"Code {code} to pay {request.amount}. Never share it."
        )
        await self.courier.send(IssuerSms(request.payment_id, request.phone, text))
        return ChallengeSent(challenge.expires_at)

    async def confirm(self, request: CardRequest, code: str) -> ConfirmOutcome:
        """Check the 3-D Secure code (attempts and expiry like payments' codes); the right one charges."""
        _, issuer = self._card(request)
        if issuer.behaviour == "unavailable":
            return Unavailable(f"{issuer.name} is unavailable")
        done = self._charges.get(request.payment_id)
        if done is not None:  # the same confirmation again (a redelivered command): the same charge
            return done
        challenge = self._challenges.get(request.payment_id)
        if challenge is None:
            return Declined(
                Restriction.AUTHENTICATION_REQUIRED, "no 3-D Secure code was sent for this payment"
            )
        outcome = challenge.verify(code, request.at, key=self._key)
        self._challenges[request.payment_id] = challenge.after(outcome)
        if isinstance(outcome, Verified):
            self._authenticated.add(request.payment_id)
            return await self.charge(request)
        if isinstance(outcome, Wrong):
            return WrongCode(outcome.attempts_left)
        if isinstance(outcome, Expired):
            return CodeExpired()
        return AttemptsExhausted()

    async def charge(self, request: CardRequest) -> ChargeOutcome:
        """Charge once per payment id; the ``unknown-outcome`` issuer loses the first answer."""
        card, issuer = self._card(request)
        if issuer.behaviour == "unavailable":
            return Unavailable(f"{issuer.name} is unavailable")
        pid = request.payment_id
        self.charge_calls[pid] += 1
        done = self._charges.get(pid)
        if done is None:
            refused = self._restriction(request, card, issuer)
            if refused is not None:
                return refused
            if needs_three_ds(card.profile, online=request.online) and pid not in self._authenticated:
                return Declined(Restriction.AUTHENTICATION_REQUIRED, "3-D Secure was not passed")
            done = Charged(f"{issuer.id}-{len(self.debits) + 1:06d}")
            self._charges[pid] = done
            self.debits.append(pid)
        if issuer.behaviour == "unknown-outcome" and pid not in self._answers_lost:
            self._answers_lost.add(pid)  # the card is charged, but this answer never arrives
            return Unknown(f"no answer from {issuer.name}")
        return done

    async def refund(self, request: CardRequest) -> None:
        """Return the payment's charge to the card, once."""
        if request.payment_id in self._charges and request.payment_id not in self.refunds:
            self.refunds.append(request.payment_id)

    # -- for tests and the docs
    def charges_for(self, payment_id: str) -> int:
        """How many times the card was actually charged for a payment (0 or 1, never more)."""
        return self.debits.count(payment_id)

    def _card(self, request: CardRequest) -> tuple[Card, Issuer]:
        card = self.data.cards.get(request.card_token)
        if card is None:  # payments asks issuer_of first, so this is a caller's bug
            raise LookupError("unknown card token")
        return card, self.data.issuers[card.issuer]

    def _restriction(self, request: CardRequest, card: Card, issuer: Issuer) -> Declined | None:
        rate = self.rates.on(business_date_of(request.at))
        found = restriction_for(
            card.profile, request.amount, online=request.online, rate=rate, limit_usd=issuer.online_limit_usd
        )
        return None if found is None else Declined(found.restriction, f"{issuer.name}: {found.message}")

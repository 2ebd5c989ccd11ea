"""The issuer simulator: test cards as data, restrictions, 3-D Secure codes, unavailability, lost answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.payments.cards import _unresolved
from services.payments.domain.cards import RateTable, Restriction
from services.payments.issuer import (
    Approved,
    AttemptsExhausted,
    CardData,
    CardDataError,
    CardRequest,
    ChallengeSent,
    Charged,
    CodeExpired,
    Declined,
    IssuerSimulator,
    MemoryCourier,
    Unavailable,
    Unknown,
    WrongCode,
)
from shared.money import Money

pytestmark = pytest.mark.unit

AT = datetime(2025, 10, 20, 6, 0, tzinfo=UTC)  # 11:00 in Almaty: rate 540.00 ₸/USD
PHONE = "+77051234569"
OVER = Money(6_010_000)  # 60 100 ₸ ≈ 111.29 USD
UNDER = Money(200_000)


def simulator() -> tuple[IssuerSimulator, MemoryCourier]:
    courier = MemoryCourier()
    return IssuerSimulator.load(courier=courier), courier


def request(
    token: str, amount: Money, pid: str = "p-1", *, at: datetime = AT, online: bool = True
) -> CardRequest:
    return CardRequest(pid, token, amount, online, at, PHONE)


def code_of(courier: MemoryCourier, pid: str) -> str:
    [text] = courier.texts_for(pid)
    found = re.search(r"(?<!\d)\d{6}(?!\d)", text)
    assert found is not None
    return found.group(0)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_committed_card_file_loads_and_holds_only_tokens() -> None:
    data = CardData.load()
    assert {i.behaviour for i in data.issuers.values()} == {"online", "unavailable", "unknown-outcome"}
    for token, card in data.cards.items():
        assert token.startswith("tok_")
        assert sum(ch.isdigit() for ch in token) < 12
        assert card.issuer in data.issuers
    assert str(data.issuers["qazkom"].online_limit_usd) == "100"


@pytest.mark.parametrize(
    ("cards", "problem"),
    [
        ('"tok_a" = { issuer = "nobody", three_ds = false }', "unknown issuer"),
        ('"tok_a" = { issuer = "x", three_ds = "yes" }', "true or false"),
        ('"tok_4111111111111111" = { issuer = "x", three_ds = false }', "card number"),
    ],
)
def test_malformed_cards_are_refused(cards: str, problem: str) -> None:
    text = (
        'schema_version = 1\n[issuers.x]\nname = "X"\nbehaviour = "online"\nonline_limit_usd = "100"\n'
        f"code_ttl_s = 300\ncode_attempts = 3\n[cards]\n{cards}\n"
    )
    with pytest.raises(CardDataError, match=problem):
        CardData.from_toml(text)


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ('behaviour = "sometimes"', "behaviour"),
        ("online_limit_usd = 100.0", "no floats"),
        ("code_attempts = 0", "at least 1"),
    ],
)
def test_malformed_issuers_are_refused(issuer: str, problem: str) -> None:
    fields = {"name": '"X"', "behaviour": '"online"', "online_limit_usd": '"100"', "code_ttl_s": "300",
              "code_attempts": "3"}  # fmt: skip
    key = issuer.split(" = ")[0]
    fields[key] = issuer.split(" = ", 1)[1]
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    card = '"tok_aaaa" = { issuer = "x", three_ds = false }'
    text = f"schema_version = 1\n[issuers.x]\n{body}\n[cards]\n{card}\n"
    with pytest.raises(CardDataError, match=problem):
        CardData.from_toml(text)


def test_a_card_is_known_by_its_token_only() -> None:
    sim, _ = simulator()
    assert sim.issuer_of("tok_qazkom_visa_plain") == "qazkom"
    assert sim.issuer_of("tok_nobody_knows") is None


async def test_over_100_usd_online_without_3ds_is_declined_and_nothing_charged() -> None:
    sim, courier = simulator()
    answer = await sim.authorize(request("tok_qazkom_visa_plain", OVER))
    assert isinstance(answer, Declined)
    assert answer.restriction == Restriction.OVER_LIMIT_WITHOUT_3DS
    assert "111.29 USD" in answer.message
    # Asked to charge anyway, the issuer refuses again: its rule, not payments' courtesy.
    assert isinstance(await sim.charge(request("tok_qazkom_visa_plain", OVER)), Declined)
    assert sim.debits == []
    assert courier.sent == []


async def test_under_the_limit_without_3ds_is_approved_and_charged_once() -> None:
    sim, _ = simulator()
    assert isinstance(await sim.authorize(request("tok_qazkom_visa_plain", UNDER)), Approved)
    first = await sim.charge(request("tok_qazkom_visa_plain", UNDER))
    again = await sim.charge(request("tok_qazkom_visa_plain", UNDER))
    assert isinstance(first, Charged)
    assert again == first
    assert sim.charges_for("p-1") == 1
    assert sim.charge_calls["p-1"] == 2


async def test_the_rate_is_the_one_in_force_on_the_payment_date() -> None:
    # 53 000 ₸ is 100.95 USD at 525.00 (before 01.10.2025) but 98.14 USD at 540.00.
    sim, _ = simulator()
    amount = Money(5_300_000)
    september = await sim.authorize(
        request("tok_qazkom_visa_plain", amount, at=datetime(2025, 9, 20, 6, tzinfo=UTC))
    )
    october = await sim.authorize(request("tok_qazkom_visa_plain", amount, "p-2"))
    assert isinstance(september, Declined)
    assert isinstance(october, Approved)


async def test_3ds_sends_the_issuers_code_and_the_right_code_charges() -> None:
    sim, courier = simulator()
    req = request("tok_qazkom_visa_3ds", OVER)
    answer = await sim.authorize(req)
    assert isinstance(answer, ChallengeSent)
    assert answer.expires_at == AT + timedelta(minutes=5)
    [sms] = courier.sent
    assert sms.to == PHONE
    code = code_of(courier, "p-1")
    # Without the code the issuer does not charge a 3-D Secure card.
    refused = await sim.charge(req)
    assert isinstance(refused, Declined)
    assert refused.restriction == Restriction.AUTHENTICATION_REQUIRED
    charged = await sim.confirm(req, code)
    assert isinstance(charged, Charged)
    assert await sim.confirm(req, code) == charged  # a redelivered confirmation: the same charge
    assert sim.charges_for("p-1") == 1


async def test_wrong_3ds_codes_spend_attempts_and_the_last_one_exhausts() -> None:
    sim, courier = simulator()
    req = request("tok_halyk_visa_3ds", OVER)
    await sim.authorize(req)
    code = code_of(courier, "p-1")
    assert await sim.confirm(req, wrong(code)) == WrongCode(2)
    assert await sim.confirm(req, wrong(code)) == WrongCode(1)
    assert await sim.confirm(req, wrong(code)) == AttemptsExhausted()
    assert await sim.confirm(req, code) == AttemptsExhausted()  # even the right one, now
    assert sim.debits == []


async def test_an_expired_3ds_code_is_refused() -> None:
    sim, courier = simulator()
    await sim.authorize(request("tok_qazkom_visa_3ds", OVER))
    code = code_of(courier, "p-1")
    late = request("tok_qazkom_visa_3ds", OVER, at=AT + timedelta(minutes=5))
    assert await sim.confirm(late, code) == CodeExpired()
    assert sim.debits == []


async def test_online_payments_switched_off_are_declined_even_with_3ds() -> None:
    sim, courier = simulator()
    answer = await sim.authorize(request("tok_qazkom_mc_online_off", UNDER))
    assert isinstance(answer, Declined)
    assert answer.restriction == Restriction.ONLINE_PAYMENTS_OFF
    assert courier.sent == []


async def test_an_unavailable_issuer_never_charges() -> None:
    sim, _ = simulator()
    req = request("tok_down_visa", UNDER)
    assert isinstance(await sim.authorize(req), Unavailable)
    assert isinstance(await sim.charge(req), Unavailable)
    assert isinstance(await sim.confirm(req, "123456"), Unavailable)
    assert sim.debits == []


async def test_a_lost_answer_is_resolved_by_asking_again_with_the_same_payment_id() -> None:
    sim, _ = simulator()
    req = request("tok_slow_mc", UNDER)
    assert isinstance(await sim.authorize(req), Approved)
    assert isinstance(await sim.charge(req), Unknown)  # charged, but the answer was lost
    assert sim.charges_for("p-1") == 1
    again = await sim.charge(req)
    assert isinstance(again, Charged)
    assert sim.charges_for("p-1") == 1  # never two charges
    other = await sim.charge(request("tok_slow_mc", UNDER, "p-2"))
    assert isinstance(other, Unknown)  # each payment loses its first answer once
    assert sim.debits == ["p-1", "p-2"]


async def test_a_refund_returns_the_charge_once() -> None:
    sim, _ = simulator()
    req = request("tok_halyk_mc_plain", UNDER)
    await sim.charge(req)
    await sim.refund(req)
    await sim.refund(req)
    await sim.refund(request("tok_halyk_mc_plain", UNDER, "never-charged"))
    assert sim.refunds == ["p-1"]


def test_the_rates_the_simulator_uses_are_the_committed_ones() -> None:
    sim, _ = simulator()
    assert sim.rates == RateTable.load()


def test_only_the_issuers_answer_resolves_an_unknown_outcome() -> None:
    # payments asks again while the card may have been charged: no answer, or no contact after
    # a request that got none. "Unavailable" to a first request means nothing was charged.
    assert _unresolved(Unknown(), {"state": "AUTHORISED"})
    assert _unresolved(Unavailable(), {"state": "UNKNOWN"})
    assert not _unresolved(Unavailable(), {"state": "AUTHORISED"})
    assert not _unresolved(Unavailable(), {"state": "CHALLENGE"})
    assert not _unresolved(Declined(Restriction.OVER_LIMIT_WITHOUT_3DS, "no"), {"state": "UNKNOWN"})
    assert not _unresolved(Charged("ref"), {"state": "UNKNOWN"})

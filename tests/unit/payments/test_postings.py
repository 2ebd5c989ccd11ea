"""Every posting builder, entry by entry, and every amount it refuses (domain §1–§4 money movements).

``test_ledger.py`` checks the properties (balanced, amount + fee debited); this module pins each
builder's whole posting, so a leg on the wrong account, a wrong kind or a lost payment id fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from services.payments.domain import (
    AccountType,
    CustomerAccount,
    Entry,
    Funding,
    Posting,
    PostingKind,
    SystemAccount,
    capture_posting,
    funding_account,
    hold_posting,
    overpayment_credit_posting,
    purchase_posting,
    red_bill_posting,
    refund_posting,
    refund_split,
    top_up_posting,
    transfer_posting,
    void_hold_posting,
)
from shared.money import Money

pytestmark = pytest.mark.unit

T = Money.of_tenge
GOLD = CustomerAccount("c1", AccountType.GOLD)
WALLET = CustomerAccount("c1", AccountType.WALLET)
S = SystemAccount


def entries(*legs: tuple[CustomerAccount | SystemAccount, int]) -> tuple[Entry, ...]:
    return tuple(Entry(account, T(tenge)) for account, tenge in legs)


POSTINGS: list[tuple[str, Posting, Posting]] = [
    (
        "top-up",
        top_up_posting("p1", "c1", AccountType.WALLET, T(500)),
        Posting("p1", PostingKind.TOP_UP, entries((S.CASH_IN, -500), (WALLET, 500))),
    ),
    (
        "hold",
        hold_posting("p3", GOLD, T(1_050)),
        Posting("p3", PostingKind.HOLD, entries((GOLD, -1_050), (S.HOLDS, 1_050))),
    ),
    (
        "void",
        void_hold_posting("p4", GOLD, T(1_050)),
        Posting("p4", PostingKind.VOID, entries((S.HOLDS, -1_050), (GOLD, 1_050))),
    ),
    (
        "capture",
        capture_posting("p5", T(1_000), T(50)),
        Posting(
            "p5",
            PostingKind.CAPTURE,
            entries((S.HOLDS, -1_050), (S.PROVIDER_SETTLEMENT, 1_000), (S.FEE_INCOME, 50)),
        ),
    ),
    (
        "capture to a customer",
        capture_posting("p6", T(1_000), T(0), WALLET),
        Posting("p6", PostingKind.CAPTURE, entries((S.HOLDS, -1_000), (WALLET, 1_000))),
    ),
    (
        "purchase with a bonus part",
        purchase_posting("p7", GOLD, T(1_000), T(300)),
        Posting(
            "p7",
            PostingKind.PURCHASE,
            entries((GOLD, -700), (S.BONUS_FUNDING, -300), (S.PROVIDER_SETTLEMENT, 1_000)),
        ),
    ),
    (
        "transfer",
        transfer_posting("p8", GOLD, WALLET, T(1_000), T(95)),
        Posting("p8", PostingKind.TRANSFER, entries((GOLD, -1_095), (WALLET, 1_000), (S.FEE_INCOME, 95))),
    ),
    (
        "Red bill",
        red_bill_posting("p9", S.CASH_IN, T(15_000)),
        Posting("p9", PostingKind.RED_BILL_PAYMENT, entries((S.CASH_IN, -15_000), (S.RED_FUNDING, 15_000))),
    ),
    (
        "refund with a bonus share",
        refund_posting("p10", GOLD, T(1_000), T(300)),
        Posting("p10", PostingKind.REFUND, entries((S.REFUNDS, -1_000), (GOLD, 700), (S.BONUS_FUNDING, 300))),
    ),
    (
        "overpayment to Gold",
        overpayment_credit_posting("p11", "c1", T(5_000)),
        Posting("p11", PostingKind.OVERPAYMENT_CREDIT, entries((S.RED_FUNDING, -5_000), (GOLD, 5_000))),
    ),
]


@pytest.mark.parametrize(
    ("built", "expected"), [(b, e) for _, b, e in POSTINGS], ids=[n for n, _, _ in POSTINGS]
)
def test_each_builder_posts_exactly_these_entries(built: Posting, expected: Posting) -> None:
    assert built == expected


def test_builders_called_now_post_the_same() -> None:
    # The table above is built at import; these run inside the test, with the code under test.
    assert top_up_posting("p1", "c1", AccountType.WALLET, T(500)) == POSTINGS[0][2]
    assert hold_posting("p3", GOLD, T(1_050)) == POSTINGS[1][2]
    assert void_hold_posting("p4", GOLD, T(1_050)) == POSTINGS[2][2]
    assert capture_posting("p5", T(1_000), T(50)) == POSTINGS[3][2]
    assert capture_posting("p6", T(1_000), T(0), WALLET) == POSTINGS[4][2]
    assert purchase_posting("p7", GOLD, T(1_000), T(300)) == POSTINGS[5][2]
    assert transfer_posting("p8", GOLD, WALLET, T(1_000), T(95)) == POSTINGS[6][2]
    assert red_bill_posting("p9", S.CASH_IN, T(15_000)) == POSTINGS[7][2]
    assert refund_posting("p10", GOLD, T(1_000), T(300)) == POSTINGS[8][2]
    assert overpayment_credit_posting("p11", "c1", T(5_000)) == POSTINGS[9][2]


@pytest.mark.parametrize(
    ("funding", "account"),
    [
        (Funding.GOLD, GOLD),
        (Funding.WALLET, WALLET),
        (Funding.RED, S.RED_FUNDING),
        (Funding.BONUS, S.BONUS_FUNDING),
        (Funding.EXTERNAL_CARD, S.EXTERNAL_CARDS),
        (Funding.CASH, S.CASH_IN),
    ],
)
def test_each_funding_debits_its_account(funding: Funding, account: CustomerAccount | SystemAccount) -> None:
    assert funding_account("c1", funding) == account


Z = Money.zero()
REFUSED: list[tuple[str, Callable[[], object], str]] = [
    (
        "a zero top-up",
        lambda: top_up_posting("p", "c1", AccountType.GOLD, Z),
        f"amount must be positive, got {Z}",
    ),
    ("a zero hold", lambda: hold_posting("p", GOLD, Z), f"total must be positive, got {Z}"),
    ("a zero void", lambda: void_hold_posting("p", GOLD, Z), f"total must be positive, got {Z}"),
    (
        "a negative capture fee",
        lambda: capture_posting("p", T(1), T(-1)),
        f"fee cannot be negative, got {T(-1)}",
    ),
    (
        "a negative bonus part",
        lambda: purchase_posting("p", GOLD, T(1), T(-1)),
        f"bonus_part cannot be negative, got {T(-1)}",
    ),
    (
        "a bonus over the price",
        lambda: purchase_posting("p", GOLD, T(1), T(2)),
        f"bonus part {T(2)} exceeds the purchase {T(1)}",
    ),
    (
        "a negative transfer fee",
        lambda: transfer_posting("p", GOLD, WALLET, T(1), T(-1)),
        f"fee cannot be negative, got {T(-1)}",
    ),
    (
        "a transfer to itself",
        lambda: transfer_posting("p", GOLD, GOLD, T(1), Z),
        "a transfer needs two different accounts",
    ),
    ("a zero Red bill", lambda: red_bill_posting("p", GOLD, Z), f"amount must be positive, got {Z}"),
    (
        "a negative bonus share",
        lambda: refund_posting("p", GOLD, T(1), T(-1)),
        f"bonus_part cannot be negative, got {T(-1)}",
    ),
    (
        "a bonus share over the refund",
        lambda: refund_posting("p", GOLD, T(1), T(2)),
        f"bonus share {T(2)} exceeds the refund {T(1)}",
    ),
    ("a zero payment to split", lambda: refund_split(Z, Z, Z, T(1)), f"paid must be positive, got {Z}"),
    ("a zero refund to split", lambda: refund_split(T(10), Z, Z, Z), f"refund must be positive, got {Z}"),
    (
        "refunding more than paid",
        lambda: refund_split(T(10), Z, T(4), T(7)),
        f"refunding {T(11)} of a {T(10)} payment",
    ),
]


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in REFUSED], ids=[n for n, _, _ in REFUSED])
def test_refused_amounts_say_which_and_why(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


def test_the_whole_rest_of_a_payment_can_be_refunded() -> None:
    # The bonus share is 4/10 of the cumulative refund, rounded down: 1.60 ₸ of the first 4 ₸.
    assert refund_split(T(10), T(4), T(4), T(6)) == (Money(360), Money(240))
    assert refund_split(T(10), T(4), Z, T(10)) == (T(6), T(4))

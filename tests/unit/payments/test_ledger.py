"""Double-entry postings: every builder balances, customer debits equal amount + fee.

Every debit of a customer is a hold, then a capture or a void (``services.payments.domain.ledger``).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import (
    AccountType,
    CustomerAccount,
    Entry,
    Funding,
    Posting,
    PostingKind,
    SystemAccount,
    UnbalancedPosting,
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

GOLD = CustomerAccount("c1", AccountType.GOLD)
WALLET = CustomerAccount("c1", AccountType.WALLET)
OTHER_GOLD = CustomerAccount("c2", AccountType.GOLD)
SA = SystemAccount
M = Money.parse


def legs(posting: Posting) -> dict[object, int]:
    return {entry.account: entry.amount.tiyn for entry in posting.entries}


def total(posting: Posting) -> int:
    return sum(entry.amount.tiyn for entry in posting.entries)


def net(posting: Posting, account: object) -> Money:
    """What the posting moves into ``account``."""
    return sum((e.amount for e in posting.entries if e.account == account), Money.zero())


def customer_debit(posting: Posting) -> Money:
    """What the posting takes out of customer accounts (non-negative)."""
    out = [e.amount for e in posting.entries if isinstance(e.account, CustomerAccount)]
    return -sum((a for a in out if a.is_negative), Money.zero())


def test_top_up_credits_the_whole_amount() -> None:
    p = top_up_posting("p1", "c1", AccountType.WALLET, M("1000"))
    assert legs(p) == {SA.CASH_IN: -100_000, WALLET: 100_000}
    assert p.kind is PostingKind.TOP_UP


def test_service_payment_holds_amount_plus_fee_then_splits_provider_and_fee() -> None:
    hold = hold_posting("p1", GOLD, M("20050"))
    assert customer_debit(hold) == M("20050")
    p = capture_posting("p1", M("20000"), M("50"))
    assert legs(p) == {SA.HOLDS: -2_005_000, SA.PROVIDER_SETTLEMENT: 2_000_000, SA.FEE_INCOME: 5_000}
    assert customer_debit(p) == Money.zero()


def test_zero_fee_leaves_no_fee_entry() -> None:
    p = capture_posting("p1", M("100"), Money.zero())
    assert SA.FEE_INCOME not in legs(p)


def test_external_card_funding_is_a_system_account() -> None:
    source = funding_account("c1", Funding.EXTERNAL_CARD)
    p = hold_posting("p1", source, M("101"))
    assert legs(p)[SA.EXTERNAL_CARDS] == -10_100
    assert customer_debit(p) == Money.zero()


def test_hold_then_capture() -> None:
    amount, fee = M("6000"), M("35")
    hold = hold_posting("p1", GOLD, amount + fee)
    capture = capture_posting("p1", amount, fee)
    assert legs(hold) == {GOLD: -603_500, SA.HOLDS: 603_500}
    assert legs(capture) == {SA.HOLDS: -603_500, SA.PROVIDER_SETTLEMENT: 600_000, SA.FEE_INCOME: 3_500}
    assert net(hold, SA.HOLDS) + net(capture, SA.HOLDS) == Money.zero()


def test_hold_then_void_restores_the_source() -> None:
    hold = hold_posting("p1", WALLET, M("7000"))
    void = void_hold_posting("p1", WALLET, M("7000"))
    assert net(hold, WALLET) + net(void, WALLET) == Money.zero()
    assert void.kind is PostingKind.VOID


def test_capture_of_a_held_transfer() -> None:
    p = capture_posting("p1", M("10000"), M("95"), destination=OTHER_GOLD)
    assert legs(p) == {SA.HOLDS: -1_009_500, OTHER_GOLD: 1_000_000, SA.FEE_INCOME: 9_500}


def test_purchase_with_gold() -> None:
    p = purchase_posting("p1", GOLD, M("15000"))
    assert legs(p) == {GOLD: -1_500_000, SA.PROVIDER_SETTLEMENT: 1_500_000}


def test_purchase_with_red_is_paid_by_red_funding() -> None:
    p = purchase_posting("p1", funding_account("c1", Funding.RED), M("15000"))
    assert legs(p) == {SA.RED_FUNDING: -1_500_000, SA.PROVIDER_SETTLEMENT: 1_500_000}
    assert customer_debit(p) == Money.zero()


def test_purchase_with_a_bonus_part() -> None:
    p = purchase_posting("p1", GOLD, M("10000"), bonus_part=M("6000"))
    assert legs(p) == {GOLD: -400_000, SA.BONUS_FUNDING: -600_000, SA.PROVIDER_SETTLEMENT: 1_000_000}


def test_transfer_between_customers_and_own_accounts() -> None:
    p = transfer_posting("p1", GOLD, OTHER_GOLD, M("500"), M("95"))
    assert legs(p) == {GOLD: -59_500, OTHER_GOLD: 50_000, SA.FEE_INCOME: 9_500}
    own = transfer_posting("p2", GOLD, WALLET, M("500"), Money.zero())
    assert legs(own) == {GOLD: -50_000, WALLET: 50_000}
    with pytest.raises(ValueError, match="two different accounts"):
        transfer_posting("p3", GOLD, GOLD, M("1"), Money.zero())


def test_red_bill_from_gold_and_cash() -> None:
    assert legs(red_bill_posting("p1", GOLD, M("35000"))) == {GOLD: -3_500_000, SA.RED_FUNDING: 3_500_000}
    cash = red_bill_posting("p2", funding_account("c1", Funding.CASH), M("20000"))
    assert legs(cash) == {SA.CASH_IN: -2_000_000, SA.RED_FUNDING: 2_000_000}


def test_refund_to_original_funding_with_bonus_share() -> None:
    p = refund_posting("p1", GOLD, M("5000"), bonus_part=M("3000"))
    assert legs(p) == {SA.REFUNDS: -500_000, GOLD: 200_000, SA.BONUS_FUNDING: 300_000}
    red = refund_posting("p2", SA.RED_FUNDING, M("100"))
    assert legs(red) == {SA.REFUNDS: -10_000, SA.RED_FUNDING: 10_000}


def test_overpayment_goes_to_gold() -> None:
    p = overpayment_credit_posting("p1", "c1", M("5000"))
    assert legs(p) == {SA.RED_FUNDING: -500_000, GOLD: 500_000}


def test_a_void_undoes_its_hold_leg_by_leg() -> None:
    hold = hold_posting("p1", GOLD, M("101"))
    void = void_hold_posting("p1", GOLD, M("101"))
    assert all(net(void, e.account) == -e.amount for e in hold.entries)


def test_unbalanced_postings_are_refused() -> None:
    with pytest.raises(UnbalancedPosting, match="off by"):
        Posting("p1", PostingKind.TOP_UP, (Entry(GOLD, M("1")), Entry(SA.CASH_IN, M("-0.99"))))
    with pytest.raises(UnbalancedPosting, match="two entries"):
        Posting("p1", PostingKind.TOP_UP, (Entry(GOLD, Money.zero()),))
    with pytest.raises(UnbalancedPosting, match="zero entry"):
        Posting("p1", PostingKind.TOP_UP, (Entry(GOLD, Money.zero()), Entry(SA.CASH_IN, Money.zero())))


@pytest.mark.parametrize(
    "build",
    [
        lambda: top_up_posting("p", "c1", AccountType.GOLD, Money.zero()),
        lambda: capture_posting("p", M("1"), M("-1")),
        lambda: purchase_posting("p", GOLD, M("1"), M("2")),
        lambda: refund_posting("p", GOLD, M("1"), M("2")),
        lambda: hold_posting("p", GOLD, Money.zero()),
    ],
)
def test_builders_refuse_bad_amounts(build: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        build()  # type: ignore[operator]


# -- properties -----------------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=10**13).map(Money)
fees = st.integers(min_value=0, max_value=10**8).map(Money)
sources = st.sampled_from([GOLD, WALLET])


@given(amounts, fees, sources)
def test_every_builder_balances_and_debits_amount_plus_fee(
    amount: Money, fee: Money, source: CustomerAccount
) -> None:
    total_debit = amount + fee
    postings = [
        transfer_posting("p", source, OTHER_GOLD, amount, fee),
        hold_posting("p", source, total_debit),
    ]
    for p in postings:
        assert total(p) == 0
        assert customer_debit(p) == total_debit
    for p in [
        top_up_posting("p", "c1", source.type, amount),
        capture_posting("p", amount, fee),
        void_hold_posting("p", source, total_debit),
        red_bill_posting("p", SA.CASH_IN, amount),
        overpayment_credit_posting("p", "c1", amount),
        refund_posting("p", source, amount),
    ]:
        assert total(p) == 0
        assert customer_debit(p) == Money.zero()
    assert customer_debit(red_bill_posting("p", source, amount)) == amount


@given(amounts, st.data())
def test_purchase_balances_and_debits_all_but_the_bonus(amount: Money, data: st.DataObject) -> None:
    bonus = Money(data.draw(st.integers(min_value=0, max_value=amount.tiyn)))
    p = purchase_posting("p", GOLD, amount, bonus)
    assert total(p) == 0
    assert customer_debit(p) == amount - bonus
    assert net(p, SA.PROVIDER_SETTLEMENT) == amount


@given(st.integers(min_value=2, max_value=10**12), st.data())
def test_partial_refunds_return_the_bonus_exactly(paid_tiyn: int, data: st.DataObject) -> None:
    paid = Money(paid_tiyn)
    bonus = Money(data.draw(st.integers(min_value=0, max_value=paid_tiyn)))
    cuts = sorted(set(data.draw(st.lists(st.integers(min_value=1, max_value=paid_tiyn - 1), max_size=5))))
    refunded, to_funding, to_bonus = Money.zero(), Money.zero(), Money.zero()
    for end in [*cuts, paid_tiyn]:
        refund = Money(end) - refunded
        funding_part, bonus_part = refund_split(paid, bonus, refunded, refund)
        assert funding_part + bonus_part == refund
        assert not funding_part.is_negative
        assert not bonus_part.is_negative
        p = refund_posting("p", GOLD, refund, bonus_part)
        assert total(p) == 0
        refunded, to_funding, to_bonus = refunded + refund, to_funding + funding_part, to_bonus + bonus_part
    assert to_bonus == bonus
    assert to_funding == paid - bonus

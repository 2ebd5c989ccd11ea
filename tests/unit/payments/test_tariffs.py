"""Fee tariffs: every Homebank row and tax tier, boundaries, data checks and fee properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import (
    AccountType,
    Channel,
    FeeSchedule,
    Funding,
    Merchant,
    Operation,
    OperationKind,
    PayRedBillRequest,
    PayServiceRequest,
    PurchaseRequest,
    ReasonCode,
    TariffDataError,
    TariffError,
    TopUpRequest,
    TransferKind,
    TransferRequest,
    operation_for,
)
from shared.money import Money

pytestmark = pytest.mark.unit

SCHEDULE = FeeSchedule.load()
M = Money.parse
AMOUNT = M("12345.67")

# (rule id, operation, expected fee): one case per row of the Homebank table in domain §2.
HOMEBANK_ROWS = [
    ("homebank.mobile", Operation.service("mobile", AMOUNT), "35"),
    *[
        ("homebank.services_50", Operation.service(category, AMOUNT), "50")
        for category in (
            "phone",
            "tv",
            "security",
            "internet",
            "electricity",
            "gas",
            "water",
            "heating",
            "intercom",
            "utilities",
            "subscription",
            "direct_selling",
            "media_ads",
        )
    ],
    ("homebank.education", Operation.service("education", AMOUNT), "50"),
    ("homebank.kindergarten", Operation.service("kindergarten", AMOUNT), "100"),
    ("homebank.services_100", Operation.service("flight", AMOUNT), "100"),
    ("homebank.services_100", Operation.service("travel", AMOUNT), "100"),
    ("homebank.services_100", Operation.service("mortgage", AMOUNT), "100"),
    ("homebank.services_100", Operation.service("loan", AMOUNT), "100"),
    ("homebank.services_100", Operation.service("ksk", AMOUNT), "100"),
    ("homebank.rent", Operation.service("rent", AMOUNT), "200"),
    ("homebank.traffic_fines", Operation.service("fine", AMOUNT), "200"),
    # 0.5 % of 12,345.67 ₸ = 61.72835 ₸ → half up to the tiyn = 61.73 ₸
    ("homebank.domain_registration", Operation.service("domain", AMOUNT), "61.73"),
    ("homebank.astana_erc", Operation.service("electricity", AMOUNT, "astana_erc"), "61.73"),
    ("homebank.astana_erc", Operation.service("water", M("1000"), "astana_erc"), "50"),  # minimum
    ("homebank.other", Operation.service("other", AMOUNT), "61.73"),
    ("homebank.other", Operation.service("restaurant", AMOUNT), "61.73"),
    ("homebank.brokerage", Operation.service("brokerage", AMOUNT), "500"),
    ("homebank.mutual_funds", Operation.service("mutual_fund", AMOUNT), "1000"),
    ("homebank.tax", Operation.service("tax", AMOUNT), "100"),
    ("homebank.transfer_own", Operation.transfer(TransferKind.OWN_ACCOUNTS, AMOUNT), "0"),
    ("homebank.transfer_card_to_card", Operation.transfer(TransferKind.CARD_TO_CARD, AMOUNT), "95"),
    ("homebank.transfer_account_internal", Operation.transfer(TransferKind.ACCOUNT_INTERNAL, AMOUNT), "200"),
    ("homebank.transfer_account_external", Operation.transfer(TransferKind.ACCOUNT_EXTERNAL, AMOUNT), "250"),
    ("homebank.top_up", Operation.of(OperationKind.TOP_UP, AMOUNT), "0"),
    ("homebank.purchase", Operation.of(OperationKind.PURCHASE, AMOUNT), "0"),
    ("homebank.red_bill", Operation.of(OperationKind.RED_BILL, AMOUNT), "0"),
]


@pytest.mark.parametrize(
    ("rule_id", "operation", "fee"),
    HOMEBANK_ROWS,
    ids=[f"{rule}-{op.category or op.transfer_kind or op.kind}" for rule, op, _ in HOMEBANK_ROWS],
)
def test_homebank_row(rule_id: str, operation: Operation, fee: str) -> None:
    quote = SCHEDULE.quote_fee("homebank", operation)
    assert quote.rule_id == rule_id
    assert quote.fee == M(fee)
    assert quote.description


def test_every_homebank_rule_has_a_case() -> None:
    rules = {rule.id for rule in SCHEDULE.profiles["homebank"].rules}
    assert rules == {rule_id for rule_id, _, _ in HOMEBANK_ROWS}


# domain §2 tax tiers; tier rule: a tier runs from its whole-tenge lower bound (inclusive) to the
# next one (exclusive), so the tiyn of 5,000.50 ₸ keep it in the 100–5,000 tier.
TAX_TIERS = [
    ("0", "0"),
    ("0.01", "0"),
    ("99", "0"),
    ("99.99", "0"),
    ("100", "25"),
    ("2500", "25"),
    ("5000", "25"),
    ("5000.01", "25"),
    ("5000.50", "25"),
    ("5000.99", "25"),
    ("5001", "50"),
    ("10000", "50"),
    ("10000.99", "50"),
    ("10001", "100"),
    ("30000", "100"),
    ("30001", "200"),
    ("60000", "200"),
    ("60001", "400"),
    ("100000", "400"),
    ("100000.99", "400"),
    ("100001", "500"),
    ("25000000", "500"),
]


@pytest.mark.parametrize(("amount", "fee"), TAX_TIERS)
def test_tax_tier(amount: str, fee: str) -> None:
    quote = SCHEDULE.quote_fee("homebank", Operation.service("tax", M(amount)))
    assert (quote.rule_id, quote.fee) == ("homebank.tax", M(fee))


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        ("1", "0.01"),  # 0.5 tiyn → half up → 1 tiyn
        ("3", "0.02"),  # 1.5 tiyn → 2 tiyn
        ("0.99", "0"),  # 0.495 tiyn → 0
        ("1000.01", "5"),  # 500.005 tiyn → 500 tiyn
        ("1000.99", "5.00"),  # 500.495 tiyn → 500 tiyn
        ("1001", "5.01"),  # 500.5 tiyn → 501 tiyn
    ],
)
def test_percent_fee_rounds_half_up_to_the_tiyn(amount: str, fee: str) -> None:
    assert SCHEDULE.quote_fee("homebank", Operation.service("other", M(amount))).fee == M(fee)


@pytest.mark.parametrize(
    ("amount", "fee"),
    [("0.01", "50"), ("9999.99", "50"), ("10000", "50"), ("10001", "50.01"), ("20000", "100")],
)
def test_astana_erc_minimum(amount: str, fee: str) -> None:
    assert SCHEDULE.quote_fee("homebank", Operation.service("gas", M(amount), "astana_erc")).fee == M(fee)


@pytest.mark.parametrize("spelling", ["astana_erc", "Astana-ERC", " ASTANA ERC "])
def test_provider_ids_are_normalised(spelling: str) -> None:
    quote = SCHEDULE.quote_fee("homebank", Operation.service("water", AMOUNT, spelling))
    assert quote.rule_id == "homebank.astana_erc"


def test_other_utility_providers_pay_the_flat_utility_fee() -> None:
    quote = SCHEDULE.quote_fee("homebank", Operation.service("water", AMOUNT, "alseco"))
    assert (quote.rule_id, quote.fee) == ("homebank.services_50", M("50"))


def test_astana_erc_rule_only_covers_utilities() -> None:
    quote = SCHEDULE.quote_fee("homebank", Operation.service("mobile", AMOUNT, "astana_erc"))
    assert quote.rule_id == "homebank.mobile"


@pytest.mark.parametrize("category", sorted(SCHEDULE.categories))
def test_kaspi_charges_nothing_for_services(category: str) -> None:
    # domain §2 (000): "no commission at all for top-ups and payments for services".
    quote = SCHEDULE.quote_fee("kaspi", Operation.service(category, AMOUNT, "astana_erc"))
    assert (quote.rule_id, quote.fee) == ("kaspi.service", Money.zero())


@pytest.mark.parametrize("kind", list(TransferKind))
def test_kaspi_transfers_are_free(kind: TransferKind) -> None:
    assert SCHEDULE.quote_fee("kaspi", Operation.transfer(kind, AMOUNT)).fee == Money.zero()


def test_kaspi_is_the_default_profile() -> None:
    assert SCHEDULE.default_profile == "kaspi"


def test_unknown_category_is_a_reason() -> None:
    with pytest.raises(TariffError, match="unknown service category 'casino'") as err:
        SCHEDULE.quote_fee("homebank", Operation.service("casino", AMOUNT))
    assert err.value.reason is ReasonCode.UNKNOWN_CATEGORY


def test_unknown_profile_is_a_reason() -> None:
    with pytest.raises(TariffError) as err:
        SCHEDULE.quote_fee("halyk", Operation.service("mobile", AMOUNT))
    assert err.value.reason is ReasonCode.UNKNOWN_TARIFF_PROFILE


def test_negative_amount_cannot_be_quoted() -> None:
    with pytest.raises(ValueError, match="negative"):
        SCHEDULE.quote_fee("homebank", Operation.service("mobile", M("-1")))


def test_operation_for_requests() -> None:
    amount = M("100")
    service = PayServiceRequest("c1", Channel.APP, amount, Funding.GOLD, "water", "astana_erc", "123")
    own = TransferRequest("c1", Channel.APP, amount, AccountType.GOLD, "c1", AccountType.WALLET)
    other = TransferRequest("c1", Channel.APP, amount, AccountType.GOLD, "c2")
    assert operation_for(service) == Operation.service("water", amount, "astana_erc")
    assert operation_for(own) == Operation.transfer(TransferKind.OWN_ACCOUNTS, amount)
    assert operation_for(other) == Operation.transfer(TransferKind.CARD_TO_CARD, amount)
    top_up = TopUpRequest("c1", Channel.ATM, amount, AccountType.WALLET)
    assert operation_for(top_up).kind is OperationKind.TOP_UP
    purchase = PurchaseRequest("c1", Channel.APP, amount, Funding.RED, Merchant.KASPI_QR)
    assert operation_for(purchase).kind is OperationKind.PURCHASE
    red = PayRedBillRequest("c1", Channel.ATM, amount, Funding.CASH)
    assert operation_for(red).kind is OperationKind.RED_BILL


# -- the data checks ------------------------------------------------------------------------------

MINIMAL = """
default_profile = "p"
[categories]
a = "A"
b = "B"
[transfer_kinds]
own_accounts = "o"
card_to_card = "c"
account_internal = "i"
account_external = "e"
[profiles.p]
description = "P"
[[profiles.p.rules]]
id = "p.rest"
operation = "transfer"
fee = "0"
[[profiles.p.rules]]
id = "p.top_up"
operation = "top_up"
fee = "0"
[[profiles.p.rules]]
id = "p.purchase"
operation = "purchase"
fee = "0"
[[profiles.p.rules]]
id = "p.red_bill"
operation = "red_bill"
fee = "0"
"""


def _with(rules: str) -> str:
    return MINIMAL + rules


def test_minimal_schedule_loads() -> None:
    text = _with('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = "1.50"\n')
    schedule = FeeSchedule.from_toml(text)
    assert schedule.quote_fee("p", Operation.service("a", M("5"))).fee == M("1.50")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("", "no rule for"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = 1.5\n', "strings in tenge"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\npercent = 0.5\n', "strings"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = "1.234"\n', "not an amount"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = "-1"\n', "negative"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\n', "exactly one of"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = "1"\nminimum = "1"\n', "minimum"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "sevrice"\nfee = "1"\n', "unknown operation"),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = "1"\ncolour = 1\n', "unknown keys"),
        (
            '[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\ncategories = ["zz"]\nfee = "1"\n',
            "unknown categories",
        ),
        (
            '[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\nfee = "1"\n'
            '[[profiles.p.rules]]\nid = "p.t"\noperation = "service"\ncategories = ["a"]\nfee = "2"\n',
            "all match",
        ),
        (
            '[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\ntiers = [{ from = "1", fee = "0" }]\n',
            "first tier must start at 0",
        ),
        (
            '[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\n'
            'tiers = [{ from = "0", fee = "0" }, { from = "5", fee = "1" }, { from = "5", fee = "2" }]\n',
            "strictly increasing",
        ),
        ('[[profiles.p.rules]]\nid = "p.s"\noperation = "service"\npercent = "101"\n', "out of range"),
        ('[[profiles.p.rules]]\nid = "p.rest"\noperation = "service"\nfee = "1"\n', "unique"),
    ],
)
def test_bad_tariff_data_is_refused(rules: str, message: str) -> None:
    with pytest.raises(TariffDataError, match=message):
        FeeSchedule.from_toml(_with(rules))


# -- properties -----------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**13).map(Money)
profiles = st.sampled_from(sorted(SCHEDULE.profiles))
categories = st.sampled_from(sorted(SCHEDULE.categories))
providers = st.sampled_from([None, "astana_erc", "alseco", "beeline"])


@given(profiles, categories, providers, amounts)
def test_fee_is_never_negative(profile: str, category: str, provider: str | None, amount: Money) -> None:
    assert not SCHEDULE.quote_fee(profile, Operation.service(category, amount, provider)).fee.is_negative


@given(amounts)
def test_percent_fee_respects_its_minimum(amount: Money) -> None:
    fee = SCHEDULE.quote_fee("homebank", Operation.service("utilities", amount, "astana_erc")).fee
    assert fee >= M("50")
    assert fee == max(amount.percent(Decimal("0.5"), "half_up"), M("50"))


@given(amounts)
def test_plain_percent_fee_is_half_up(amount: Money) -> None:
    fee = SCHEDULE.quote_fee("homebank", Operation.service("other", amount)).fee
    exact = Decimal(amount.tiyn) * Decimal("0.005")
    assert abs(Decimal(fee.tiyn) - exact) <= Decimal("0.5")


@given(amounts, amounts)
def test_tax_fee_grows_with_the_amount(a: Money, b: Money) -> None:
    low, high = sorted([a, b], key=lambda m: m.tiyn)

    def fee(amount: Money) -> Money:
        return SCHEDULE.quote_fee("homebank", Operation.service("tax", amount)).fee

    assert fee(low) <= fee(high)

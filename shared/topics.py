"""The topic registry: every Kafka topic aqsha uses, who writes it, who reads it, what it carries.

Every record is keyed by **customer id** (``str(UUID)``) so one customer's messages stay in order on
one partition; the exceptions are ``aqsha.billing.commands`` and ``aqsha.billing.days``, keyed by the
ISO business date (their ``key_field``).
Each topic has a dead-letter twin named by one rule, ``dlq_name(topic) == f"{topic}.dlq"``, with
the same partition count and 30-day retention. Tests isolate themselves with a name suffix
(``resolve(name, suffix)``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

MINUTE_MS: Final = 60_000
DAY_MS: Final = 24 * 60 * MINUTE_MS
#: Kafka's "keep forever".
FOREVER: Final = -1
DEFAULT_PARTITIONS: Final = 12
DLQ_SUFFIX: Final = ".dlq"
DLQ_RETENTION_MS: Final = 30 * DAY_MS

KEY_CUSTOMER: Final = "customer_id: the customer's UUID as a string; one customer's messages stay ordered"

#: Who may sign records (docs/security.md). Each principal holds its own Ed25519 key; the trust
#: registry (``shared.trust``) maps key ids to principals, and the topics below say which principal
#: may write which contract where. The four services sign through their outbox relay.
SERVICE_PRINCIPALS: Final = ("payments", "bonus", "billing", "notify")
EXTERNAL_PRINCIPALS: Final[dict[str, str]] = {
    "onboarding": "The bank's onboarding system: customer registrations and phone changes.",
    "app-gateway": "The mobile app's gateway: commands a signed-in customer made in the app (channel APP).",
    "cash-network": "Kaspi terminals, ATMs and cashiers: cash top-ups, cash Red repayments, payments at a "
    "terminal (channels TERMINAL, ATM, CASHIER).",
    "red-origination": "The bank's Kaspi Red origination: Red accounts, their limits and terms.",
    "ops": "Operators (the aqsha CLI) and the scheduler: business-day runs.",
}
PRINCIPALS: Final = (*SERVICE_PRINCIPALS, *EXTERNAL_PRINCIPALS)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One Kafka topic: its name, sizing, key, retention, producers, consumers and contracts."""

    name: str
    partitions: int
    key: str
    retention_ms: int
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    contracts: tuple[str, ...]
    description: str
    #: Payload field whose value must equal the record key (``key_mismatch`` otherwise).
    key_field: str = "customer_id"
    #: Contracts that only some of ``producers`` may write; the others may be written by any of them.
    writers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ``segment.ms``: how soon a segment closes, so retention can delete it (None: broker default).
    segment_ms: int | None = None

    def writers_of(self, contract: str) -> tuple[str, ...]:
        """The principals that may write ``contract`` on this topic (none if it is not listed here)."""
        if contract not in self.contracts:
            return ()
        for name, who in self.writers:
            if name == contract:
                return who
        return self.producers

    @property
    def is_dlq(self) -> bool:
        """True for a dead-letter topic."""
        return self.name.endswith(DLQ_SUFFIX)

    def resolved(self, suffix: str = "") -> str:
        """This topic's name with a test-isolation suffix."""
        return resolve(self.name, suffix)


def dlq_name(topic: str) -> str:
    """The dead-letter topic of ``topic`` (the one naming rule)."""
    return f"{topic}{DLQ_SUFFIX}"


def resolve(name: str, suffix: str = "") -> str:
    """The concrete topic name: ``name`` plus an optional isolation suffix (tests, parallel runs).

    The suffix goes before the dead-letter suffix, so ``resolve(dlq_name(t), s) ==
    dlq_name(resolve(t, s))``: a consumer that only knows a record's concrete topic dead-letters to
    the same name that ``ensure_topics`` created.
    """
    if name.endswith(DLQ_SUFFIX):
        return dlq_name(f"{name.removesuffix(DLQ_SUFFIX)}{suffix}")
    return f"{name}{suffix}"


CUSTOMERS_EVENTS: Final = TopicSpec(
    name="aqsha.customers.events",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=FOREVER,  # the source of every service's customer copy: new consumers replay it all
    producers=("onboarding",),
    consumers=("payments", "notify"),
    contracts=("CustomerRegistered", "CustomerPhoneChanged"),
    description="Customer registrations from the bank's onboarding system.",
)

#: The payments commands that move or authorise money: never written by ``ops``.
_MONEY_COMMANDS: Final = (
    "PayService",
    "Purchase",
    "Transfer",
    "PayRedBill",
    "ConfirmPayment",
    "CancelPayment",
    "Refund",
)

PAYMENTS_COMMANDS: Final = TopicSpec(
    name="aqsha.payments.commands",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=7 * DAY_MS,
    producers=("app-gateway", "cash-network", "ops"),
    consumers=("payments",),
    contracts=(
        "TopUp",
        "PayService",
        "Purchase",
        "Transfer",
        "PayRedBill",
        "ConfirmPayment",
        "CancelPayment",
        "Refund",
        "LookupDebt",
    ),
    description="Customer requests to payments; each carries a client-made request_id (idempotency key).",
    writers=(
        # A top-up brings cash into the bank: only the cash network may command one (docs/security.md).
        ("TopUp", ("cash-network",)),
        # Money moves only on the word of the app gateway or the cash network, never of an operator.
        *((name, ("app-gateway", "cash-network")) for name in _MONEY_COMMANDS),
        # A debt lookup moves no money: the app asks for its customer, support (ops) may ask too.
        ("LookupDebt", ("app-gateway", "ops")),
    ),
)

PAYMENTS_EVENTS: Final = TopicSpec(
    name="aqsha.payments.events",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=30 * DAY_MS,
    producers=("payments",),
    consumers=("bonus", "billing", "notify"),
    contracts=(
        "PaymentRejected",
        "PaymentPending",
        "PaymentCompleted",
        "PaymentFailed",
        "PaymentCancelled",
        "PaymentRefunded",
        "TopUpCompleted",
        "TransferCompleted",
        "RedPurchaseRequested",
        "RedPurchaseCancelled",
        "BonusRedemptionRequested",
        "BonusRedemptionCancelled",
        "DebtLookedUp",
        "DebtLookupFailed",
    ),
    description="Payment outcomes, the saga requests to billing (Red) and bonus (redemption), and debt "
    "lookup replies.",
)

PAYMENTS_OTP: Final = TopicSpec(
    name="aqsha.payments.otp",
    partitions=6,
    key=KEY_CUSTOMER,
    retention_ms=10 * MINUTE_MS,  # codes expire in 5 minutes; nothing secret outlives that for long
    segment_ms=10 * MINUTE_MS,  # retention deletes closed segments only: close them as often
    producers=("payments",),
    consumers=("notify",),
    contracts=("OtpRequested",),
    description="One-time codes to send by SMS. Carries secrets: short retention, never logged.",
)

BONUS_EVENTS: Final = TopicSpec(
    name="aqsha.bonus.events",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=30 * DAY_MS,
    producers=("bonus",),
    consumers=("payments", "notify"),
    contracts=(
        "BonusAccrued",
        "BonusReversed",
        "BonusRedeemed",
        "BonusRedemptionDeclined",
        "BonusRestored",
    ),
    description="Bonus balance changes and answers to redemption requests.",
)

RED_ACCOUNTS: Final = TopicSpec(
    name="aqsha.red.accounts",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=FOREVER,  # account facts: billing rebuilds from them
    producers=("red-origination",),
    consumers=("billing",),
    contracts=("RedAccountOpened", "RedTermsAccepted", "RedAccountClosed"),
    description="Kaspi Red account lifecycle from the bank's origination system.",
)

BILLING_COMMANDS: Final = TopicSpec(
    name="aqsha.billing.commands",
    partitions=DEFAULT_PARTITIONS,
    key="business_date: the ISO business date (Asia/Almaty); one day's runs stay ordered",
    retention_ms=7 * DAY_MS,
    producers=("ops",),
    consumers=("billing",),
    contracts=("RunBusinessDay",),
    description="End-of-day runs for a business date; re-running a date is safe.",
    key_field="business_date",
)

BILLING_EVENTS: Final = TopicSpec(
    name="aqsha.billing.events",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=30 * DAY_MS,
    producers=("billing",),
    consumers=("payments", "notify"),
    contracts=(
        "RedPurchaseApproved",
        "RedPurchaseDeclined",
        "BillIssued",
        "BillOverdueRecorded",
        "PenaltyApplied",
        "RepaymentApplied",
        "BillPaid",
        "LimitRestored",
        "OverpaymentRefunded",
    ),
    description="Red plans, bills, overdue facts, penalties, repayments and limit changes.",
)

BILLING_DAYS: Final = TopicSpec(
    name="aqsha.billing.days",
    # One partition: every business day's closing in order, and one place to wait for it.
    partitions=1,
    key="business_date: the ISO business date (Asia/Almaty) that was closed",
    retention_ms=30 * DAY_MS,
    producers=("billing",),
    # Read by operators (``aqsha billing run-day --wait``, ``aqsha tail``) without a consumer group.
    consumers=(),
    contracts=("BusinessDayClosed",),
    description="One record per finished business-day run, with the counts of what it recorded.",
    key_field="business_date",
)

NOTIFY_EVENTS: Final = TopicSpec(
    name="aqsha.notify.events",
    partitions=DEFAULT_PARTITIONS,
    key=KEY_CUSTOMER,
    retention_ms=30 * DAY_MS,
    producers=("notify",),
    consumers=(),
    contracts=("NotificationDelivered", "NotificationFailed"),
    description="Delivery outcome of every customer message (audit; no service consumes it yet).",
)

TOPICS: Final[tuple[TopicSpec, ...]] = (
    CUSTOMERS_EVENTS,
    PAYMENTS_COMMANDS,
    PAYMENTS_EVENTS,
    PAYMENTS_OTP,
    BONUS_EVENTS,
    RED_ACCOUNTS,
    BILLING_COMMANDS,
    BILLING_EVENTS,
    BILLING_DAYS,
    NOTIFY_EVENTS,
)


def dlq_spec(spec: TopicSpec) -> TopicSpec:
    """The dead-letter topic of ``spec``: same partitions and key, 30-day retention, no contracts."""
    return replace(
        spec,
        name=dlq_name(spec.name),
        retention_ms=DLQ_RETENTION_MS,
        producers=spec.consumers,
        consumers=("operators",),
        contracts=(),
        writers=(),
        segment_ms=None,
        description=(
            f"Dead letters of {spec.name}: records that failed decoding or exhausted retries, with the "
            "original key, headers and value and the error."
        ),
    )


def all_topics(include_dlq: bool = True) -> list[TopicSpec]:
    """Every topic, each followed by its dead-letter topic when ``include_dlq``."""
    out: list[TopicSpec] = []
    for spec in TOPICS:
        out.append(spec)
        if include_dlq:
            out.append(dlq_spec(spec))
    return out


def topic_for_contract(type_name: str) -> TopicSpec:
    """The one topic that carries contract ``type_name``; ``KeyError`` if none does."""
    for spec in TOPICS:
        if type_name in spec.contracts:
            return spec
    raise KeyError(f"no topic carries contract {type_name!r}")


def topic_by_name(name: str) -> TopicSpec:
    """The spec of a base topic or dead-letter topic name (without suffix); ``KeyError`` if unknown."""
    for spec in all_topics():
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}")

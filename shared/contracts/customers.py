"""Customer contracts: the registration fact every service keeps a local copy of, and phone changes.

A registration is written once: a second ``CustomerRegistered`` for the same customer with different
data is refused by every consumer (``customer_conflict``), never applied. The only way to change the
registered phone is ``CustomerPhoneChanged``, which payments and notify apply by the same rule
(``shared.customers``).
"""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, Field

from shared.contracts.base import Event
from shared.contracts.common import SENSITIVE, Iin, Locale, Phone, TariffProfile


class CustomerRegistered(Event):
    """A customer was onboarded (published by the internal onboarding system)."""

    customer_id: UUID = Field(description="The customer's id; the Kafka key of all their messages.")
    phone: Phone = Field(description="Registered (trusted) phone, +7XXXXXXXXXX; one-time codes go only here.")
    iin: Iin = Field(description="The customer's IIN, twelve digits; operations must match it.")
    full_name: str = Field(
        min_length=1,
        max_length=200,
        description="Full name as in the ID document.",
        json_schema_extra=SENSITIVE,
    )
    locale: Locale = Field(default=Locale.RU, description="Language for messages to this customer.")
    tariff_profile: TariffProfile = Field(
        default=TariffProfile.KASPI, description="Fee table that applies to the customer's payments."
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="E-mail address for receipts, if the customer gave one.",
        json_schema_extra=SENSITIVE,
    )


class CustomerPhoneChanged(Event):
    """The customer's registered phone was changed (published by the internal onboarding system).

    One-time codes go to the new phone from then on. A change for an unknown customer, or one older
    than the change already applied, is refused by consumers; the same change again is a no-op.
    """

    customer_id: UUID = Field(description="The customer's id; the Kafka key of all their messages.")
    phone: Phone = Field(
        description="The new registered (trusted) phone, +7XXXXXXXXXX; one-time codes go only here."
    )
    changed_at: AwareDatetime = Field(
        description="When onboarding made the change; consumers apply changes in this order only."
    )
    verification_ref: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Onboarding's reference of the identity check that authorised the change (branch visit, "
        "video call), for audit; never personal data.",
    )

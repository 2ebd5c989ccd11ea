"""Customer contracts: the registration fact every service keeps a local copy of."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from shared.contracts.base import Event
from shared.contracts.common import Iin, Locale, Phone, TariffProfile


class CustomerRegistered(Event):
    """A customer was onboarded (published by the internal onboarding system)."""

    customer_id: UUID = Field(description="The customer's id; the Kafka key of all their messages.")
    phone: Phone = Field(description="Registered (trusted) phone, +7XXXXXXXXXX; one-time codes go only here.")
    iin: Iin = Field(description="The customer's IIN, twelve digits; operations must match it.")
    full_name: str = Field(min_length=1, max_length=200, description="Full name as in the ID document.")
    locale: Locale = Field(default=Locale.RU, description="Language for messages to this customer.")
    tariff_profile: TariffProfile = Field(
        default=TariffProfile.KASPI, description="Fee table that applies to the customer's payments."
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="E-mail address for receipts, if the customer gave one.",
    )

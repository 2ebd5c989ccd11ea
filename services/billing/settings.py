"""Billing settings (``AQSHA_*`` environment, see ``shared.settings``)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class BillingSettings(Settings):
    """Everything the billing service needs; ``batch_size`` bounds one business-day transaction."""

    service: str = Field("billing", description="Service name (logs, client ids).")
    group: str = Field("aqsha-billing", description="Kafka consumer group and inbox group.")
    business_day_batch: int = Field(500, ge=1, description="Accounts per business-day transaction.")
    max_catch_up_days: int = Field(
        400, ge=1, description="Most days one business-day run may catch up per account (refuses far dates)."
    )

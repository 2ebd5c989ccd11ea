"""Notify contracts: the delivery outcome of each customer message."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Event
from shared.contracts.common import Locale, Message, ReasonCode

_CUSTOMER_ID = "The customer; the Kafka key."


class NotificationChannel(StrEnum):
    """How a message reaches the customer."""

    SMS = "SMS"
    PUSH = "PUSH"
    IN_APP = "IN_APP"
    EMAIL = "EMAIL"


class NotificationDelivered(Event):
    """A message about an event reached the customer."""

    source_event_id: UUID = Field(description="event_id of the event the message is about.")
    event_type: str = Field(min_length=1, description='Type of that event, e.g. "BillIssued".')
    channel: NotificationChannel = Field(description="How the message was delivered.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    locale: Locale = Field(default=Locale.RU, description="Language the message was rendered in.")
    attempt_count: int = Field(ge=1, description="Delivery attempts it took, including the successful one.")


class NotificationFailed(Event):
    """A message about an event could not be delivered after all attempts."""

    source_event_id: UUID = Field(description="event_id of the event the message is about.")
    event_type: str = Field(min_length=1, description='Type of that event, e.g. "BillIssued".')
    channel: NotificationChannel = Field(description="The channel that failed.")
    customer_id: UUID = Field(description=_CUSTOMER_ID)
    attempt_count: int = Field(ge=1, description="Delivery attempts made.")
    reason_code: ReasonCode = Field(
        default=ReasonCode.DELIVERY_FAILED, description="Machine reason (NO_CONTACT, DELIVERY_FAILED, ...)."
    )
    reason: Message = Field(description="Human-readable reason of the last failure.")

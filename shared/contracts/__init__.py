"""Every command and event contract, the envelope, and the registry.

Importing this package imports every service module, so the registry is complete and ``decode``
knows every type.
"""

from shared.contracts import billing, bonus, customers, notify, payments
from shared.contracts.base import Command, Contract, Event, Value
from shared.contracts.envelope import (
    HEADER_CORRELATION_ID,
    HEADER_EVENT_ID,
    HEADER_SCHEMA_VERSION,
    HEADER_TYPE,
    ContractError,
    Envelope,
    RawEnvelope,
    decode,
    decode_as,
    decode_raw,
    encode,
    envelope_headers,
    new_envelope,
)
from shared.contracts.registry import CONTRACTS, all_contracts, contract_for

__all__ = [
    "CONTRACTS",
    "HEADER_CORRELATION_ID",
    "HEADER_EVENT_ID",
    "HEADER_SCHEMA_VERSION",
    "HEADER_TYPE",
    "Command",
    "Contract",
    "ContractError",
    "Envelope",
    "Event",
    "RawEnvelope",
    "Value",
    "all_contracts",
    "billing",
    "bonus",
    "contract_for",
    "customers",
    "decode",
    "decode_as",
    "decode_raw",
    "encode",
    "envelope_headers",
    "new_envelope",
    "notify",
    "payments",
]

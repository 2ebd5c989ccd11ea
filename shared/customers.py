"""The rules of a service's local customer copy, the same in every consumer (payments and notify).

**A registration is applied once.** ``CustomerRegistered`` for a customer already stored is a no-op
when it repeats the registration, and is refused (``Refused("customer_conflict")``, dead-lettered at
once by the kernel) when anything differs: a replayed or forged registration must never rewrite the
phone one-time codes go to. Each service stores, next to the fields it keeps, the SHA-256 of the
registration it applied (``registration_digest``), so a difference in a field it does not keep
(notify keeps no IIN or name, payments no e-mail) is refused too, by both services alike. Rows
stored before the digest existed (NULL) are compared on the fields kept only.

**The phone changes only through ``CustomerPhoneChanged``** (``phone_change_applies``): an unknown
customer is refused (``unknown_customer``); a change to the phone already stored is a no-op (the
same change twice); a change not newer than the last one applied is refused
(``stale_phone_change``: a replay of an old change must not undo a newer one); anything else is
applied. A later ``CustomerRegistered`` repeating the original registration stays a no-op after a
phone change (the digest is of the registration, not of the current phone).

Refusal messages name the fields that differ, never their values (no phone or IIN in a dead letter).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from shared.contracts.customers import CustomerPhoneChanged, CustomerRegistered
from shared.kafka import Refused

CUSTOMER_CONFLICT: Final = "customer_conflict"
UNKNOWN_CUSTOMER: Final = "unknown_customer"
STALE_PHONE_CHANGE: Final = "stale_phone_change"

#: The fields of ``CustomerRegistered`` v1 the digest covers (fixed, so a later optional field with a
#: default does not change the digest of an old registration).
REGISTRATION_FIELDS: Final = ("customer_id", "phone", "iin", "full_name", "locale", "tariff_profile", "email")


def registration_digest(registration: CustomerRegistered) -> str:
    """SHA-256 (hex) of the registration's fields in their wire form, keys sorted."""
    data = registration.model_dump(mode="json", include=set(REGISTRATION_FIELDS))
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def check_registration(
    incoming: CustomerRegistered, kept: Mapping[str, object], stored_digest: str | None
) -> None:
    """Return when ``incoming`` repeats the stored registration; raise ``Refused`` when it differs.

    ``kept`` maps the registration fields this service stores to their stored values (wire form:
    enum values as strings); ``stored_digest`` is the stored ``registration_digest`` (None on rows
    older than it).
    """
    if stored_digest is not None and stored_digest == registration_digest(incoming):
        return
    wire = incoming.model_dump(mode="json")
    differ = sorted(name for name, value in kept.items() if wire[name] != value)
    if stored_digest is None and not differ:
        return
    if differ:
        what = ", ".join(differ)
    else:
        others = [f for f in REGISTRATION_FIELDS if f not in kept and f != "customer_id"]
        what = f"a field not kept here ({', '.join(others)})"
    raise Refused(
        CUSTOMER_CONFLICT,
        f"CustomerRegistered for customer {incoming.customer_id} differs from the registration already "
        f"applied in: {what}; a registration is never rewritten (a phone change is CustomerPhoneChanged)",
    )


def phone_change_applies(
    change: CustomerPhoneChanged, stored_phone: str | None, last_changed_at: datetime | None
) -> bool:
    """True to store ``change.phone``, False for a no-op; ``Refused`` for an unknown customer or a stale one.

    ``stored_phone`` is the customer's stored phone (None: the customer is unknown here);
    ``last_changed_at`` the ``changed_at`` of the last change applied (None: never changed).
    """
    if stored_phone is None:
        raise Refused(
            UNKNOWN_CUSTOMER, f"CustomerPhoneChanged for customer {change.customer_id}, who is not registered"
        )
    if stored_phone == change.phone:
        return False
    if last_changed_at is not None and change.changed_at <= last_changed_at:
        raise Refused(
            STALE_PHONE_CHANGE,
            f"CustomerPhoneChanged for customer {change.customer_id} made at {change.changed_at.isoformat()} "
            f"is not newer than the change already applied ({last_changed_at.isoformat()})",
        )
    return True

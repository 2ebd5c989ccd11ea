"""Card payment declines (seed 003) as the customer reads them, in ru, kk and en.

Rendered from the ``PaymentFailed`` payments actually emits (``message_context`` of a real envelope,
so only what the contract carries), compared with committed golden texts
``golden/<locale>/PaymentFailed.<REASON>.txt``. Regenerate after a deliberate wording change with
``AQSHA_UPDATE_GOLDEN=1 pytest tests/unit/notify/test_card_declines.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from services.notify.rendering import CHANNELS, LOCALES, NoTemplateForChannel, Renderer
from services.notify.service import message_context
from shared.contracts.common import PaymentKind, ReasonCode
from shared.contracts.envelope import new_envelope
from shared.contracts.payments import PaymentFailed

pytestmark = pytest.mark.unit

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AQSHA_UPDATE_GOLDEN") == "1"
#: Every reason a card payment can fail with that is the issuer's, or its code's.
CARD_REASONS = (
    ReasonCode.ISSUER_RESTRICTION,
    ReasonCode.ISSUER_UNAVAILABLE,
    ReasonCode.TOO_MANY_ATTEMPTS,
    ReasonCode.CODE_EXPIRED,
)
WORDS = {
    ReasonCode.ISSUER_RESTRICTION: {"ru": "3-D Secure", "kk": "3-D Secure", "en": "3-D Secure"},
    ReasonCode.ISSUER_UNAVAILABLE: {"ru": "недоступен", "kk": "қолжетімсіз", "en": "isn't available"},
}


def rendered(renderer: Renderer, reason: ReasonCode, locale: str) -> str:
    failed = PaymentFailed(
        payment_id=UUID("00000000-0000-4000-8000-000000000003"),
        request_id=UUID("00000000-0000-4000-8000-000000000004"),
        customer_id=UUID("00000000-0000-4000-8000-000000000005"),
        kind=PaymentKind.SERVICE,
        reason_code=reason,
        message="issuer's words, for operators only",
    )
    env = new_envelope(failed, producer="payments", occurred_at=datetime(2025, 10, 20, 6, 5, tzinfo=UTC))
    context = message_context(env, "https://aqsha.kz/r/")
    title = renderer.render("PaymentFailed", locale, context).title
    texts: dict[str, list[str]] = {}
    for channel in CHANNELS:
        try:
            message = renderer.render("PaymentFailed", locale, context, channel=channel)
        except NoTemplateForChannel:
            continue
        texts.setdefault(message.body, []).append(channel)
    out = [f"title: {title}"]
    for body, channels in texts.items():
        out += ["", f"[{', '.join(channels)}]", body]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reason", CARD_REASONS)
def test_card_declines_reach_the_customer_in_their_language(
    renderer: Renderer, reason: ReasonCode, locale: str
) -> None:
    text = rendered(renderer, reason, locale)
    path = GOLDEN_DIR / locale / f"PaymentFailed.{reason.value}.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with AQSHA_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")
    assert reason.value not in text  # words, never the machine code
    assert "issuer's words" not in text  # the operator message is not shown to the customer
    if reason in WORDS:
        assert WORDS[reason][locale] in text

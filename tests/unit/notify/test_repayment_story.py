"""RepaymentApplied v2 tells the whole story (docs/billing.md §5; seed 002, Q2184, Q1516).

A payment of 8,000 ₸ that, with 1,000 ₸ prepaid earlier, repays the last purchase and sends 1,000 ₸
back to Kaspi Gold: the message says so in one place, and its "returned" line is the amount of the
``OverpaymentRefunded`` that credits Gold. v1 events (already on the topic) still render as before.

Regenerate the golden texts with ``AQSHA_UPDATE_GOLDEN=1`` like ``test_rendering_golden.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.notify.receipts import (
    AllocationLine,
    ReceiptData,
    ReceiptDataError,
    allocation_lines,
    render_receipt_pdf,
)
from services.notify.rendering import CHANNELS, LOCALES, Renderer
from services.notify.rendering.filters import allocation_parts, prepayment_used
from shared.contracts.billing import RepaymentApplied, RepaymentAppliedV1
from shared.contracts.samples import sample
from shared.money import fmt_tiyn

from .samples import SAMPLES
from .test_receipts import REPAYMENT, pdf_text, plain

pytestmark = pytest.mark.unit

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AQSHA_UPDATE_GOLDEN") == "1"
PURCHASE = "6c1f7d2a-44b0-4a57-9a7e-5f1e2d3c4b5a"

#: The event's payload as notify gets it (``model_dump(mode="json")``) plus the receipt fields.
WHOLE_STORY: dict[str, Any] = {
    "repayment_id": "rp-43",
    "receipt_number": "RED-0A1B2C3D4E5F6071",
    "amount": 800_000,
    "channel": "TERMINAL",
    "applied_at": datetime(2026, 3, 20, 12, 40, tzinfo=UTC),
    "allocation": {
        "bill_id": None,
        "to_bill": 0,
        "to_purchases": [{"purchase_id": PURCHASE, "amount": 800_000}],
        "carried": 0,
        "refunded_to_gold": 100_000,
        "prepayment_used": 100_000,
    },
    "receipt_url": "https://aqsha.kz/r/RED-0A1B2C3D4E5F6071",
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render_all(renderer: Renderer, locale: str, context: dict[str, Any]) -> str:
    """The title, then each distinct text with the channels that get it (as the golden test does)."""
    title = renderer.render("RepaymentApplied", locale, context).title
    texts: dict[str, list[str]] = {}
    for channel in CHANNELS:
        texts.setdefault(
            renderer.render("RepaymentApplied", locale, context, channel=channel).body, []
        ).append(channel)
    out = [f"title: {title}"]
    for body, channels in texts.items():
        out += ["", f"[{', '.join(channels)}]", body]
    return "\n".join(out) + "\n"


def test_the_context_is_the_contract_v2_dump() -> None:
    # 8,000 paid + 1,000 prepaid earlier = 8,000 to the purchase + 1,000 back to Gold.
    event = RepaymentApplied.model_validate_json(
        json.dumps(
            {
                "amount": WHOLE_STORY["amount"],
                "allocation": WHOLE_STORY["allocation"],
                "repayment_id": "0d7c1a9e-0b1f-4d8e-9a3c-2b4e6f8a0c1d",
                "payment_id": "1e8d2b0f-1c2a-4e9f-8b4d-3c5f7a9b1d2e",
                "customer_id": "2f9e3c1a-2d3b-4fa0-9c5e-4d6a8b0c2e3f",
                "credited_on": "2026-03-20",
            }
        )
    )
    assert event.model_dump(mode="json")["allocation"] == WHOLE_STORY["allocation"]
    assert event.allocation.total == event.amount + event.allocation.prepayment_used


@pytest.mark.parametrize("locale", LOCALES)
def test_golden_whole_story(renderer: Renderer, locale: str) -> None:
    text = render_all(renderer, locale, WHOLE_STORY)
    path = GOLDEN_DIR / locale / "RepaymentApplied.v2-prepayment.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with AQSHA_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_message_shows_the_prepayment_and_the_part_returned_to_gold(
    renderer: Renderer, locale: str
) -> None:
    body = plain(renderer.render("RepaymentApplied", locale, WHOLE_STORY).body)
    for amount in ("8 000 ₸", "1 000 ₸", "9 000 ₸"):  # paid, prepaid earlier / returned, in all
        assert amount in body, (locale, amount)
    returned = Renderer().render("OverpaymentRefunded", locale, {"amount": 100_000}).body
    assert "1 000 ₸" in plain(returned)  # the Gold credit's own message names the same amount


@pytest.mark.parametrize("locale", LOCALES)
def test_without_a_prepayment_v2_reads_like_v1(renderer: Renderer, locale: str) -> None:
    v1 = SAMPLES["RepaymentApplied"]
    v2 = {**v1, "allocation": {**v1["allocation"], "prepayment_used": 0}}
    assert renderer.render("RepaymentApplied", locale, v2) == renderer.render("RepaymentApplied", locale, v1)


def test_the_filters_split_the_source_from_the_destinations() -> None:
    allocation = WHOLE_STORY["allocation"]
    assert prepayment_used(allocation) == 100_000
    assert [p["kind"] for p in allocation_parts(allocation)] == ["EARLY_REPAYMENT", "OVERPAYMENT"]
    assert prepayment_used(SAMPLES["RepaymentApplied"]["allocation"]) == 0  # a v1 allocation
    flat = [
        {"kind": "PREPAYMENT_USED", "amount": 100_000},
        {"kind": "EARLY_REPAYMENT", "amount": 800_000, "reference": PURCHASE},
        {"kind": "OVERPAYMENT", "amount": 100_000},
    ]
    assert prepayment_used(flat) == 100_000
    assert allocation_parts(flat) == allocation_parts(allocation)


def test_the_receipt_adds_the_prepayment_and_still_balances() -> None:
    lines = allocation_lines(WHOLE_STORY["allocation"])
    assert lines == (
        AllocationLine("PREPAYMENT_USED", 100_000),
        AllocationLine("EARLY_REPAYMENT", 800_000, PURCHASE),
        AllocationLine("OVERPAYMENT", 100_000),
    )
    receipt = dataclasses.replace(REPAYMENT, amount=800_000, total=800_000, allocation=lines)
    for locale, words in (
        ("ru", "Добавлена предоплата прошлых платежей"),
        ("kk", "төлем қосылды"),
        ("en", "Earlier prepayment added"),
    ):
        text = pdf_text(render_receipt_pdf(dataclasses.replace(receipt, locale=locale)))
        assert words in text
        for line in lines:
            assert plain(fmt_tiyn(line.amount)) in text
    # Still refused when the lines do not add up to the payment and the prepayment.
    with pytest.raises(ReceiptDataError):
        dataclasses.replace(receipt, allocation=lines[1:])
    assert ReceiptData.from_json_dict(receipt.to_json_dict()) == receipt


def test_both_versions_decode_and_the_latest_is_v2() -> None:
    v1, v2 = sample(RepaymentAppliedV1), sample(RepaymentApplied)
    assert (v1.VERSION, v2.VERSION, v1.TYPE, v2.TYPE) == (1, 2, "RepaymentApplied", "RepaymentApplied")
    assert v2.allocation.total == v2.amount + v2.allocation.prepayment_used
    data = json.loads(v2.model_dump_json())
    with pytest.raises(ValidationError, match="amount \\+ prepayment_used"):
        RepaymentApplied.model_validate_json(json.dumps({**data, "amount": data["amount"] + 1}))
    # v1's rule is its own: the parts sum to the amount alone.
    with pytest.raises(ValidationError, match="allocation sums"):
        RepaymentAppliedV1.model_validate_json(
            json.dumps(
                {
                    **data,
                    "allocation": {k: v for k, v in data["allocation"].items() if k != "prepayment_used"},
                }
            )
        )

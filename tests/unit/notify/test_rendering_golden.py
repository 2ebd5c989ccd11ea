"""Golden tests: every event type in every locale is compared to a committed text file.

Regenerate after a deliberate wording change with ``AQSHA_UPDATE_GOLDEN=1 pytest tests/unit/notify``
and read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.notify.rendering import (
    CHANNELS,
    EVENT_TYPES,
    LOCALES,
    NoTemplateForChannel,
    Renderer,
)

from .samples import SAMPLES

pytestmark = pytest.mark.unit

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AQSHA_UPDATE_GOLDEN") == "1"


def render_golden(renderer: Renderer, event_type: str, locale: str) -> str:
    """Everything a customer could see for the sample: the title, then each distinct text with the
    channels that get it (inbox and e-mail the full text, SMS and push the short one)."""
    context = SAMPLES[event_type]
    title = renderer.render(event_type, locale, context).title
    texts: dict[str, list[str]] = {}
    for channel in CHANNELS:
        try:
            message = renderer.render(event_type, locale, context, channel=channel)
        except NoTemplateForChannel:
            continue
        assert message.title == title
        texts.setdefault(message.body, []).append(channel)
    out = [f"title: {title}"]
    for body, channels in texts.items():
        out += ["", f"[{', '.join(channels)}]", body]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_golden(renderer: Renderer, event_type: str, locale: str) -> None:
    text = render_golden(renderer, event_type, locale)
    path = GOLDEN_DIR / locale / f"{event_type}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with AQSHA_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")

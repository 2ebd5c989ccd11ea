"""Render an event into a customer message (title + body) from Jinja2 templates on disk.

Templates live in ``services/notify/templates/<locale>/<EventType>.<channel>.j2`` where ``<channel>``
is ``inbox``, ``push``, ``sms``, ``email`` or ``any``. A channel-specific file wins over ``.any``.
Each template defines the blocks:

* ``title`` (required): one line, used by push, the inbox list and the e-mail subject;
* ``body`` (required): the full text, used by the inbox and e-mail;
* ``short`` (optional): the SMS/push text; ``body`` is used when a template has none.

The environment is strict (``StrictUndefined``): a template that names a field missing from the
context fails loudly instead of printing an empty string to a customer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    select_autoescape,
)

from . import vocabulary as vocab
from .filters import FILTERS, FilterInputError

DEFAULT_TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "templates"

CHANNELS: Final[tuple[str, ...]] = ("inbox", "push", "sms", "email")
SHORT_CHANNELS: Final = frozenset({"push", "sms"})
ANY_CHANNEL: Final = "any"

EVENT_TYPES: Final[tuple[str, ...]] = (
    "BillIssued",
    "PaymentCompleted",
    "PaymentFailed",
    "OtpRequested",
    "TopUpCompleted",
    "TransferCompleted",
    # Not an event: what the recipient of a TransferCompleted reads (notify sends it to to_customer_id).
    "TransferReceived",
    "RepaymentApplied",
    "BillOverdueRecorded",
    "PenaltyApplied",
    "LimitRestored",
    "OverpaymentRefunded",
    "BonusAccrued",
    "BonusReversed",
    "CustomerPhoneChanged",
)

_TEMPLATE_RE: Final = re.compile(r"^(?P<locale>[a-z]{2})/(?P<event>[A-Za-z0-9]+)\.(?P<channel>[a-z]+)\.j2$")
_MANY_BLANK_LINES: Final = re.compile(r"\n{3,}")


class RenderError(ValueError):
    """A message could not be rendered (unknown event, missing context field, bad value...)."""


class UnknownEventType(RenderError, LookupError):
    """No template exists for this event type in any locale."""


class NoTemplateForChannel(RenderError, LookupError):
    """The event type has templates, but none for the requested channel (e.g. OtpRequested by email)."""


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A customer message ready for a channel. ``locale`` is the locale actually used."""

    title: str
    body: str
    locale: str


class Renderer:
    """Renders events into messages; safe to share (templates are compiled once and cached)."""

    def __init__(self, templates_dir: Path | str = DEFAULT_TEMPLATES_DIR) -> None:
        self._dir = Path(templates_dir)
        self._env = Environment(
            loader=FileSystemLoader(str(self._dir), encoding="utf-8"),
            # Plain-text channels must not HTML-escape «», & or quotes; only HTML templates escape.
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "xml", "html.j2"),
                default_for_string=False,
                default=False,
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._env.filters.update(FILTERS)
        # (locale, event type) -> {channel: template name}
        self._index: dict[tuple[str, str], dict[str, str]] = {}
        for name in self._env.list_templates(extensions=["j2"]):
            match = _TEMPLATE_RE.match(name.replace("\\", "/"))
            if match is None:
                continue
            key = (match["locale"], match["event"])
            self._index.setdefault(key, {})[match["channel"]] = name

    # -- discovery ------------------------------------------------------------------------------
    @property
    def event_types(self) -> frozenset[str]:
        """Event types that have at least one template in some locale."""
        return frozenset(event for _, event in self._index)

    def channels_for(self, event_type: str, locale: str) -> frozenset[str]:
        """Channel names (including ``any``) with a template for this event in this locale."""
        return frozenset(self._index.get((vocab.normalize_locale(locale), event_type), {}))

    def template_name(self, event_type: str, locale: str, channel: str | None = None) -> str:
        """The template file used for (event, locale, channel), relative to the templates dir.

        ``channel=None`` asks for the event's main form: ``.any``, else its only channel template
        (OtpRequested has just ``.sms``). A locale missing a template falls back to ru.
        """
        if channel is not None and channel not in CHANNELS:
            raise RenderError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
        if event_type not in self.event_types:
            known = ", ".join(sorted(self.event_types))
            raise UnknownEventType(f"no templates for event type {event_type!r}; known: {known}")
        loc = vocab.normalize_locale(locale)
        files = self._index.get((loc, event_type)) or self._index.get((vocab.DEFAULT_LOCALE, event_type))
        if not files:
            raise UnknownEventType(f"no {loc} or {vocab.DEFAULT_LOCALE} template for {event_type!r}")
        if channel is not None and channel in files:
            return files[channel]
        if ANY_CHANNEL in files:
            return files[ANY_CHANNEL]
        if channel is None:
            for candidate in CHANNELS:
                if candidate in files:
                    return files[candidate]
        raise NoTemplateForChannel(
            f"{event_type} has no template for channel {channel!r} (has: {', '.join(sorted(files))})"
        )

    # -- rendering ------------------------------------------------------------------------------
    def render(
        self,
        event_type: str,
        locale: str,
        context: Mapping[str, Any],
        *,
        channel: str | None = None,
    ) -> RenderedMessage:
        """Render ``event_type`` in ``locale`` (unknown → ru) for ``channel``.

        ``context`` is the event's fields (amounts in int tiyn, aware datetimes, ids as strings);
        see ``services.notify.rendering`` for the fields each template reads. SMS and push get the
        template's ``short`` text; the inbox, e-mail and ``channel=None`` get the full ``body``.
        """
        name = self.template_name(event_type, locale, channel)
        used_locale = name.split("/", 1)[0]
        template = self._env.get_template(name)
        variables = {**context, "locale": used_locale}
        try:
            title = " ".join(self._block(template, "title", variables).split())
            block = "short" if channel in SHORT_CHANNELS and "short" in template.blocks else "body"
            body = _tidy(self._block(template, block, variables))
        except RenderError:
            raise
        except (TemplateError, FilterInputError, KeyError, TypeError, ValueError) as exc:
            raise RenderError(f"cannot render {name}: {type(exc).__name__}: {exc}") from exc
        return RenderedMessage(title=title, body=body, locale=used_locale)

    @staticmethod
    def _block(template: Template, block: str, variables: Mapping[str, Any]) -> str:
        render_block = template.blocks.get(block)
        if render_block is None:
            raise RenderError(f"template {template.name} has no {{% block {block} %}}")
        return "".join(render_block(template.new_context(dict(variables))))


def _tidy(text: str) -> str:
    """Trim trailing spaces on every line and collapse runs of blank lines to one."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _MANY_BLANK_LINES.sub("\n\n", "\n".join(lines))

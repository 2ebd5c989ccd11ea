"""Bonus service configuration (``AQSHA_*`` like every service, plus two bonus-specific knobs)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import AliasChoices, Field

from shared.settings import Settings

#: The consumer group of the bonus service (also its inbox group).
GROUP = "aqsha-bonus"


class BonusSettings(Settings):
    """Settings of the bonus service.

    Env: ``AQSHA_BONUS_CURRENT_START`` (ISO date) overrides the start of the ``current`` program
    (seed 004 is undated, docs/bonus.md "Switch-over date"); ``AQSHA_BONUS_RULES_PATH`` points at
    another rules file than the shipped ``services/bonus/rules.toml``.
    """

    service: str = Field("bonus", description="Service name (logs, client ids).")
    current_start: date | None = Field(
        default=None,
        validation_alias=AliasChoices("current_start", "AQSHA_BONUS_CURRENT_START"),
        description="Start date of the current program; None keeps the date in the rules file.",
    )
    rules_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("rules_path", "AQSHA_BONUS_RULES_PATH"),
        description="Rules file; None is the shipped services/bonus/rules.toml.",
    )

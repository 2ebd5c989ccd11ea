"""Fixtures for the bonus domain tests."""

from __future__ import annotations

import pytest

from services.bonus.domain import BonusRules, load_rules, parse_rules

from .builders import SWITCH_OVER, TEST_RULES


@pytest.fixture(scope="session")
def rules() -> BonusRules:
    """The test rule set: legacy until 2025-06-01, current from then."""
    return parse_rules(TEST_RULES, source="TEST_RULES")


@pytest.fixture(scope="session")
def shipped_rules() -> BonusRules:
    """The shipped rules.toml with the switch-over pinned for the test."""
    return load_rules(current_start=SWITCH_OVER)

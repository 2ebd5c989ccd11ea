"""docs/topics.md is generated from the registry and must not drift."""

import pytest

from shared.topics_doc import DOC, render

pytestmark = pytest.mark.unit


def test_topics_doc_matches_registry() -> None:
    assert DOC.read_text() == render(), "run: python -m shared.topics_doc"

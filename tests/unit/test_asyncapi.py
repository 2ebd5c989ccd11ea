"""docs/asyncapi/ is generated from the services' brokers (FastStream's generator) and must not drift."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from shared.ops import asyncapi

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    """Every service's document, generated once for the module (building four apps takes seconds)."""
    return asyncapi.generate()


def test_committed_documents_match_the_code(generated: dict[str, str]) -> None:
    problems = asyncapi.drift(asyncapi.OUT_DIR, generated)
    assert not problems, "run: python -m shared.ops.asyncapi\n" + "\n".join(problems)


def test_generation_is_deterministic(generated: dict[str, str]) -> None:
    assert asyncapi.render("bonus") == generated["bonus.yaml"]


def test_check_reports_a_changed_a_missing_and_a_stale_file(
    tmp_path: Path, generated: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "asyncapi"
    shutil.copytree(asyncapi.OUT_DIR, out)
    (out / "bonus.yaml").write_text(generated["bonus.yaml"].replace("aqsha-bonus", "someone-else"))
    (out / "notify.yaml").unlink()
    (out / "old.yaml").write_text("asyncapi: 3.0.0\n")
    problems = asyncapi.drift(out, generated)
    assert any("bonus.yaml" in p and "lines differ" in p for p in problems)
    assert any("notify.yaml: missing" in p for p in problems)
    assert any("old.yaml" in p and "stale" in p for p in problems)


def test_main_check_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = {"payments.yaml": "x\n"}
    monkeypatch.setattr(asyncapi, "generate", lambda: docs)
    assert asyncapi.main(["--out", str(tmp_path)]) == 0
    assert asyncapi.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "payments.yaml").write_text("y\n")
    assert asyncapi.main(["--check", "--out", str(tmp_path)]) == 1


def _doc(generated: dict[str, str], service: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(generated[f"{service}.yaml"])
    return data


def _operations(doc: dict[str, Any], action: str) -> set[str]:
    channels = doc["channels"]
    return {
        channels[unquote(op["channel"]["$ref"].rsplit("/", 1)[1])]["address"]
        for op in doc["operations"].values()
        if op["action"] == action
    }


def test_documents_show_consumed_and_produced_topics_with_typed_envelopes(generated: dict[str, str]) -> None:
    payments = _doc(generated, "payments")
    assert {"aqsha.payments.commands", "aqsha.customers.events"} <= _operations(payments, "receive")
    assert {"aqsha.payments.events", "aqsha.payments.otp"} <= _operations(payments, "send")
    schemas = payments["components"]["schemas"]
    assert "Envelope_TopUp_" in schemas
    assert "TopUp" in schemas
    assert "Envelope_PaymentCompleted_" in schemas  # produced event, typed
    assert "EmptyPayload" not in schemas

    notify = _doc(generated, "notify")
    assert "aqsha.notify.events" in _operations(notify, "send")
    assert "aqsha.payments.otp" in _operations(notify, "receive")
    billing = _doc(generated, "billing")
    assert {"aqsha.red.accounts", "aqsha.billing.commands"} <= _operations(billing, "receive")
    assert "aqsha.billing.events" in _operations(billing, "send")
    bonus = _doc(generated, "bonus")
    assert _operations(bonus, "receive") == {"aqsha.payments.events"}
    assert "aqsha.bonus.events" in _operations(bonus, "send")

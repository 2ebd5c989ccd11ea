"""The topic registry: every contract on exactly one topic, one dead-letter rule."""

from __future__ import annotations

import pytest

from shared.contracts import CONTRACTS
from shared.topics import (
    DLQ_RETENTION_MS,
    PAYMENTS_EVENTS,
    PAYMENTS_OTP,
    TOPICS,
    all_topics,
    dlq_name,
    resolve,
    topic_by_name,
    topic_for_contract,
)

pytestmark = pytest.mark.unit


def test_every_contract_is_carried_by_exactly_one_topic() -> None:
    for type_name in CONTRACTS:
        carriers = [t.name for t in TOPICS if type_name in t.contracts]
        assert len(carriers) == 1, f"{type_name} is carried by {carriers}"
        assert topic_for_contract(type_name).name == carriers[0]


def test_every_topic_contract_exists() -> None:
    for spec in all_topics():
        for type_name in spec.contracts:
            assert type_name in CONTRACTS, f"{spec.name} names unknown contract {type_name}"


def test_commands_and_events_are_not_mixed() -> None:
    for spec in TOPICS:
        kinds = {CONTRACTS[t].KIND for t in spec.contracts}
        assert len(kinds) == 1, spec.name
        assert (kinds == {"command"}) == spec.name.endswith(".commands"), spec.name


def test_names_are_unique_and_follow_the_template() -> None:
    names = [t.name for t in all_topics()]
    assert len(names) == len(set(names)) == 2 * len(TOPICS)
    for spec in TOPICS:
        assert spec.name.startswith("aqsha.")
        assert not spec.is_dlq
        assert spec.partitions > 0


def test_dead_letter_rule() -> None:
    assert dlq_name("aqsha.payments.events") == "aqsha.payments.events.dlq"
    specs = all_topics(include_dlq=True)
    for spec in TOPICS:
        dead = topic_by_name(dlq_name(spec.name))
        assert dead in specs
        assert dead.is_dlq
        assert dead.partitions == spec.partitions
        assert dead.retention_ms == DLQ_RETENTION_MS == 30 * 24 * 3600 * 1000
        assert dead.contracts == ()
    assert all_topics(include_dlq=False) == list(TOPICS)


def test_otp_topic_is_short_lived_and_separate() -> None:
    assert topic_for_contract("OtpRequested") is PAYMENTS_OTP
    assert PAYMENTS_OTP.retention_ms == 10 * 60 * 1000
    assert PAYMENTS_OTP.partitions == 6
    assert PAYMENTS_OTP.consumers == ("notify",)
    assert "OtpRequested" not in PAYMENTS_EVENTS.contracts


def test_keys_are_customer_ids_except_business_day_commands() -> None:
    for spec in TOPICS:
        by_date = spec.name in ("aqsha.billing.commands", "aqsha.billing.days")
        expected = "business_date" if by_date else "customer_id"
        assert spec.key_field == expected, spec.name
        assert spec.key.startswith(expected), spec.name


def test_resolve_adds_the_isolation_suffix() -> None:
    assert resolve("aqsha.bonus.events") == "aqsha.bonus.events"
    assert resolve("aqsha.bonus.events", "-t42") == "aqsha.bonus.events-t42"
    assert PAYMENTS_OTP.resolved("-x") == "aqsha.payments.otp-x"
    assert resolve(dlq_name("aqsha.bonus.events"), "-t42") == "aqsha.bonus.events-t42.dlq"


def test_unknown_lookups_raise() -> None:
    with pytest.raises(KeyError):
        topic_for_contract("Nope")
    with pytest.raises(KeyError):
        topic_by_name("aqsha.nope")


def test_suffix_and_dead_letter_suffix_commute() -> None:
    from shared.topics import dlq_name, resolve

    for spec in all_topics(include_dlq=False):
        assert resolve(dlq_name(spec.name), ".t1") == dlq_name(resolve(spec.name, ".t1"))
        assert resolve(dlq_name(spec.name), ".t1") == f"{spec.name}.t1.dlq"

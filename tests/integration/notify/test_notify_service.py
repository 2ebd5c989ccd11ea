"""notify against real PostgreSQL and Kafka, real local webhook (HTTP) and SMTP servers."""

from __future__ import annotations

import io
import json
import logging
import random
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from services.notify.app import create_app
from services.notify.channels import IDEMPOTENCY_HEADER
from services.notify.queries import get_receipt_pdf, inbox
from services.notify.rendering import Renderer
from services.notify.service import MESSAGE_EVENTS, message_context
from services.notify.settings import NotifySettings
from shared.contracts import notify as notify_contracts
from shared.contracts.base import Contract
from shared.contracts.common import Locale
from shared.contracts.customers import CustomerRegistered
from shared.contracts.envelope import Envelope
from shared.contracts.payments import OtpRequestedV1
from shared.contracts.registry import contract_for
from shared.contracts.samples import SAMPLE_OTP_CODE, samples
from shared.logging import configure_logging
from shared.money import fmt_tiyn
from shared.otp_seal import seal_code
from shared.settings import Settings
from shared.topics import dlq_name
from tests.support.harness import Record, Service, service_settings, until
from tests.support.trust import envelope

pytestmark = pytest.mark.integration

EMAIL_EVENTS = {"BillIssued", "PaymentCompleted", "RepaymentApplied"}
#: What notify publishes, and the dead letters of the OTP topic it consumes.
WATCHED = ("aqsha.notify.events", dlq_name("aqsha.payments.otp"))


# -- a real webhook receiver ----------------------------------------------------------------------
@dataclass
class Gateway:
    """Records webhook calls; ``fail[customer or phone] = n`` fails the next n calls (-1: always)."""

    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, path: str, who: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [
                (h, b)
                for p, h, b in self.requests
                if p == path and who in (b.get("customer_id"), b.get("to"))
            ]


def _start_gateway(gateway: Gateway) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            who = body.get("customer_id") or body.get("to")
            with gateway.lock:
                gateway.requests.append((self.path, dict(self.headers), body))
                left = gateway.fail.get(who, 0)
                if left > 0:
                    gateway.fail[who] = left - 1
            status = 503 if left != 0 else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Mailbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Notify(Service):
    """The running notify app, its real webhook gateway and SMTP relay, and its captured JSON logs."""

    settings: NotifySettings
    gateway: Gateway
    mailbox: Mailbox
    logs: io.StringIO
    renderer: Renderer


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notify(module_settings: Settings) -> AsyncIterator[Notify]:
    gateway = Gateway()
    server = _start_gateway(gateway)
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = service_settings(
        NotifySettings,
        module_settings,
        service="notify",
        push_webhook_url=f"{base}/push",
        sms_webhook_url=f"{base}/sms",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        delivery_max_attempts=3,
        delivery_backoff_ms=10,
        resume_interval_s=0.5,
    )
    app = create_app(settings)
    logs = io.StringIO()
    configure_logging("notify", "INFO", stream=logs)  # capture the JSON log stream
    try:
        async with Notify.running(app, settings, schema="notify", watch=WATCHED) as svc:
            svc.gateway, svc.mailbox, svc.logs, svc.renderer = gateway, mailbox, logs, Renderer()
            yield svc
    finally:
        smtp.stop()
        server.shutdown()
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_aqsha", False)]:
            root.removeHandler(handler)  # leave logging as the other modules found it


# -- helpers ----------------------------------------------------------------------------------------
def _phone() -> str:
    return "+7701" + "".join(random.choices("0123456789", k=7))


async def register(notify: Notify, *, locale: Locale = Locale.RU, email: bool = True) -> CustomerRegistered:
    cid = uuid4()
    customer = CustomerRegistered(
        customer_id=cid,
        phone=_phone(),
        iin="900101300123",
        full_name="Асель Касымова",
        locale=locale,
        email=f"{cid.hex[:8]}@example.kz" if email else None,
    )
    await notify.publish(customer)
    await until(lambda: _exists(notify.pool, "SELECT 1 FROM customers WHERE customer_id = $1", cid))
    return customer


async def _exists(pool: asyncpg.Pool, sql: str, *args: Any) -> bool:
    return await pool.fetchval(sql, *args) is not None


def event_for(customer: CustomerRegistered, type_name: str, **changes: Any) -> Envelope[Any]:
    """The contract sample of ``type_name`` (latest version), re-addressed to ``customer`` (new ids where
    they matter). ``OtpRequested``: ``code=`` is sealed for its fields under the session's transport key,
    as payments does."""
    sample = next(s for s in samples() if type(s) is contract_for(type_name))
    code = changes.pop("code", SAMPLE_OTP_CODE)
    update: dict[str, Any] = {"customer_id": customer.customer_id, **changes}
    if type_name == "OtpRequested":
        update.setdefault("phone", customer.phone)
        update.setdefault("payment_id", uuid4())
        bound = {k: update.get(k, getattr(sample, k)) for k in ("payment_id", "customer_id", "phone")}
        bound.update(expires_at=sample.expires_at, amount=sample.amount)  # type: ignore[attr-defined]
        update["sealed_code"] = seal_code(code, NotifySettings().otp_transport_secret(), **bound)
    if type_name == "PaymentCompleted":
        receipt = sample.receipt.model_copy(update={"receipt_number": f"R-{uuid4().hex[:12].upper()}"})  # type: ignore[attr-defined]
        update["receipt"] = receipt
        update["payment_id"] = uuid4()
    if type_name == "RepaymentApplied":
        update["repayment_id"] = uuid4()
    payload: Contract = sample.model_copy(update=update)
    return envelope(payload, occurred_at=datetime.now(UTC))  # as the service that emits it


async def settled(notify: Notify, source: UUID, count: int) -> None:
    """Wait until ``count`` deliveries of ``source`` exist and none is PENDING."""

    async def done() -> bool:
        row = await notify.pool.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'PENDING') AS pending "
            "FROM deliveries WHERE source_event_id = $1",
            source,
        )
        assert row is not None
        return bool(row["n"] == count and row["pending"] == 0)

    await until(done)


async def notify_events(notify: Notify, source: UUID) -> list[Envelope[Any]]:
    """notify's events about ``source`` on its topic now (the collector caught up)."""
    await notify.events.caught_up()
    out = notify.events.of(topic=notify.topic("aqsha.notify.events"))
    return [e for e in out if getattr(e.payload, "source_event_id", None) == source]


# -- tests --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("locale", [Locale.KK])
async def test_every_customer_facing_event_reaches_its_channels(notify: Notify, locale: Locale) -> None:
    customer = await register(notify, locale=locale)
    envelopes = [event_for(customer, t) for t in sorted(MESSAGE_EVENTS)]
    for e in envelopes:
        await notify.publish(e)
    for e in envelopes:
        expected = 1 if e.type == "OtpRequested" else (3 if e.type in EMAIL_EVENTS else 2)
        await settled(notify, e.event_id, expected)
    statuses = await notify.pool.fetch(
        "SELECT event_type, channel, status FROM deliveries WHERE customer_id = $1", customer.customer_id
    )
    assert {r["status"] for r in statuses} == {"SENT"}
    channels: dict[str, set[str]] = {}
    for r in statuses:
        channels.setdefault(r["event_type"], set()).add(r["channel"])
    for e in envelopes:
        if e.type == "OtpRequested":
            assert channels[e.type] == {"sms"}
        elif e.type in EMAIL_EVENTS:
            assert channels[e.type] == {"inbox", "push", "email"}
        else:
            assert channels[e.type] == {"inbox", "push"}

    # The inbox holds the renderer's text in the customer's locale.
    messages = {m.event_type: m for m in await inbox(notify.pool, customer.customer_id)}
    assert set(messages) == MESSAGE_EVENTS - {"OtpRequested"}
    for e in envelopes:
        if e.type == "OtpRequested":
            continue
        rendered = notify.renderer.render(
            e.type, locale.value, message_context(e, notify.settings.receipt_url_base), channel="inbox"
        )
        assert messages[e.type].locale == locale.value
        assert (messages[e.type].title, messages[e.type].body) == (rendered.title, rendered.body), e.type
    receipt_link = messages["PaymentCompleted"].link
    [paid] = [e for e in envelopes if e.type == "PaymentCompleted"]
    assert receipt_link == f"aqsha://receipts/{paid.payload.receipt.receipt_number}"

    # Push got one call per event, with the idempotency key; e-mail went to the customer's address.
    push = notify.gateway.calls("/push", str(customer.customer_id))
    assert len(push) == len(MESSAGE_EVENTS) - 1
    keys = {h[IDEMPOTENCY_HEADER] for h, _ in push}
    assert keys == {f"{e.event_id}:push" for e in envelopes if e.type != "OtpRequested"}
    mails = [m for m in notify.mailbox.messages if m[0] == [customer.email]]
    assert len(mails) == len(EMAIL_EVENTS)


async def test_redelivered_events_deliver_once_per_channel(notify: Notify) -> None:
    customer = await register(notify)
    envelopes = [event_for(customer, t) for t in ("BillIssued", "BonusAccrued", "PaymentCompleted")]
    for e in envelopes:
        await notify.publish(e, times=3)
    for e in envelopes:
        await settled(notify, e.event_id, 3 if e.type in EMAIL_EVENTS else 2)
    marker = event_for(customer, "LimitRestored")  # published after: when it is done, all were consumed
    await notify.publish(marker)
    await settled(notify, marker.event_id, 2)
    push = notify.gateway.calls("/push", str(customer.customer_id))
    keys = [h[IDEMPOTENCY_HEADER] for h, _ in push]
    assert sorted(keys) == sorted({*keys}), "one push per event"
    assert len(keys) == 4
    assert len(await inbox(notify.pool, customer.customer_id)) == 4
    assert len([m for m in notify.mailbox.messages if m[0] == [customer.email]]) == 2
    sources = [e.event_id for e in envelopes]
    delivered: set[tuple[UUID, str]] = set()

    async def all_published() -> bool:
        for src in sources:
            for x in await notify_events(notify, src):
                assert x.type == "NotificationDelivered"
                delivered.add((x.payload.source_event_id, x.payload.channel.value))
        return len(delivered) >= 3 + 2 + 3

    await until(all_published)
    assert len(delivered) == 3 + 2 + 3, "one NotificationDelivered per (event, channel)"


async def test_a_channel_failing_twice_then_succeeding_delivers_once(notify: Notify) -> None:
    customer = await register(notify, email=False)
    notify.gateway.fail[str(customer.customer_id)] = 2
    e = event_for(customer, "TopUpCompleted")
    await notify.publish(e)
    await settled(notify, e.event_id, 2)
    row = await notify.pool.fetchrow(
        "SELECT status, attempts FROM deliveries WHERE source_event_id = $1 AND channel = 'push'", e.event_id
    )
    assert row is not None
    assert (row["status"], row["attempts"]) == ("SENT", 3)
    push = notify.gateway.calls("/push", str(customer.customer_id))
    assert len(push) == 3
    assert {h[IDEMPOTENCY_HEADER] for h, _ in push} == {f"{e.event_id}:push"}

    async def published() -> bool:
        events = await notify_events(notify, e.event_id)
        return any(x.payload.channel == "PUSH" for x in events)

    await until(published)
    events = await notify_events(notify, e.event_id)
    push_events = [x for x in events if x.payload.channel == "PUSH"]
    assert [x.type for x in push_events] == ["NotificationDelivered"]
    assert push_events[0].payload.attempt_count == 3


async def test_a_channel_always_failing_ends_in_dead_letter_and_notification_failed(notify: Notify) -> None:
    customer = await register(notify, email=False)
    notify.gateway.fail[str(customer.customer_id)] = -1
    e = event_for(customer, "PenaltyApplied")
    await notify.publish(e)
    await settled(notify, e.event_id, 2)
    rows = await notify.pool.fetch(
        "SELECT channel, status FROM deliveries WHERE source_event_id = $1", e.event_id
    )
    status = {r["channel"]: r["status"] for r in rows}
    assert status == {"inbox": "SENT", "push": "FAILED"}
    dead = await notify.pool.fetchrow(
        "SELECT channel, attempts, reason_code, error FROM delivery_dead_letters WHERE source_event_id = $1",
        e.event_id,
    )
    assert dead is not None
    assert (dead["channel"], dead["attempts"], dead["reason_code"]) == ("push", 3, "DELIVERY_FAILED")
    assert "503" in dead["error"]

    async def failed_published() -> bool:
        return any(x.type == "NotificationFailed" for x in await notify_events(notify, e.event_id))

    await until(failed_published)
    failed = [x for x in await notify_events(notify, e.event_id) if x.type == "NotificationFailed"]
    assert len(failed) == 1
    payload: notify_contracts.NotificationFailed = failed[0].payload
    assert payload.channel == notify_contracts.NotificationChannel.PUSH
    assert payload.attempt_count == 3
    assert payload.customer_id == customer.customer_id


async def test_receipt_pdf_fetched_by_number_has_its_number_and_amount(notify: Notify) -> None:
    customer = await register(notify)
    e = event_for(customer, "PaymentCompleted")
    await notify.publish(e)
    await settled(notify, e.event_id, 3)
    number = e.payload.receipt.receipt_number
    pdf = await get_receipt_pdf(notify.pool, number)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace("\u00a0", " ")
    assert number in text
    assert fmt_tiyn(e.payload.receipt.amount).replace("\u00a0", " ") in text
    assert await get_receipt_pdf(notify.pool, number) == pdf, "cached and deterministic"
    [message] = [
        m for m in await inbox(notify.pool, customer.customer_id) if m.event_type == "PaymentCompleted"
    ]
    assert message.link == f"aqsha://receipts/{number}"
    assert f"aqsha://receipts/{number}" in message.body


async def test_otp_goes_only_by_sms_and_the_code_is_never_logged_or_stored(notify: Notify) -> None:
    customer = await register(notify)
    code = "".join(random.choices("123456789", k=6))
    e = event_for(customer, "OtpRequested", code=code)
    await notify.publish(e)
    await settled(notify, e.event_id, 1)
    sms = notify.gateway.calls("/sms", customer.phone)
    assert len(sms) == 1
    headers, body = sms[0]
    assert code in body["text"]
    assert body["to"] == customer.phone
    assert headers[IDEMPOTENCY_HEADER] == f"{e.event_id}:sms"
    assert notify.gateway.calls("/push", str(customer.customer_id)) == []
    assert not [m for m in notify.mailbox.messages if m[0] == [customer.email]]
    assert await inbox(notify.pool, customer.customer_id) == []
    # Not in the logs, not in any notify table.
    logs = notify.logs.getvalue()
    assert logs, "the JSON log stream was captured"
    assert code not in logs
    assert customer.phone not in logs
    for table in ("deliveries", "inbox_messages", "receipts", "delivery_dead_letters", "outbox", "inbox"):
        dump = await notify.pool.fetchval(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")
        assert code not in dump, table
    # Nothing of the code at all: the row is only marked secret (no hash to brute-force).
    row = await notify.pool.fetchrow("SELECT * FROM deliveries WHERE source_event_id = $1", e.event_id)
    assert row is not None
    assert row["secret"] is True
    assert "secret_hash" not in dict(row)
    # On Kafka the code only ever travelled sealed.
    assert code not in e.payload.model_dump_json()


async def test_otp_requested_v1_with_a_clear_code_is_refused_and_never_sent(notify: Notify) -> None:
    customer = await register(notify)
    v1 = next(s for s in samples() if isinstance(s, OtpRequestedV1)).model_copy(
        update={"customer_id": customer.customer_id, "phone": customer.phone, "payment_id": uuid4()}
    )
    e = envelope(v1, occurred_at=datetime.now(UTC))
    assert e.schema_version == 1
    await notify.publish(e)
    dlq = notify.topic(dlq_name("aqsha.payments.otp"))

    def refused() -> list[Record]:
        return [d for d in notify.events.dead(e.key) if d.topic == dlq]

    await until(refused)
    await notify.events.caught_up()
    [letter] = refused()
    headers = letter.headers
    assert headers["aqsha-dlq-reason"] == "insecure_contract"
    assert v1.code not in headers["aqsha-dlq-error"]
    assert notify.gateway.calls("/sms", customer.phone) == []
    assert not await _exists(notify.pool, "SELECT 1 FROM deliveries WHERE source_event_id = $1", e.event_id)
    assert not await _exists(notify.pool, "SELECT 1 FROM inbox WHERE event_id = $1", e.event_id)


async def test_a_pending_delivery_left_by_a_crash_is_resumed_once(notify: Notify) -> None:
    # As if the service was killed after claiming the delivery and before marking it: a PENDING row.
    customer = await register(notify, email=False)
    source = uuid4()
    await notify.pool.execute(
        "INSERT INTO deliveries(source_event_id, event_type, channel, customer_id, correlation_id, locale, "
        "title, body, created_at) VALUES ($1, 'LimitRestored', 'push', $2, $3, 'ru', 't', 'b', now())",
        source,
        customer.customer_id,
        uuid4(),
    )
    await settled(notify, source, 1)
    assert (
        await notify.pool.fetchval("SELECT status FROM deliveries WHERE source_event_id = $1", source)
        == "SENT"
    )
    push = notify.gateway.calls("/push", str(customer.customer_id))
    assert [h[IDEMPOTENCY_HEADER] for h, _ in push] == [f"{source}:push"]

-- notify: local customer copy, deliveries (one per source event and channel), in-app inbox,
-- e-receipts (data stored on handling, PDF rendered and cached on fetch), delivery dead letters.
CREATE TABLE customers (
    customer_id uuid PRIMARY KEY,
    locale      text        NOT NULL DEFAULT 'ru',
    phone       text        NOT NULL,
    email       text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id              bigserial PRIMARY KEY,
    source_event_id uuid        NOT NULL,
    event_type      text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('inbox', 'push', 'sms', 'email')),
    customer_id     uuid        NOT NULL,
    correlation_id  uuid        NOT NULL,
    locale          text        NOT NULL,
    address         text,
    title           text        NOT NULL,
    -- Never a one-time code: an OTP SMS is stored redacted, with a salted hash of the code.
    body            text        NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    secret_hash     text,
    secret_expires_at timestamptz,
    status          text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts        int         NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    UNIQUE (source_event_id, channel)
);
CREATE INDEX deliveries_pending ON deliveries (id) WHERE status = 'PENDING';

CREATE TABLE inbox_messages (
    id          bigserial PRIMARY KEY,
    delivery_id bigint      NOT NULL UNIQUE REFERENCES deliveries (id),
    customer_id uuid        NOT NULL,
    event_type  text        NOT NULL,
    locale      text        NOT NULL,
    title       text        NOT NULL,
    body        text        NOT NULL,
    link        text,
    created_at  timestamptz NOT NULL
);
CREATE INDEX inbox_messages_customer ON inbox_messages (customer_id, id);

CREATE TABLE receipts (
    receipt_number  text PRIMARY KEY,
    source_event_id uuid        NOT NULL,
    payment_id      uuid,
    customer_id     uuid        NOT NULL,
    kind            text        NOT NULL,
    data            jsonb       NOT NULL,
    pdf             bytea,
    created_at      timestamptz NOT NULL
);
CREATE INDEX receipts_payment ON receipts (payment_id);

CREATE TABLE delivery_dead_letters (
    id              bigserial PRIMARY KEY,
    delivery_id     bigint      NOT NULL UNIQUE REFERENCES deliveries (id),
    source_event_id uuid        NOT NULL,
    event_type      text        NOT NULL,
    channel         text        NOT NULL,
    customer_id     uuid        NOT NULL,
    attempts        int         NOT NULL,
    reason_code     text        NOT NULL,
    error           text        NOT NULL,
    created_at      timestamptz NOT NULL
);

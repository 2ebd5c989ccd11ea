-- payments schema: customers (local copy), accounts, double-entry ledger, payments and their
-- history, one-time code challenges (hash only), refunds and the receipt sequence.

-- Local copy of CustomerRegistered: only what payments needs (phone for codes, masked name for
-- receipts, tariff profile for fees).
CREATE TABLE customers (
    customer_id    uuid PRIMARY KEY,
    phone          text        NOT NULL,
    full_name      text        NOT NULL,
    tariff_profile text        NOT NULL,
    registered_at  timestamptz NOT NULL
);

-- Customer money accounts; a customer balance never goes below zero (issue #3). System accounts
-- have no balance row: their balance is the sum of their ledger entries, so no hot row serialises
-- every payment.
CREATE TABLE accounts (
    customer_id uuid   NOT NULL REFERENCES customers(customer_id),
    kind        text   NOT NULL CHECK (kind IN ('GOLD', 'WALLET')),
    balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    PRIMARY KEY (customer_id, kind)
);

-- Double-entry ledger: every posting's entries sum to zero, so the whole table does.
CREATE TABLE ledger_entries (
    id           bigserial PRIMARY KEY,
    payment_id   uuid        NOT NULL,
    posting_kind text        NOT NULL,
    account      text        NOT NULL,  -- 'GOLD' / 'WALLET' for customer accounts, else the system account
    customer_id  uuid,                  -- set for customer accounts only
    amount       bigint      NOT NULL CHECK (amount <> 0),
    created_at   timestamptz NOT NULL
);
CREATE INDEX ledger_entries_payment ON ledger_entries(payment_id);
CREATE INDEX ledger_entries_customer ON ledger_entries(customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE payments (
    payment_id       uuid PRIMARY KEY,
    request_id       uuid        NOT NULL UNIQUE,
    customer_id      uuid        NOT NULL,
    kind             text        NOT NULL,
    status           text        NOT NULL,
    amount           bigint      NOT NULL CHECK (amount > 0),
    fee              bigint      NOT NULL DEFAULT 0 CHECK (fee >= 0),
    total            bigint      NOT NULL CHECK (total > 0),
    funding          text        NOT NULL,
    channel          text        NOT NULL,
    source_account   text,                 -- GOLD/WALLET or a system account; what the hold came from
    held             bigint      NOT NULL DEFAULT 0 CHECK (held >= 0),
    category         text,
    provider         text,
    provider_account text,
    merchant         text,
    partner_id       text,
    order_id         text,
    bonus_amount     bigint      NOT NULL DEFAULT 0,
    to_customer_id   uuid,
    to_account       text,
    red_state        text,                 -- NULL | REQUESTED | APPROVED | DECLINED | CANCELLED
    red_plan_id      uuid,
    bonus_state      text,                 -- NULL | REQUESTED | REDEEMED | DECLINED | CANCELLED
    saga_deadline    timestamptz,
    provider_due_at  timestamptz,
    reason_code      text,
    receipt_number   text,
    refunded         bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX payments_customer ON payments(customer_id, created_at);
CREATE INDEX payments_open ON payments(status) WHERE status IN ('PENDING_CONFIRMATION', 'PENDING_PROVIDER');

CREATE TABLE payment_status_history (
    id          bigserial PRIMARY KEY,
    payment_id  uuid        NOT NULL REFERENCES payments(payment_id),
    status      text        NOT NULL,
    reason_code text,
    at          timestamptz NOT NULL
);
CREATE INDEX payment_status_history_payment ON payment_status_history(payment_id, id);

-- One-time codes: only the keyed hash (domain §2 step 4, §6).
CREATE TABLE otp_challenges (
    payment_id    uuid PRIMARY KEY REFERENCES payments(payment_id),
    code_hash     text        NOT NULL,
    expires_at    timestamptz NOT NULL,
    attempts_left int         NOT NULL CHECK (attempts_left >= 0)
);

CREATE TABLE refunds (
    refund_id    uuid PRIMARY KEY,     -- request_id of the Refund command
    payment_id   uuid        NOT NULL REFERENCES payments(payment_id),
    amount       bigint      NOT NULL CHECK (amount > 0),
    bonus_share  bigint      NOT NULL DEFAULT 0,
    reason       text        NOT NULL,
    created_at   timestamptz NOT NULL
);

CREATE SEQUENCE receipt_seq MAXVALUE 99999999 CYCLE;

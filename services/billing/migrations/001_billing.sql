-- Kaspi Red billing (docs/billing.md "Persistence").
-- One versioned JSONB snapshot of the pure domain's RedAccount per customer (the aggregate, locked
-- with SELECT ... FOR UPDATE), plus append-only fact tables whose unique keys make "never twice"
-- a database guarantee: one bill per (customer, statement date), one overdue record and one
-- penalty per bill, one repayment per payment.

CREATE TABLE accounts (
    customer_id uuid PRIMARY KEY,
    snapshot jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    -- Fineract close-of-business watermark: the last business date run for this account.
    last_closed_business_date date NOT NULL,
    closed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_open_watermark ON accounts (last_closed_business_date, customer_id) WHERE NOT closed;

CREATE TABLE bills (
    bill_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES accounts,
    statement_date date NOT NULL,
    due_at timestamptz NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    penalty bigint NOT NULL DEFAULT 0,
    carried_prepayment bigint NOT NULL DEFAULT 0,
    lines jsonb NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, statement_date)
);

CREATE TABLE overdue_records (
    bill_id uuid PRIMARY KEY REFERENCES bills,
    customer_id uuid NOT NULL,
    overdue_since date NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE penalties (
    bill_id uuid PRIMARY KEY REFERENCES bills,
    customer_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    applied_on date NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE repayments (
    payment_id uuid PRIMARY KEY,
    repayment_id uuid NOT NULL UNIQUE,
    customer_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    paid_at timestamptz NOT NULL,
    credited_on date NOT NULL,
    allocation jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX repayments_customer ON repayments (customer_id, credited_on);

-- Every run of the job (command or direct call): the audit trail of close-of-business.
CREATE TABLE business_day_runs (
    id bigserial PRIMARY KEY,
    business_date date NOT NULL,
    accounts_processed integer NOT NULL,
    bills_issued integer NOT NULL,
    overdue_recorded integer NOT NULL,
    penalties_applied integer NOT NULL,
    requested_by text NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

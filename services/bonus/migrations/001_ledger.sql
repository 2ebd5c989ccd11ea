-- Bonus schema: the ledger, per-customer balances, accrual decisions and redemptions (docs/bonus.md).

-- One row per customer: the balance cache AND the per-customer lock (SELECT ... FOR UPDATE).
-- Invariant (checked by the service and the tests): balance = sum of the customer's signed entries.
CREATE TABLE balances (
    customer_id uuid PRIMARY KEY,
    balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The ledger: amount is a magnitude, kind gives the sign (+ ACCRUAL/RESTORE, - REVERSAL/REDEMPTION).
CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES balances (customer_id),
    kind text NOT NULL CHECK (kind IN ('ACCRUAL', 'REVERSAL', 'REDEMPTION', 'RESTORE')),
    payment_id uuid NOT NULL,
    refund_id uuid,
    amount bigint NOT NULL CHECK (amount >= 0),
    shortfall bigint NOT NULL DEFAULT 0 CHECK (shortfall >= 0),
    rule_set text,
    rule_id text,
    promotion_id text,
    percent numeric,
    event_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'REVERSAL') = (refund_id IS NOT NULL)),
    CHECK (kind = 'REVERSAL' OR shortfall = 0)
);
-- Idempotency keys of the domain ledger: one ACCRUAL/REDEMPTION/RESTORE per payment, one REVERSAL per refund.
CREATE UNIQUE INDEX ledger_entries_payment_key ON ledger_entries (kind, payment_id) WHERE refund_id IS NULL;
CREATE UNIQUE INDEX ledger_entries_refund_key ON ledger_entries (payment_id, refund_id) WHERE refund_id IS NOT NULL;
CREATE INDEX ledger_entries_customer ON ledger_entries (customer_id, id);

-- Exactly one decision per completed payment, including "nothing accrued" (for the auditor).
CREATE TABLE accrual_decisions (
    payment_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    event_id uuid NOT NULL,
    kind text NOT NULL,
    completed_at timestamptz NOT NULL,
    business_date date NOT NULL,
    payment_amount bigint NOT NULL,
    accrued bigint NOT NULL DEFAULT 0 CHECK (accrued >= 0),
    base_amount bigint,
    rule_set text,
    rule_id text,
    promotion_id text,
    percent numeric,
    outcome text NOT NULL CHECK (outcome IN ('ACCRUED', 'NO_BONUS')),
    decided_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'ACCRUED') = (accrued > 0))
);
CREATE INDEX accrual_decisions_customer ON accrual_decisions (customer_id);

-- One outcome per purchase: a replayed request gets the same answer (a decline stays a decline).
CREATE TABLE redemptions (
    payment_id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    event_id uuid NOT NULL,
    requested_amount bigint NOT NULL CHECK (requested_amount > 0),
    purchase_amount bigint NOT NULL CHECK (purchase_amount > 0),
    outcome text NOT NULL CHECK (outcome IN ('REDEEMED', 'DECLINED')),
    reason_code text,
    message text,
    decided_at timestamptz NOT NULL DEFAULT now(),
    restored_at timestamptz,
    CHECK ((outcome = 'DECLINED') = (reason_code IS NOT NULL))
);
CREATE INDEX redemptions_customer ON redemptions (customer_id);

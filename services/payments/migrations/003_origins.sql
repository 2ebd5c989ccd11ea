-- Who commanded money to move: the verified principal and signing key id of the record that was
-- handled (shared.trust.current_origin()). `aqsha reconcile` (credits_have_permitted_origin) checks
-- that every credit to a customer account traces back to a principal permitted to write it.
-- NULL on rows written before this migration (and by anything that ran without verification);
-- reconcile reports credits whose origin is NULL.

-- The command that created each payment (TopUp, PayService, Purchase, Transfer, PayRedBill).
ALTER TABLE payments ADD COLUMN commanded_by text, ADD COLUMN key_id text;
-- Each Refund command.
ALTER TABLE refunds ADD COLUMN commanded_by text, ADD COLUMN key_id text;

-- Credits commanded by an event of another service (billing's OverpaymentRefunded credits GOLD):
-- one row per event, posted under ledger payment_id = reference_id (the event's refund_id).
CREATE TABLE event_credits (
    id           bigserial PRIMARY KEY,
    event_id     uuid UNIQUE,            -- the envelope that credited (NULL: backfilled below)
    event_type   text        NOT NULL,
    reference_id uuid        NOT NULL,   -- ledger_entries.payment_id of the posting
    customer_id  uuid        NOT NULL,
    account      text        NOT NULL,
    amount       bigint      NOT NULL CHECK (amount > 0),
    commanded_by text,
    key_id       text,
    created_at   timestamptz NOT NULL
);
CREATE INDEX event_credits_reference ON event_credits(reference_id);

-- Overpayment credits posted before this migration: recorded with an unknown origin.
INSERT INTO event_credits(event_type, reference_id, customer_id, account, amount, created_at)
SELECT 'OverpaymentRefunded', payment_id, customer_id, account, amount, created_at
  FROM ledger_entries
 WHERE posting_kind = 'OVERPAYMENT_CREDIT' AND customer_id IS NOT NULL AND amount > 0;

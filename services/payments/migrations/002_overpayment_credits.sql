-- One Gold credit per billing refund id, whatever envelope it arrives in. The inbox stops a
-- redelivered event; this stops the same refund under another event id (a producer retry, an
-- operator's hand-made resend), in the same transaction as the posting.
CREATE TABLE overpayment_credits (
    refund_id   uuid PRIMARY KEY,
    customer_id uuid        NOT NULL REFERENCES customers(customer_id),
    amount      bigint      NOT NULL CHECK (amount > 0),
    event_id    uuid        NOT NULL,
    credited_at timestamptz NOT NULL
);

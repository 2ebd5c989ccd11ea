-- Idempotency authority: one row per (scope, request key), holding the request's payload hash and
-- the outcome. Inserted in the same transaction as the request's effects.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    payload_hash text        NOT NULL,
    outcome      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

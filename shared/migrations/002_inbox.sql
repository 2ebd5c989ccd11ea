-- Inbox: one row per (consumer group, event id) processed, written in the same transaction as the
-- handler's effects. A redelivered event finds its row and has no effect.
CREATE TABLE inbox (
    consumer_group text        NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);

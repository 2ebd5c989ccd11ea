-- Transactional outbox: rows are written in the caller's transaction and published by the relay
-- in id order. A row is deleted only after the broker acknowledged it.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Wake the relay at commit (NOTIFY is transactional and de-duplicated per transaction); polling
-- remains the fallback, so a lost notification only costs latency.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aqsha_outbox', current_schema());
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

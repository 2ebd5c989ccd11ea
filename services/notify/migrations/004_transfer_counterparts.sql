-- A transfer's two sides are told about each other (docs/notify.md "Transfers"): the recipient reads
-- the sender's first name, the sender the recipient's first name and surname initial ("Айгерим К.").
-- That short name is the only part of a customer's name notify keeps (from CustomerRegistered's
-- full_name). NULL on customers stored before this migration: the other side reads "a Kaspi customer".
ALTER TABLE customers ADD COLUMN short_name text;

-- The recipient's message about a TransferCompleted is a message of its own, to another customer:
-- its deliveries' source_event_id is derived from the event's id (so (message, channel) stays unique
-- and the gateways' Idempotency-Key differs from the sender's), and about_event_id is the event itself
-- (the source_event_id its NotificationDelivered / NotificationFailed report). NULL: the message is
-- about source_event_id, to the event's own customer.
ALTER TABLE deliveries ADD COLUMN about_event_id uuid;

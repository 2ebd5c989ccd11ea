-- A registration is applied once (shared/customers.py): the SHA-256 of the CustomerRegistered that
-- created the row, so a later one with different data, in any field (kept here or not), is refused.
-- NULL on rows stored before this migration: those are compared on the fields kept here only.
ALTER TABLE customers ADD COLUMN registration_sha256 text;
-- changed_at of the last CustomerPhoneChanged applied (NULL: never changed); older ones are refused.
ALTER TABLE customers ADD COLUMN phone_changed_at timestamptz;

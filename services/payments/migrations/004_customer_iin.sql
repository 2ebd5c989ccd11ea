-- The registered IIN of each customer (CustomerRegistered.iin), so a service payment that needs the
-- payer's IIN can be matched against it (seed 000: "if it does not match ... the operation is
-- impossible"; services/payments/identity.toml). The IIN given on a payment is compared, never stored.
-- NULL on rows stored before this migration: payments learns their IIN from the next
-- CustomerRegistered that repeats the registration exactly (its SHA-256 equals registration_sha256);
-- until then a payment that needs or gives an IIN is declined with IDENTITY_MISMATCH.
ALTER TABLE customers ADD COLUMN iin text CHECK (iin ~ '^[0-9]{12}$');

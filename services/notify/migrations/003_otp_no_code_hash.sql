-- Nothing of a one-time code is kept: the "salted" SHA-256 of a code (salted with the event id stored
-- beside it, so a code was recovered in a fraction of a second) is dropped. Its only use was to mark
-- an OTP SMS, whose body is stored redacted and which only the redelivered event can send: an
-- explicit flag says that now.
ALTER TABLE deliveries ADD COLUMN secret boolean NOT NULL DEFAULT false;
UPDATE deliveries SET secret = true WHERE secret_hash IS NOT NULL;
ALTER TABLE deliveries DROP COLUMN secret_hash;

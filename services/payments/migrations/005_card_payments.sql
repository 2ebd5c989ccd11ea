-- Card payments (EXTERNAL_CARD funding): what the card's issuer was asked and answered (seed 003;
-- services/payments/cards.py). One row per payment funded by another bank's card.
--
-- state: CHALLENGE   the issuer sent its 3-D Secure code; the payment waits for ConfirmPayment
--        AUTHORISED  no restriction; the card is charged after payments' own code, or by the janitor
--        UNKNOWN     a charge request got no answer: the janitor asks again with the same payment id
--        CHARGED     charged once (charge_ref); payments holds the money as for any other debit
--        NOT_CHARGED the issuer refused, was unavailable, or the code failed: nothing was charged
--        REFUNDED    charged, then returned to the card because the payment failed afterwards
-- The FK is deferred: the row is written in the same transaction as, and sometimes before, the payment.
CREATE TABLE card_payments (
    payment_id           uuid PRIMARY KEY REFERENCES payments(payment_id) DEFERRABLE INITIALLY DEFERRED,
    card_token           text        NOT NULL,   -- the app's token of the card, never its number
    issuer               text        NOT NULL,
    state                text        NOT NULL CHECK (state IN
                             ('CHALLENGE', 'AUTHORISED', 'UNKNOWN', 'CHARGED', 'NOT_CHARGED', 'REFUNDED')),
    challenge_expires_at timestamptz,            -- CHALLENGE: when the issuer's code expires
    charge_due_at        timestamptz,            -- AUTHORISED/UNKNOWN: when the janitor (re)sends the charge
    attempts             int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- charge requests sent
    charge_ref           text,                   -- the issuer's reference of the single charge
    last_answer          text,                   -- the issuer's last answer, for the record
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX card_payments_open ON card_payments(state) WHERE state IN ('CHALLENGE', 'AUTHORISED', 'UNKNOWN');

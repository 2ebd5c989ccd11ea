"""aqsha shared kernel: contracts, money, topics, Kafka, PostgreSQL, outbox/inbox, idempotency, clock."""

#!/usr/bin/env bash
# GENERATED from shared/topics.py by `python -m shared.ops.strimzi`; do not edit by hand.
# A unit test (tests/unit/test_deploy.py) fails when this file drifts from the registry.
#
# The compose one-shot `kafka-init` (deploy/compose.yaml) runs it in the apache/kafka image as the
# broker's super user (deploy/kafka/admin.properties): one SCRAM-SHA-512 user per service and for
# the operators, each with exactly the ACLs of shared/ops/kafka_acls.py (the same rules as the
# Strimzi KafkaUsers of deploy/k8s/users.yaml). Re-running it changes nothing.
set -euo pipefail

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
ADMIN_CONFIG="${KAFKA_ADMIN_CONFIG:-/opt/aqsha/admin.properties}"
BIN=/opt/kafka/bin

user() {  # user NAME PASSWORD: create or update the SCRAM-SHA-512 credential
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
    --alter --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$2]"
}

allow() {  # allow NAME "OPERATION..." --topic|--group NAME...: one call, one JVM
  local name="$1" ops=()
  for op in $2; do ops+=(--operation "$op"); done
  shift 2
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add \
    --allow-principal "User:$name" --resource-pattern-type literal "${ops[@]}" "$@"
}

# admin: the broker's super user also gets a SCRAM login, for `make run`'s local tools (topics, the
# demo acting as every outside system) on the SCRAM-only external listener. Development only.
user admin "${AQSHA_KAFKA_PASSWORD_ADMIN:-dev-only-kafka-admin}"

# payments
user aqsha-payments "${AQSHA_KAFKA_PASSWORD_PAYMENTS:?AQSHA_KAFKA_PASSWORD_PAYMENTS is not set}"
allow aqsha-payments "Describe Write" \
  --topic aqsha.payments.events \
  --topic aqsha.payments.otp \
  --topic aqsha.customers.events.dlq \
  --topic aqsha.payments.commands.dlq \
  --topic aqsha.bonus.events.dlq \
  --topic aqsha.billing.events.dlq
allow aqsha-payments "Describe Read" \
  --topic aqsha.customers.events \
  --topic aqsha.payments.commands \
  --topic aqsha.bonus.events \
  --topic aqsha.billing.events
allow aqsha-payments "Read" \
  --group aqsha-payments

# bonus
user aqsha-bonus "${AQSHA_KAFKA_PASSWORD_BONUS:?AQSHA_KAFKA_PASSWORD_BONUS is not set}"
allow aqsha-bonus "Describe Write" \
  --topic aqsha.bonus.events \
  --topic aqsha.payments.events.dlq
allow aqsha-bonus "Describe Read" \
  --topic aqsha.payments.events
allow aqsha-bonus "Read" \
  --group aqsha-bonus

# billing
user aqsha-billing "${AQSHA_KAFKA_PASSWORD_BILLING:?AQSHA_KAFKA_PASSWORD_BILLING is not set}"
allow aqsha-billing "Describe Write" \
  --topic aqsha.billing.events \
  --topic aqsha.billing.days \
  --topic aqsha.payments.events.dlq \
  --topic aqsha.red.accounts.dlq \
  --topic aqsha.billing.commands.dlq
allow aqsha-billing "Describe Read" \
  --topic aqsha.payments.events \
  --topic aqsha.red.accounts \
  --topic aqsha.billing.commands
allow aqsha-billing "Read" \
  --group aqsha-billing

# notify
user aqsha-notify "${AQSHA_KAFKA_PASSWORD_NOTIFY:?AQSHA_KAFKA_PASSWORD_NOTIFY is not set}"
allow aqsha-notify "Describe Write" \
  --topic aqsha.notify.events \
  --topic aqsha.customers.events.dlq \
  --topic aqsha.payments.events.dlq \
  --topic aqsha.payments.otp.dlq \
  --topic aqsha.bonus.events.dlq \
  --topic aqsha.billing.events.dlq
allow aqsha-notify "Describe Read" \
  --topic aqsha.customers.events \
  --topic aqsha.payments.events \
  --topic aqsha.payments.otp \
  --topic aqsha.bonus.events \
  --topic aqsha.billing.events
allow aqsha-notify "Read" \
  --group aqsha-notify

# ops
user aqsha-operators "${AQSHA_KAFKA_PASSWORD_OPERATORS:?AQSHA_KAFKA_PASSWORD_OPERATORS is not set}"
allow aqsha-operators "Describe Write" \
  --topic aqsha.payments.commands \
  --topic aqsha.billing.commands \
  --topic aqsha.customers.events \
  --topic aqsha.payments.otp \
  --topic aqsha.bonus.events \
  --topic aqsha.red.accounts \
  --topic aqsha.billing.events
allow aqsha-operators "Describe Read" \
  --topic aqsha.customers.events.dlq \
  --topic aqsha.payments.commands.dlq \
  --topic aqsha.payments.events.dlq \
  --topic aqsha.payments.otp.dlq \
  --topic aqsha.bonus.events.dlq \
  --topic aqsha.red.accounts.dlq \
  --topic aqsha.billing.commands.dlq \
  --topic aqsha.billing.events.dlq \
  --topic aqsha.billing.days.dlq \
  --topic aqsha.notify.events.dlq \
  --topic aqsha.billing.days
allow aqsha-operators "Describe Read Write" \
  --topic aqsha.payments.events
allow aqsha-operators "Read" \
  --group aqsha-ops-redrive
allow aqsha-operators "Describe" \
  --group aqsha-payments \
  --group aqsha-bonus \
  --group aqsha-billing \
  --group aqsha-notify

echo "kafka-init: users and ACLs applied"

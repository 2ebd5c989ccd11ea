#!/bin/sh
# DEVELOPMENT ONLY (deploy/compose.yaml): gives the roles of roles.sql the passwords of the compose
# environment (dev-only defaults, or deploy/.env; see deploy/.env.example). The postgres image runs it
# from /docker-entrypoint-initdb.d after roles.sql, on the first start of an empty data directory.
# In production set the passwords from your secret store instead, never from this file.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=payments="$AQSHA_PG_PASSWORD_PAYMENTS" \
  --set=bonus="$AQSHA_PG_PASSWORD_BONUS" \
  --set=billing="$AQSHA_PG_PASSWORD_BILLING" \
  --set=notify="$AQSHA_PG_PASSWORD_NOTIFY" \
  --set=ops="$AQSHA_PG_PASSWORD_OPS" <<'SQL'
ALTER ROLE aqsha_payments PASSWORD :'payments';
ALTER ROLE aqsha_bonus PASSWORD :'bonus';
ALTER ROLE aqsha_billing PASSWORD :'billing';
ALTER ROLE aqsha_notify PASSWORD :'notify';
ALTER ROLE aqsha_ops PASSWORD :'ops';
SQL

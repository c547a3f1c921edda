#!/bin/sh
# Runs once, on an empty data directory (the postgres image's docker-entrypoint-initdb.d).
# Portwright connects as an ordinary role that owns its database: row-level security
# (migration 0009) does not apply to superusers.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres -v pw="$PORTWRIGHT_DB_PASSWORD" <<'SQL'
CREATE ROLE portwright LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE portwright OWNER portwright;
SQL

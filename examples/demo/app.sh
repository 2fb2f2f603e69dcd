#!/bin/sh
# A tiny app: counts its visits in the workspace's own database.
# It knows nothing about ports; `ajj run` gives it DATABASE_URL.
set -eu
: "${DATABASE_URL:?run me with: ajj run -- ./app.sh}"
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages TO warning;
CREATE TABLE IF NOT EXISTS visits (at timestamptz NOT NULL DEFAULT now());
INSERT INTO visits DEFAULT VALUES;
SQL
echo "visits in this workspace: $(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM visits')"

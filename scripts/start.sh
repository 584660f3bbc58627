#!/usr/bin/env bash
# `npm start`: the local stack in the foreground. Installs dependencies if needed
# (scripts/bootstrap.sh), makes sure Postgres and NATS JetStream run (scripts/ensure-services.sh),
# then hands over to scripts/start.ts, which starts the Hardhat node + token deployment and the
# services with [name]-prefixed output (scripts/supervisor.ts restarts a crashed one with
# backoff), prints a banner when all are ready and stops them all on Ctrl-C / SIGTERM.
# Env: CHAIN_PORT (8545), ADAPTER_PORT (50051), API_PORT (3000), CONSUMER_PORT (3100),
# ADAPTER_AUTH_TOKEN (dev-adapter-token), API_ADMIN_KEY (dev-admin-key).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
bash scripts/ensure-services.sh

# exec: signals sent to this script reach the supervisor directly
exec node --import tsx scripts/start.ts "$@"

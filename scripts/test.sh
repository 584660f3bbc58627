#!/usr/bin/env bash
# `npm test`: installs dependencies if needed (scripts/bootstrap.sh), makes sure Postgres and
# NATS JetStream answer (scripts/ensure-services.sh) and Chromium is installed for the shopper
# page's browser test (scripts/ensure-chromium.sh), type-checks, then runs the whole Vitest suite
# (contracts, packages/*, services/*). Arguments go to vitest: `npm test -- services/blockchain-adapter`.
# Exits with vitest's code.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
bash scripts/ensure-services.sh
bash scripts/ensure-chromium.sh

# Types first: a type error fails fast, before the suite spends its half minute.
tsc --noEmit -p tsconfig.json
exec vitest run "$@"

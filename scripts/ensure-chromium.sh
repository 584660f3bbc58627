#!/usr/bin/env bash
# Makes sure a Chromium the browser tests can drive (playwright-core with executablePath) is
# installed: ${CHROMIUM_PATH:-/usr/bin/chromium}. Playwright's own browser download is not
# reachable on our machines, so this uses Debian's `chromium` package: as root it runs
# `apt-get install -y chromium` when the binary is missing; otherwise it says what to install
# and fails. Usage: bash scripts/ensure-chromium.sh   (scripts/test.sh runs it)
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
log() { echo "ensure-chromium: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ -x "$CHROMIUM" ]; then
  log "Chromium present ($CHROMIUM)"
  exit 0
fi
[ "$CHROMIUM" = /usr/bin/chromium ] || die "CHROMIUM_PATH=$CHROMIUM is not an executable file"
[ "$(id -u)" = 0 ] || die "Chromium is not installed (the shopper page's browser test needs it); install it (Debian: sudo apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium/Chrome binary"
command -v apt-get >/dev/null || die "Chromium is not installed and there is no apt-get; install Chromium and set CHROMIUM_PATH to it"
log "installing Debian's chromium package (once; ~1-2 min)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || die "apt-get installed chromium but $CHROMIUM is still missing"
log "Chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

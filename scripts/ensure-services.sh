#!/usr/bin/env bash
# Makes sure the services the tests and `npm start` need are reachable:
#   - PostgreSQL on ${PGHOST:-127.0.0.1}:${PGPORT:-5432}, user postgres, no password
#   - NATS with JetStream on ${NATS_HOST:-127.0.0.1}:${NATS_PORT:-4222}
# When a service already answers it does nothing. When it does not and the address is local, it
# starts it: the existing install first (pg_ctlcluster / nats-server), else, as root, Debian's
# package (apt-get install postgresql / nats-server). Then it waits (bounded) until the port
# answers and fails with a clear message otherwise.
# Usage: bash scripts/ensure-services.sh   (WAIT_SECONDS=30 by default)
set -euo pipefail

PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
NATS_HOST="${NATS_HOST:-127.0.0.1}"
NATS_PORT="${NATS_PORT:-4222}"
WAIT_SECONDS="${WAIT_SECONDS:-30}"

log() { echo "ensure-services: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
is_local() { case "$1" in 127.* | localhost | ::1 | /*) return 0 ;; *) return 1 ;; esac; }

apt_updated=
apt_install() {
  is_root || die "$1 is not installed; install it (Debian: sudo apt-get install -y $*) or start it yourself"
  command -v apt-get >/dev/null || die "$1 is not installed and there is no apt-get; install and start it yourself"
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  log "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# wait_for NAME CHECK_COMMAND...: retries the check once a second for WAIT_SECONDS.
wait_for() {
  local name="$1"
  shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
  log "$name is up"
}

# ---------------------------------------------------------------------------- PostgreSQL

# `timeout` is GNU coreutils (absent on macOS); without it the checks run unbounded.
with_timeout() { if command -v timeout >/dev/null; then timeout "$@"; else shift; "$@"; fi; }
# shellcheck disable=SC2016 # $0/$1 expand in the inner bash
tcp_open() { with_timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }
pg_up() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
  else
    tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

# shellcheck disable=SC2012 # version folder names
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n1; }

# Dev/CI box only: lets user postgres in over 127.0.0.1/::1 without a password (trust), as the
# tests and the services' default URLs (postgresql://postgres@127.0.0.1:5432/...) expect.
# Never do this on a shared or production server.
pg_trust_loopback() {
  local hba="/etc/postgresql/$1/main/pg_hba.conf"
  [ -f "$hba" ] || return 0
  grep -q "cashback dev: trust loopback" "$hba" && return 0
  log "allowing passwordless (trust) TCP logins from 127.0.0.1 and ::1 in $hba (dev/CI only)"
  local tmp
  tmp="$(mktemp)"
  {
    echo "# cashback dev: trust loopback (added by scripts/ensure-services.sh; dev/CI boxes only)"
    echo "host    all    all    127.0.0.1/32    trust"
    echo "host    all    all    ::1/128         trust"
    cat "$hba"
  } >"$tmp"
  cat "$tmp" >"$hba" # keeps the file's owner and mode
  rm -f "$tmp"
}

pg_start_cluster() {
  local version
  version="$(pg_version)"
  [ -n "$version" ] || return 1
  log "starting PostgreSQL cluster $version/main"
  # --skip-systemctl-redirect: machines without systemd (containers, CI)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true # "already running" is fine
}

ensure_postgres() {
  if pg_up; then
    log "PostgreSQL already answers on $PG_HOST:$PG_PORT"
  else
    is_local "$PG_HOST" || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT (not a local address, so not starting one)"
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_version)" ]; then
      apt_install postgresql
      pg_trust_loopback "$(pg_version)"
      # postinst may have started it already (with the old pg_hba); a restart applies ours
      pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main restart || true
    fi
    pg_up || pg_start_cluster || true
    wait_for "PostgreSQL ($PG_HOST:$PG_PORT)" pg_up ||
      die "PostgreSQL did not answer on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s (see /var/log/postgresql/)"
  fi
  # Answering is not enough: the tests log in as postgres without a password.
  if command -v psql >/dev/null && ! psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    die "PostgreSQL answers on $PG_HOST:$PG_PORT but user postgres can not log in without a password; allow it (pg_hba.conf 'trust' for 127.0.0.1 on a dev box) or set PGPASSWORD"
  fi
}

# ---------------------------------------------------------------------------- NATS

# Reads the server's INFO line; JetStream-enabled servers say "jetstream":true in it.
# shellcheck disable=SC2016
nats_info() { with_timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r line <&3 && printf "%s\n" "$line"' "$NATS_HOST" "$NATS_PORT" 2>/dev/null; }
nats_up() { nats_info | grep -q '^INFO'; }

nats_bin() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; }
}

nats_start() {
  local bin="$1" store log_file
  if is_root; then
    # the machine's usual store and log; a second server on another port gets its own store
    store=/var/lib/nats-server
    log_file=/var/log/nats-server.log
    if [ "$NATS_PORT" != 4222 ]; then
      store="/var/lib/nats-server-$NATS_PORT"
      log_file="/var/log/nats-server-$NATS_PORT.log"
    fi
  else
    store="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.data/nats-$NATS_PORT"
    log_file="$store/nats-server.log"
  fi
  mkdir -p "$store"
  log "starting $bin (JetStream, store $store, log $log_file)"
  if command -v start-stop-daemon >/dev/null; then
    # the pidfile makes the "already running?" check about this server, not any nats-server
    start-stop-daemon --start --oknodo --background --pidfile "$store/nats.pid" --make-pidfile --exec "$bin" -- \
      -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$store" -l "$log_file"
  else
    nohup "$bin" -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$store" -l "$log_file" >/dev/null 2>&1 </dev/null &
    disown || true
  fi
}

ensure_nats() {
  if ! nats_up; then
    is_local "$NATS_HOST" || die "NATS does not answer on $NATS_HOST:$NATS_PORT (not a local address, so not starting one)"
    local bin
    bin="$(nats_bin || true)"
    if [ -z "$bin" ]; then
      apt_install nats-server
      # Debian's package starts a systemd service on 4222 without JetStream; ours replaces it.
      if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now nats-server >/dev/null 2>&1 || true
      fi
      # Debian's package may start its own service (without JetStream); ours needs -js.
      if nats_up; then
        nats_info | grep -q '"jetstream":true' || die "Debian's nats-server service started without JetStream; stop it and run this again"
      fi
      bin="$(nats_bin)" || die "nats-server not found after installing it"
    fi
    nats_up || nats_start "$bin"
    wait_for "NATS ($NATS_HOST:$NATS_PORT)" nats_up ||
      die "NATS did not answer on $NATS_HOST:$NATS_PORT within ${WAIT_SECONDS}s (see its log)"
  else
    log "NATS already answers on $NATS_HOST:$NATS_PORT"
  fi
  nats_info | grep -q '"jetstream":true' ||
    die "NATS on $NATS_HOST:$NATS_PORT runs without JetStream; restart it with -js"
}

ensure_postgres
ensure_nats

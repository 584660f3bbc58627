# shellcheck shell=bash
# Makes sure the repository's dependencies are installed under Node 24, then puts
# node_modules/.bin (Node 24 itself, tsx, vitest, hardhat, buf...) first on PATH.
#
# Meant to be SOURCED, so the PATH change reaches the caller:
#     source scripts/bootstrap.sh        # from any directory
# Running it (`bash scripts/bootstrap.sh`) only installs.
#
# Idempotent: it runs `npm ci` unless node_modules/.cashback-install holds the sha256 of
# package-lock.json, a stamp written only after an install (including its postinstall codegen)
# succeeded under Node 24. So a failed or interrupted install, an install made under another
# Node, or node_modules from another lockfile is installed again. npm must itself run under
# Node 24 while installing, or Hardhat's native EDR package is silently skipped, hence
# `npx -p node@24`; `-p npm@11` brings an npm that runs on Node 24 whatever npm the machine has
# (Debian's own npm only runs on Debian's node). `npm ci` ends with the root postinstall
# (`npm run generate`): the gitignored generated code (proto, contract artifacts/ABI, Prisma).
#
# If npm/npx is missing: as root it installs Debian's nodejs + npm (only used to fetch Node 24),
# otherwise it says what to install and fails.
# It does not change the caller's shell options (no `set -e` leaks out when sourced).

_cashback_bootstrap() {
  local repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1

  if ! command -v npx >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bootstrap: npm/npx not found; installing Debian's nodejs and npm" >&2
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm || return 1
    else
      echo "bootstrap: npm and npx are required (any Node.js >= 18 with npm; the repo brings its own Node 24)." >&2
      echo "bootstrap: install them, e.g. 'sudo apt-get install -y nodejs npm' on Debian/Ubuntu, then run again." >&2
      return 1
    fi
  fi

  # npm 11 warns on every call ("Unknown user/env config nodedir") when ~/.npmrc sets node-gyp's
  # `nodedir` (Debian's Node sets it to its own headers, which are not Node 24's anyway). Our npm
  # calls read a copy of the user config without that line; nothing else in it changes.
  local userrc="${NPM_CONFIG_USERCONFIG:-$HOME/.npmrc}"
  unset npm_config_nodedir NPM_CONFIG_NODEDIR
  if [ -f "$userrc" ] && grep -qE '^[[:space:]]*nodedir[[:space:]]*=' "$userrc"; then
    mkdir -p "$repo/.data"
    grep -vE '^[[:space:]]*nodedir[[:space:]]*=' "$userrc" >"$repo/.data/npmrc" || true
    export NPM_CONFIG_USERCONFIG="$repo/.data/npmrc"
  fi

  local stamp="$repo/node_modules/.cashback-install" want
  want="$(sha256sum "$repo/package-lock.json" | cut -d' ' -f1)" || return 1
  if [ ! -x "$repo/node_modules/.bin/node" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing dependencies under Node 24 (npm ci, then npm run generate)" >&2
    (cd "$repo" && npx --yes -p node@24 -p npm@11 -c 'npm ci') || {
      echo "bootstrap: npm ci failed" >&2
      return 1
    }
    echo "$want" >"$stamp"
  fi

  case "$PATH" in
    "$repo/node_modules/.bin:"*) ;; # already first
    *) export PATH="$repo/node_modules/.bin:$PATH" ;;
  esac
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  _cashback_bootstrap || return 1 # sourced
else
  _cashback_bootstrap || exit 1 # run as a program
fi

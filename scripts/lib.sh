# Shared shell helpers for poolkeeper's scripts. Sourced, not run.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${POOLKEEPER_BUILD_DIR:-$REPO_ROOT/build}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# PostgreSQL and PgBouncer refuse to run as root: as root we run them as the `postgres` user the
# Debian package creates; as anyone else, as ourselves.
service_user() {
  if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}
as_service_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until a command succeeds, up to $1 seconds; the command is polled, not slept on blindly.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

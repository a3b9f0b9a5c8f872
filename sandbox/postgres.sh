#!/usr/bin/env bash
# A throw-away local PostgreSQL cluster for the tests: start | stop | restart | status | url.
#   FHIR_BRIDGE_PG_PORT  port on 127.0.0.1 (default 55432)
#   FHIR_BRIDGE_PG_DIR   where its data and socket live (default /tmp/fhir-bridge-pg-<port>)
# Installs Debian's postgresql when missing and it can (root). PostgreSQL refuses to run as
# root, so as root the cluster is owned by and run as the postgres user.
set -euo pipefail
PORT="${FHIR_BRIDGE_PG_PORT:-55432}"
DIR="${FHIR_BRIDGE_PG_DIR:-/tmp/fhir-bridge-pg-$PORT}"
DATA="$DIR/data"

bindir() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$found" ] && command -v initdb >/dev/null 2>&1; then found="$(dirname "$(command -v initdb)")"; fi
  echo "$found"
}

ensure_installed() {
  if [ -n "$(bindir)" ]; then return; fi
  if [ "$(id -u)" != 0 ]; then echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } >/tmp/apt-postgresql.log 2>&1 \
    || { echo "postgres.sh: could not install postgresql (see /tmp/apt-postgresql.log)" >&2; exit 1; }
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

pgctl() { as_owner "'$(bindir)/pg_ctl' -D '$DATA' $*"; }

start() {
  ensure_installed
  mkdir -p "$DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_owner "'$(bindir)/initdb' -D '$DATA' -A trust -U postgres >'$DIR/initdb.log' 2>&1"
  fi
  if pgctl status >/dev/null 2>&1; then return; fi
  pgctl "-l '$DIR/log' -w -t 60 -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start" >/dev/null
}

case "${1:-}" in
  start) start; echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" ;;
  stop) if [ -f "$DATA/PG_VERSION" ]; then pgctl "-m fast -w stop" >/dev/null 2>&1 || true; fi ;;
  restart) pgctl "-m fast -w -t 60 restart" >/dev/null ;;
  status) pgctl status >/dev/null 2>&1 ;;
  url) echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" ;;
  *) echo "usage: $0 start|stop|restart|status|url" >&2; exit 2 ;;
esac

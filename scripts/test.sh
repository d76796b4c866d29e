#!/usr/bin/env bash
# Runs every test with the race detector, with the real services started first.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c" || true; done' EXIT
if [ -x scripts/mariadb-up.sh ] || [ -f scripts/mariadb-up.sh ]; then
  eval "$(bash scripts/mariadb-up.sh .tmp/mariadb)"
  cleanup+=("bash scripts/mariadb-down.sh .tmp/mariadb")
fi
go test -race -count=1 -timeout 30m ./...

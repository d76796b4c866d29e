#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 10m) each, one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10m}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
    echo "== $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
  done
done

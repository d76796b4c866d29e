#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 10m) each, one after another.
# A new input is minimized for at most FUZZMINIMIZE (default 10s, Go's 60s
# left sniffer/codec's FuzzDecode minimizing for 55 of its 60 s: each
# minimizing run decodes up to 1,500 bytes of G.723.1 or Speex).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10m}
m=${FUZZMINIMIZE:-10s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
    echo "== $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime "$m" "$pkg"
  done
done

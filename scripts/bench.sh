#!/usr/bin/env bash
# Benchmarks of every hot path; packets/s is reported by the benchmarks themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" ./...

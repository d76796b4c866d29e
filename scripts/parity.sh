#!/usr/bin/env bash
# Parity with the real VoIPmonitor (issue 12): replays every capture of
# ../shared/fixtures/voipmonitor-ref into a private MariaDB and compares rows.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
mkdir -p .tmp
eval "$(bash scripts/mariadb-up.sh .tmp/mariadb-parity)"
trap 'bash scripts/mariadb-down.sh .tmp/mariadb-parity' EXIT
go test ./agent/parity -run TestParity -count=1 -v -parity.report="$PWD/testdata/parity/REPORT.md"

#!/usr/bin/env bash
# Runs the tests that need a MariaDB Galera cluster (names containing Galera),
# with the race detector, against a private 3-node cluster started here and
# stopped after. A single MariaDB is started too: the write-rate comparison
# and the failover unit tests use it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c" || true; done' EXIT
eval "$(bash scripts/mariadb-up.sh .tmp/mariadb)"
cleanup+=("bash scripts/mariadb-down.sh .tmp/mariadb")
# The cluster's directory: .tmp/galera, unless the nodes (run as mysql under
# root) cannot reach it; then one under /tmp named after this checkout.
GDIR=$PWD/.tmp/galera
if [ "$(id -u)" -eq 0 ] && ! runuser -u mysql -- test -x "$PWD/.tmp"; then
	GDIR=${TMPDIR:-/tmp}/pbx-galera-$(printf %s "$PWD" | md5sum | cut -c1-8)
fi
bash scripts/galera-down.sh "$GDIR" --purge # a fresh cluster: no state left from an earlier run
# Stopped, not removed: the nodes' error logs stay in $GDIR/node*/error.log.
cleanup+=("bash scripts/galera-down.sh '$GDIR'")
start=$(date +%s)
eval "$(bash scripts/galera-up.sh "$GDIR")"
echo "cluster-test: Galera cluster up in $(($(date +%s) - start)) s"
# -p 1: one package at a time, so the tests that kill nodes and run partition
# DDL do not share the cluster with each other.
go test -race -p 1 -count=1 -timeout 20m -run 'Galera|Failover' ./agent ./agent/cdr ./agent/dbconn

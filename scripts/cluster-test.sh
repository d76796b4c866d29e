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
bash scripts/galera-down.sh .tmp/galera --purge # a fresh cluster: no state left from an earlier run
# Stopped, not removed: the nodes' error logs stay in .tmp/galera/node*/error.log.
cleanup+=("bash scripts/galera-down.sh .tmp/galera")
start=$(date +%s)
eval "$(bash scripts/galera-up.sh .tmp/galera)"
echo "cluster-test: Galera cluster up in $(($(date +%s) - start)) s"
# -p 1: one package at a time, so the tests that kill nodes and run partition
# DDL do not share the cluster with each other.
go test -race -p 1 -count=1 -timeout 20m -run 'Galera|Failover' ./agent ./agent/cdr ./agent/dbconn

#!/usr/bin/env bash
# galera-down.sh — stop the private Galera cluster started by galera-up.sh.
#
#   scripts/galera-down.sh [DIR] [--node N] [--kill] [--purge]
#
# DIR defaults to $PBX_GALERA_DIR. Every node (or only node N) gets SIGTERM, a clean
# leave of the cluster; --kill sends SIGKILL instead (a crash: the others see it vanish);
# --purge removes DIR afterwards. galera-up.sh DIR starts the stopped nodes again.
set -euo pipefail

log() { echo "galera-down: $*" >&2; }
# shellcheck source=scripts/mariadb-lib.sh
source "$(dirname "$0")/mariadb-lib.sh"

DIR=
SIG=TERM
PURGE=0
ONLY=
while [[ $# -gt 0 ]]; do
	case $1 in
	--kill) SIG=KILL; shift ;;
	--purge) PURGE=1; shift ;;
	--node) ONLY=$2; shift 2 ;;
	*) DIR=$1; shift ;;
	esac
done
DIR=${DIR:-${PBX_GALERA_DIR:-}}
[[ -n $DIR ]] || { log "no DIR given and PBX_GALERA_DIR unset"; exit 1; }
[[ -d $DIR ]] || { log "$DIR does not exist; nothing to stop"; exit 0; }

stop_node() {
	local d=$DIR/node$1
	[[ -f $d/server.pid ]] || return 0
	stop_pid "$(<"$d/server.pid")" "$SIG" "node $1"
	rm -f "$d/server.pid" "$d/mysqld.pid" "$d/mysqld.sock"
}

if [[ -n $ONLY ]]; then
	stop_node "$ONLY"
else
	# The last node to leave is the one safe to bootstrap from: stop 3, 2, then 1.
	for n in 3 2 1; do stop_node "$n"; done
fi
if ((PURGE)); then
	rm -rf "$DIR"
	log "removed $DIR"
fi

#!/usr/bin/env bash
# mariadb-down.sh — stop the private MariaDB started by mariadb-up.sh.
#
#   scripts/mariadb-down.sh [DIR] [--kill] [--purge]
#
# DIR defaults to $PBX_MARIADB_DIR. Without flags the server gets SIGTERM (clean
# shutdown) and the data stays, so mariadb-up.sh DIR restarts it. --kill sends SIGKILL
# (a crash, for fault tests); --purge removes DIR afterwards.
set -euo pipefail

log() { echo "mariadb-down: $*" >&2; }
# shellcheck source=scripts/mariadb-lib.sh
source "$(dirname "$0")/mariadb-lib.sh"

DIR=
SIG=TERM
PURGE=0
for a in "$@"; do
	case $a in
	--kill) SIG=KILL ;;
	--purge) PURGE=1 ;;
	*) DIR=$a ;;
	esac
done
DIR=${DIR:-${PBX_MARIADB_DIR:-}}
[[ -n $DIR ]] || { log "no DIR given and PBX_MARIADB_DIR unset"; exit 1; }
[[ -d $DIR ]] || { log "$DIR does not exist; nothing to stop"; exit 0; }

PIDFILE=$DIR/mysqld.pid
if [[ -f $PIDFILE ]]; then
	stop_pid "$(<"$PIDFILE")" "$SIG" mariadbd
	rm -f "$PIDFILE"
fi
rm -f "$DIR/mysqld.sock"
if ((PURGE)); then
	rm -rf "$DIR"
	log "removed $DIR"
fi

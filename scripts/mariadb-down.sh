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
	pid=$(<"$PIDFILE")
	if kill -0 "$pid" 2>/dev/null; then
		kill -s "$SIG" "$pid"
		for _ in $(seq 1 240); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid still alive after 60s; sending SIGKILL"
			kill -s KILL "$pid" 2>/dev/null || true
		fi
		log "stopped pid $pid ($SIG)"
	fi
	rm -f "$PIDFILE"
fi
rm -f "$DIR/mysqld.sock"
if ((PURGE)); then
	rm -rf "$DIR"
	log "removed $DIR"
fi

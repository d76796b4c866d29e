#!/usr/bin/env bash
# mariadb-up.sh — start a private MariaDB for tests and `make run`.
#
#   eval "$(scripts/mariadb-up.sh [DIR])"      # start (or restart) and export its settings
#   scripts/mariadb-down.sh [DIR] [--kill]      # stop it (SIGTERM, or SIGKILL with --kill)
#
# DIR (default: $PBX_MARIADB_DIR, else a new temp dir) holds the datadir, the unix
# socket, the pid file, the error log and the chosen TCP port. Running the script again
# on the same DIR restarts the same instance on the same port with its data intact (the
# fault tests stop and restart MariaDB this way).
#
# It uses the Debian mariadb-server binaries (mariadb-install-db, mariadbd); nothing is
# installed here. Root is not needed: mariadbd runs as the calling user (CI runs as
# root, hence --user). It creates database $PBX_MARIADB_DB (default pbx) and user
# pbx/pbx with all privileges (tests create one scratch database each), and prints
# shell `export` lines on stdout; progress goes to stderr.
#
# PBX_MARIADB_TLS=CERTDIR starts the server with TLS required on TCP: CERTDIR holds
# ca.pem, server-cert.pem and server-key.pem, passed as --ssl-ca/--ssl-cert/--ssl-key with
# --require-secure-transport=ON (the unix socket stays usable without TLS). DIR remembers
# it, so a restart on the same DIR keeps TLS.
set -euo pipefail

log() { echo "mariadb-up: $*" >&2; }
die() { log "error: $*"; exit 1; }

DIR=${1:-${PBX_MARIADB_DIR:-}}
if [[ -z $DIR ]]; then
	DIR=$(mktemp -d "${TMPDIR:-/tmp}/pbx-mariadb.XXXXXX")
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DB=${PBX_MARIADB_DB:-pbx}
USER_NAME=$(id -un)

# shellcheck source=scripts/mariadb-lib.sh
source "$(dirname "$0")/mariadb-lib.sh"
MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd not found: apt-get install -y mariadb-server"
INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found: apt-get install -y mariadb-server"
CLIENT=$(find_bin mariadb mysql) || die "mariadb client not found: apt-get install -y mariadb-client"

SOCK=$DIR/mysqld.sock
PIDFILE=$DIR/mysqld.pid
ERRLOG=$DIR/error.log

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -f $DIR/port ]]; then
	PORT=$(<"$DIR/port")
else
	PORT=
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if port_free "$p"; then PORT=$p; break; fi
	done
	[[ -n $PORT ]] || die "no free TCP port found"
	echo "$PORT" >"$DIR/port"
fi

TLS_ARGS=()
if [[ -n ${PBX_MARIADB_TLS:-} ]]; then
	echo "$PBX_MARIADB_TLS" >"$DIR/tls"
fi
if [[ -f $DIR/tls ]]; then
	CERTS=$(<"$DIR/tls")
	for f in ca.pem server-cert.pem server-key.pem; do
		[[ -r $CERTS/$f ]] || die "PBX_MARIADB_TLS: $CERTS/$f not readable"
	done
	TLS_ARGS=(--ssl-ca="$CERTS/ca.pem" --ssl-cert="$CERTS/server-cert.pem" --ssl-key="$CERTS/server-key.pem"
		--require-secure-transport=ON)
fi

running() { [[ -f $PIDFILE ]] && kill -0 "$(<"$PIDFILE")" 2>/dev/null; }

if [[ ! -d $DIR/data/mysql ]]; then
	log "initialising datadir $DIR/data"
	"$INSTALL_DB" --no-defaults --datadir="$DIR/data" --user="$USER_NAME" \
		--auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1 ||
		{ cat "$DIR/install.log" >&2; die "mariadb-install-db failed"; }
fi

if running; then
	log "already running (pid $(<"$PIDFILE"))"
else
	rm -f "$SOCK" "$PIDFILE"
	# setsid: the server must outlive the shell (and the go test) that started it.
	setsid "$MARIADBD" --no-defaults --user="$USER_NAME" --datadir="$DIR/data" \
		--socket="$SOCK" --port="$PORT" --bind-address=127.0.0.1 \
		--pid-file="$PIDFILE" --log-error="$ERRLOG" --skip-name-resolve \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
		--max-connections=200 --character-set-server=utf8mb4 "${TLS_ARGS[@]}" \
		</dev/null >/dev/null 2>&1 &
	for i in $(seq 1 120); do
		if [[ -S $SOCK ]] && "$CLIENT" --no-defaults -uroot --socket="$SOCK" -e 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		if ((i == 120)); then
			tail -20 "$ERRLOG" >&2 || true
			die "mariadbd did not come up (log: $ERRLOG)"
		fi
		sleep 0.25
	done
	log "mariadbd up: socket $SOCK, port $PORT, pid $(<"$PIDFILE")${TLS_ARGS:+, TLS required on TCP}"
fi

create_pbx_db "$CLIENT" "$SOCK" "$DB"

cat <<EOF
export PBX_MARIADB_DIR='$DIR'
export PBX_TEST_MYSQL_DSN='pbx:pbx@tcp(127.0.0.1:$PORT)/$DB'
export PBX_TEST_MYSQL_HOST='127.0.0.1'
export PBX_TEST_MYSQL_PORT='$PORT'
export PBX_TEST_MYSQL_SOCKET='$SOCK'
export PBX_TEST_MYSQL_DB='$DB'
export PBX_TEST_MYSQL_USER='pbx'
export PBX_TEST_MYSQL_PASSWORD='pbx'
EOF

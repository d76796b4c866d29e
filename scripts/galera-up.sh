#!/usr/bin/env bash
# galera-up.sh — start a private 3-node MariaDB Galera cluster on 127.0.0.1 for tests.
#
#   eval "$(scripts/galera-up.sh [DIR])"        # start every node that is not running
#   scripts/galera-up.sh DIR --node N            # (re)start node N only (it rejoins the cluster)
#   scripts/galera-down.sh [DIR] [--node N] [--kill] [--purge]
#
# DIR (default: $PBX_GALERA_DIR, else a new temp dir) holds node1..node3, each with its
# datadir, socket, pid file and error log, and the file "ports" (per node: the client,
# group-communication, IST and SST ports, chosen once). When no node runs, node 1
# bootstraps a new cluster (--wsrep-new-cluster) and nodes 2 and 3 join it by SST (rsync);
# a node started while others run joins them (IST when the others' gcache still holds
# what it missed, else SST).
#
# Settings Galera needs: binlog_format = ROW, InnoDB, innodb_autoinc_lock_mode = 2,
# wsrep_provider = Debian's galera-4. As root the nodes run as the `mysql` user: the
# joiner's rsync daemon drops privileges to the server's user, and SST fails with
# "Permission denied" on a root-owned datadir otherwise. Without root they run as the
# calling user. Creates database $PBX_MARIADB_DB (default pbx) and user pbx/pbx (all
# privileges); prints `export` lines on stdout (PBX_TEST_GALERA_ADDRS is the nodes'
# client addresses, comma-separated, in node order); progress goes to stderr.
set -euo pipefail

log() { echo "galera-up: $*" >&2; }
die() { log "error: $*"; exit 1; }

DIR=
ONLY=
while [[ $# -gt 0 ]]; do
	case $1 in
	--node) ONLY=$2; shift 2 ;;
	*) DIR=$1; shift ;;
	esac
done
DIR=${DIR:-${PBX_GALERA_DIR:-}}
if [[ -z $DIR ]]; then
	DIR=$(mktemp -d "${TMPDIR:-/tmp}/pbx-galera.XXXXXX")
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DB=${PBX_MARIADB_DB:-pbx}
NODES=3

# shellcheck source=scripts/mariadb-lib.sh
source "$(dirname "$0")/mariadb-lib.sh"
MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd not found: apt-get install -y mariadb-server"
INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found: apt-get install -y mariadb-server"
CLIENT=$(find_bin mariadb mysql) || die "mariadb client not found: apt-get install -y mariadb-client"
PROVIDER=
for p in /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so; do
	[[ -f $p ]] && PROVIDER=$p && break
done
[[ -n $PROVIDER ]] || die "libgalera_smm.so not found: apt-get install -y galera-4"
command -v rsync >/dev/null 2>&1 || die "rsync not found (SST): apt-get install -y rsync"

RUN_AS=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
	id mysql >/dev/null 2>&1 || die "running as root needs the mysql user (it comes with mariadb-server)"
	RUN_AS=mysql
	# mysql must be able to reach DIR (the joiner's rsync daemon runs as mysql).
	runuser -u mysql -- test -x "$DIR" ||
		die "the mysql user cannot reach $DIR (a parent directory is closed to others): use a DIR under /tmp"
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ports: one line per node, "client gcomm ist sst".
if [[ ! -f $DIR/ports ]]; then
	declare -A used=()
	: >"$DIR/ports.tmp"
	for n in $(seq 1 $NODES); do
		line=
		for _ in 1 2 3 4; do
			p=
			for _ in $(seq 1 100); do
				c=$((20000 + RANDOM % 20000))
				if [[ -z ${used[$c]:-} ]] && port_free "$c"; then p=$c; break; fi
			done
			[[ -n $p ]] || die "no free TCP port found"
			used[$p]=1
			line+="$p "
		done
		echo "${line% }" >>"$DIR/ports.tmp"
	done
	mv "$DIR/ports.tmp" "$DIR/ports"
fi
mapfile -t PORTLINES <"$DIR/ports"
nport() { # nport NODE FIELD(1=client 2=gcomm 3=ist 4=sst)
	local f
	read -r -a f <<<"${PORTLINES[$(($1 - 1))]}"
	echo "${f[$(($2 - 1))]}"
}
GCOMM=
for n in $(seq 1 $NODES); do
	GCOMM+="127.0.0.1:$(nport "$n" 2),"
done
GCOMM=${GCOMM%,}

ndir() { echo "$DIR/node$1"; }
# server.pid is written here, at start: mariadbd writes its own pid file only after SST.
running() { local pf; pf=$(ndir "$1")/server.pid; [[ -f $pf ]] && kill -0 "$(<"$pf")" 2>/dev/null; }
ready() { # the node answers and is a synced member of the primary component
	local out
	out=$("$CLIENT" --no-defaults -uroot --socket="$(ndir "$1")/mysqld.sock" -N -B \
		-e "SHOW STATUS WHERE Variable_name IN ('wsrep_ready','wsrep_local_state_comment')" 2>/dev/null) || return 1
	grep -q 'wsrep_ready[[:space:]]*ON' <<<"$out" && grep -q 'Synced' <<<"$out"
}

start_node() { # start_node N [bootstrap]
	local n=$1 boot=${2:-} d
	d=$(ndir "$n")
	mkdir -p "$d"
	if [[ $n -eq 1 && ! -d $d/data/mysql ]]; then
		log "node 1: initialising datadir"
		"$INSTALL_DB" --no-defaults --datadir="$d/data" --user="$RUN_AS" \
			--auth-root-authentication-method=normal --skip-test-db >"$d/install.log" 2>&1 ||
			{ cat "$d/install.log" >&2; die "mariadb-install-db failed"; }
	fi
	mkdir -p "$d/data"
	if [[ -n $boot ]]; then
		# A cluster stopped or killed whole: allow node 1 to bootstrap from its data.
		[[ -f $d/data/grastate.dat ]] && sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$d/data/grastate.dat"
	fi
	[[ $RUN_AS != "$(id -un)" ]] && chown -R "$RUN_AS": "$d"
	rm -f "$d/mysqld.sock" "$d/mysqld.pid" "$d/server.pid"
	local extra=()
	[[ -n $boot ]] && extra+=(--wsrep-new-cluster)
	# setsid: the node must outlive the shell (and the go test) that started it.
	setsid "$MARIADBD" --no-defaults --user="$RUN_AS" --datadir="$d/data" \
		--socket="$d/mysqld.sock" --port="$(nport "$n" 1)" --bind-address=127.0.0.1 \
		--pid-file="$d/mysqld.pid" --log-error="$d/error.log" --skip-name-resolve \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
		--max-connections=200 --character-set-server=utf8mb4 \
		--binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
		--wsrep-on=ON --wsrep-provider="$PROVIDER" --wsrep-cluster-name=pbx-test \
		--wsrep-cluster-address="gcomm://$GCOMM" --wsrep-node-name="node$n" \
		--wsrep-node-address="127.0.0.1:$(nport "$n" 2)" \
		--wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$(nport "$n" 2);ist.recv_addr=127.0.0.1:$(nport "$n" 3);gcache.size=128M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S" \
		--wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$(nport "$n" 4)" \
		--wsrep-slave-threads=2 "${extra[@]}" \
		</dev/null >/dev/null 2>&1 &
	echo $! >"$d/server.pid"
}

wait_ready() { # wait_ready N SECONDS
	local n=$1 i
	for i in $(seq 1 $(($2 * 4))); do
		if ready "$n"; then return 0; fi
		if ! running "$n" && ((i > 20)); then break; fi
		sleep 0.25
	done
	tail -30 "$(ndir "$n")/error.log" >&2 || true
	die "node $n did not become a synced member (log: $(ndir "$n")/error.log)"
}

T0=$(date +%s.%N)
any_running() { local n; for n in $(seq 1 $NODES); do running "$n" && return 0; done; return 1; }
todo=$(seq 1 $NODES)
[[ -n $ONLY ]] && todo=$ONLY
for n in $todo; do
	if running "$n"; then
		log "node $n already running (pid $(<"$(ndir "$n")/server.pid"))"
		continue
	fi
	if any_running; then
		start_node "$n"
	else
		start_node "$n" bootstrap
	fi
	wait_ready "$n" 180
	log "node $n synced: port $(nport "$n" 1), pid $(<"$(ndir "$n")/server.pid")"
done
T1=$(date +%s.%N)
log "cluster ready in $(awk "BEGIN{printf \"%.1f\", $T1-$T0}") s"

first=
for n in $(seq 1 $NODES); do running "$n" && ready "$n" && { first=$n; break; }; done
[[ -n $first ]] || die "no node is synced"
# DDL and grants replicate (TOI): one node is enough.
create_pbx_db "$CLIENT" "$(ndir "$first")/mysqld.sock" "$DB"

ADDRS=
for n in $(seq 1 $NODES); do ADDRS+="127.0.0.1:$(nport "$n" 1),"; done
cat <<EOF
export PBX_GALERA_DIR='$DIR'
export PBX_TEST_GALERA_ADDRS='${ADDRS%,}'
export PBX_TEST_GALERA_DB='$DB'
export PBX_TEST_GALERA_USER='pbx'
export PBX_TEST_GALERA_PASSWORD='pbx'
EOF

# mariadb-lib.sh — shell functions shared by mariadb-up/down.sh and galera-up/down.sh
# (sourced, not run). The caller defines log().

# find_bin NAME... prints the path of the first program found (PATH, then the sbin dirs).
find_bin() {
	local name d
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
		for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
			if [[ -x $d/$name ]]; then echo "$d/$name"; return 0; fi
		done
	done
	return 1
}

# stop_pid PID SIG LABEL sends SIG and waits up to 60 s for PID to exit (then SIGKILL).
stop_pid() {
	local pid=$1 sig=$2 label=$3
	kill -0 "$pid" 2>/dev/null || return 0
	kill -s "$sig" "$pid"
	for _ in $(seq 1 240); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$label (pid $pid) still alive after 60s; sending SIGKILL"
		kill -s KILL "$pid" 2>/dev/null || true
	fi
	log "stopped $label (pid $pid, $sig)"
}

# create_pbx_db CLIENT SOCKET DB creates database DB and the test user pbx/pbx (from
# localhost and 127.0.0.1, all privileges) through the root socket SOCKET.
create_pbx_db() {
	local client=$1 sock=$2 db=$3
	"$client" --no-defaults -uroot --socket="$sock" <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\`;
CREATE USER IF NOT EXISTS 'pbx'@'localhost' IDENTIFIED BY 'pbx';
CREATE USER IF NOT EXISTS 'pbx'@'127.0.0.1' IDENTIFIED BY 'pbx';
GRANT ALL PRIVILEGES ON *.* TO 'pbx'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'pbx'@'127.0.0.1' WITH GRANT OPTION;
SQL
}

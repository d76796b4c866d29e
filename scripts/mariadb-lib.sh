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

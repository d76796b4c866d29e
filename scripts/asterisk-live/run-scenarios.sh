#!/usr/bin/env bash
# Run pbx-agent LIVE beside a real Asterisk (built by build.sh), loopback only, and drive the scenarios.
# Usage: run-scenarios.sh [STEP...]   steps (default: all, in this order):
#   setup      build the agent, write configs, start MariaDB, tcpdump (AMI), Asterisk, check-config, doctor
#   agent      start pbx-agent
#   calls      scenarios.py answered pause listen busy cancel transfer originate srtp srtptap mgrpause browser listenend
#              (then waits 65 s and dumps every CDR: challenged INVITE dialogs are stored 60 s after their BYE)
#   restart    an answered call, then `core restart now` mid-call; reconnect + a new correlated call
#   wrongsecret  agent with a wrong AMI secret (30 s)
#   taps       TAP_TRIES (default 50) fresh ARI taps in a row on one SRTP call, stereo separation per tap
#   noasterisk   agent started while Asterisk is down; Asterisk started 20 s later
#   fax        the agent live with faxdetect = yes beside fax.sh's G.711 and T.38 fax calls (its own
#              Asterisk: the lab's is stopped first); their CDRs must have payload 1001 and 1000
#   teardown   stop everything this script started (by pid)
# Evidence: $RUN/evidence/<scenario>/, logs in $RUN (agent*.log, asterisk log/messages.log, ami.pcap).
# Env: WORK (Asterisk build, default ~/.cache/asterisk-live/asterisk), LIVE (default ~/.cache/asterisk-live/live),
#      MAIN (pbx-agent checkout, default: the git checkout you run it from), MGRPORT (25029), HTTPPORT (28080), DBPORT (33516).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=$(cd "$HERE/.." && pwd)
WORK=${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/asterisk-live/asterisk}; ROOT=$WORK/root
LIVE=${LIVE:-${XDG_CACHE_HOME:-$HOME/.cache}/asterisk-live/live}; RUN=${RUN:-$LIVE/run}
MAIN=${MAIN:-$(git rev-parse --show-toplevel 2>/dev/null || pwd)}
AGENT=$LIVE/pbx-agent
MGRPORT=${MGRPORT:-25029}; HTTPPORT=${HTTPPORT:-28080}; DBPORT=${DBPORT:-33516}
HTTP=127.0.0.1:$HTTPPORT
AST_BIN=$ROOT/sbin/asterisk
ASTC=("$AST_BIN" -C "$RUN/etc/asterisk.conf")
SOCK=$LIVE/db/mysqld.sock
export RUN AST_BIN MGRPORT HTTP SOCK SENSOR=3 OUT=$RUN/evidence AUDIO_DIR=$LIVE/audio SHOT=$LIVE/shot
log() { echo "[$(date +%T)] $*"; }
pidof_file() { [ -f "$1" ] && cat "$1"; }

ast_up() { # wait for AMI
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5038) 2>/dev/null && return 0; sleep 0.5; done; return 1
}
start_asterisk() {
  "${ASTC[@]}" -f >>"$RUN/asterisk.out" 2>&1 &
  echo $! >"$RUN/asterisk.pid"
  ast_up && log "asterisk up (pid $(cat "$RUN/asterisk.pid")): $("${ASTC[@]}" -rx 'core show version')"
}
stop_asterisk() {
  local p; p=$(pidof_file "$RUN/asterisk.pid") || return 0
  "${ASTC[@]}" -rx 'core stop now' >/dev/null 2>&1
  for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  kill "$p" 2>/dev/null; rm -f "$RUN/asterisk.pid"
}
start_agent() { # $1 = log name, rest = extra args
  local name=$1; shift
  "$AGENT" -config "$RUN/pbx-agent.conf" "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/agent.pid"
  export AGENT_PID=$!
  sleep 3
  log "agent started pid $AGENT_PID ($name.log)"
}
stop_agent() {
  local p; p=$(pidof_file "$RUN/agent.pid") || return 0
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$p" 2>/dev/null && { log "agent $p did not exit on SIGTERM in 15 s"; kill -9 "$p"; }
  if wait "$p" 2>/dev/null; then log "agent exited 0"; else rc=$?; [ $rc = 127 ] && log "agent $p stopped (not a child of this shell: exit status unknown)" || log "agent exit status: $rc"; fi
  rm -f "$RUN/agent.pid"
}

step_setup() {
  mkdir -p "$RUN"/{etc,spool/monitor,var/lib,run,log,spool-agent,evidence} "$LIVE/audio"
  (cd "$MAIN" && go build -o "$AGENT" ./agent) || { log "agent build failed"; exit 1; }
  (cd "$HERE/shot" && GOFLAGS=-mod=mod go build -o "$LIVE/shot" .) || log "shot (chromedp) build failed: browser scenario will be skipped"
  for p in alice:700 bob:1300 carol:1900; do
    [ -f "$LIVE/audio/${p%%:*}.wav" ] || sox -n -r 8000 -c 1 -b 16 -e signed-integer "$LIVE/audio/${p%%:*}.wav" synth 600 sine "${p##*:}" vol 0.3
  done
  for f in "$HERE"/conf/*.conf; do
    sed -e "s#@ROOT@#$ROOT#g" -e "s#@RUN@#$RUN#g" -e "s#@SOCK@#$SOCK#g" -e "s#@MGRPORT@#$MGRPORT#g" -e "s#@HTTP@#$HTTP#g" "$f" >"$RUN/etc/$(basename "$f")"
  done
  mv "$RUN/etc/pbx-agent.conf" "$RUN/pbx-agent.conf"
  if [ ! -S "$SOCK" ]; then "$HERE/mariadb-up.sh" "$LIVE/db" "$DBPORT" >/dev/null || { log "no MariaDB"; exit 1; }; fi
  log "mariadb socket $SOCK (pid $(cat "$LIVE/db/mysqld.pid"))"
  tcpdump -i lo -s 0 -U -w "$RUN/ami.pcap" 'tcp port 5038' >/dev/null 2>&1 & echo $! >"$RUN/tcpdump.pid"
  # ground truth for SIP/RTP counts (tcpdump sees each loopback packet once)
  tcpdump -i lo -s 0 -U -w "$RUN/sip-rtp.pcap" 'udp and (port 5060 or portrange 10000-10200 or portrange 20000-20499)' >/dev/null 2>&1 & echo $! >"$RUN/tcpdump-sip.pid"
  start_asterisk || { log "asterisk did not start"; tail "$RUN/asterisk.out"; exit 1; }
  "${ASTC[@]}" -rx 'core set verbose 5' >/dev/null
  "${ASTC[@]}" -rx 'module show like chan_rtp' | tail -2
  log "check-config:"; "$AGENT" check-config -config "$RUN/pbx-agent.conf" 2>&1 | tee "$RUN/check-config.txt"
  log "doctor:"; "$AGENT" doctor -config "$RUN/pbx-agent.conf" 2>&1 | tee "$RUN/doctor.txt"
}

step_agent() { start_agent agent; }

step_calls() {
  python3 "$HERE/scenarios.py" ${SCENARIOS:-answered pause listen busy cancel transfer originate srtp srtptap mgrpause browser listenend} 2>&1 | tee -a "$RUN/scenarios.log"
  log "waiting 10 s for the last CDRs (a challenged call's CDR now comes EndGrace after its BYE, not 60 s)"
  sleep 10
  step_cdrs
}

step_cdrs() { # every CDR so far, plus AMI actions the agent sent
  mariadb --no-defaults -S "$SOCK" -upbx -ppbx voipmonitor -e "select c.ID,c.calldate,c.callend,c.duration,c.connect_duration,c.caller,c.called,c.lastSIPresponseNum,c.bye,c.a_received,c.b_received,n.fbasename from cdr c left join cdr_next n on n.cdr_ID=c.ID order by c.ID" | tee "$RUN/cdr-all.txt"
  python3 "$HERE/ami-actions.py" "$RUN/ami.pcap" | grep -vE 'Action: (Ping|Login|Challenge)|Action: CoreShowChannels' | tee "$RUN/ami-actions.txt" | tail -40
}

step_taps() {
  TAP_TRIES=${TAP_TRIES:-50} python3 "$HERE/scenarios.py" srtptap 2>&1 | tee -a "$RUN/taps.log" | grep -E 'came up|separation|attempt' | tail -60
}

step_restart() {
  log "restart: answered call, then core restart now"
  python3 - <<'EOF' 2>&1 | tee "$RUN/restart.log"
import os, sys, time, subprocess
sys.path.insert(0, os.environ["HERE"])
import scenarios as s
s.start_phones(["alice", "bob"])
a, b = s.phone("alice"), s.phone("bob")
first = s.max_cdr_id()
t = s.dial(a, b, "1002", ring=1.0)
time.sleep(3)
raw, rows = s.listcalls(); s.log("before restart listcalls rows for 1002:", len(s.find_call(rows, want_called="1002")))
t["restart"] = time.time()
s.log("core restart now ->", s.ast("core restart now").strip())
time.sleep(2)
raw, rows = s.listcalls(); s.log("2 s after restart: listcalls rows", [(r.get("callreference"), r.get("caller"), r.get("called")) for r in rows if isinstance(r, dict)])
for _ in range(60):
    if "Asterisk" in s.ast("core show version"):
        break
    time.sleep(0.5)
t["asterisk_back"] = time.time()
s.log(f"asterisk back after {t['asterisk_back'] - t['restart']:.1f}s")
a.cmd("hangup"); b.cmd("hangup")
time.sleep(8)
s.log("manager show connected:\n" + s.ast("manager show connected"))
ok, out = s.wait_registered(["alice", "bob"], 5)
s.log("contacts after restart ok:", ok)
brief, nxt, rtp = s.after_call("restart-old", first, wait=1)
s.log("cdr of the call cut by the restart:\n" + brief)
first = s.max_cdr_id()
t2 = s.dial(a, b, "1002", ring=1.0)
time.sleep(3)
raw, rows = s.listcalls()
st, body = s.api("listActiveCalls", {})
s.save("restart-new", "listActiveCalls.json", body)
s.log("new call after restart: listActiveCalls", body[:1500])
s.log("dashboard calls.json after restart:", s.http_get("/api/chunkplayer/calls.json?user=monitor&password=monpass")[1][:1500])
a.cmd("hangup")
brief, nxt, rtp = s.after_call("restart-new", first)
s.log("cdr of the new call:\n" + brief)
s.stop_phones()
EOF
  grep -iE 'ami|asterisk|reconnect|resync|shutdown|fullybooted' "$RUN/agent.log" | grep -v 'level=DEBUG' | tail -40
}

step_wrongsecret() {
  stop_agent
  log "wrongsecret: agent with ami_secret=wrongpw for 30 s"
  start_agent agent-wrongsecret -set ami_user=monitor -set ami_secret=wrongpw
  sleep 27
  grep -iE 'ami|auth|login|secret' "$RUN/agent-wrongsecret.log" | head -20
  echo "... $(grep -ciE 'ami' "$RUN/agent-wrongsecret.log") AMI lines in 30 s"
  "${ASTC[@]}" -rx 'manager show connected'
  curl -s "http://$HTTP/metrics" | grep -E '^pbx_(ami|ari)_' | tee "$RUN/metrics-wrongsecret.txt"
  stop_agent
}

step_noasterisk() {
  stop_agent
  stop_asterisk
  log "noasterisk: agent started with Asterisk down"
  start_agent agent-noasterisk
  sleep 17
  log "starting asterisk again"
  start_asterisk
  "${ASTC[@]}" -rx 'core set verbose 5' >/dev/null
  sleep 15
  grep -iE 'ami|asterisk|connect|refused|retry' "$RUN/agent-noasterisk.log" | head -30
  "${ASTC[@]}" -rx 'manager show connected'
  SCENARIOS=answered OUT=$RUN/evidence/noasterisk python3 "$HERE/scenarios.py" answered 2>&1 | tee "$RUN/noasterisk-call.log" | grep -E 'Linkedid|linkedid|asterisk|listActiveCalls HTTP' | head -5
  stop_agent
}

step_fax() {
  stop_agent
  stop_asterisk
  if [ ! -S "$SOCK" ]; then "$HERE/mariadb-up.sh" "$LIVE/db" "$DBPORT" >/dev/null || { log "no MariaDB"; return 1; }; fi
  sed 's/^\[general\]$/[general]\nfaxdetect = yes/' "$RUN/pbx-agent.conf" >"$RUN/pbx-agent-fax.conf"
  local db=(mariadb --no-defaults -S "$SOCK" -upbx -ppbx voipmonitor) before
  before=$("${db[@]}" -N -e 'select coalesce(max(ID), 0) from cdr')
  "$AGENT" -config "$RUN/pbx-agent-fax.conf" >"$RUN/agent-fax.log" 2>&1 &
  echo $! >"$RUN/agent.pid"
  sleep 3
  log "agent with faxdetect = yes started pid $(cat "$RUN/agent.pid") (agent-fax.log)"
  bash "$HERE/fax.sh" g711 t38 2>&1 | tee "$RUN/fax.log" | grep -E 'g711:|t38:'
  log "waiting 10 s for the fax calls' CDRs"
  sleep 10
  mkdir -p "$OUT/fax"
  "${db[@]}" -e "select ID, calldate, duration, caller, called, payload, a_received, b_received from cdr where ID > $before order by ID" | tee "$OUT/fax/cdr.txt"
  stop_agent
  local got; got=$("${db[@]}" -N -e "select payload from cdr where ID > $before order by ID" | tr '\n' ' ')
  if [ "$got" = "1001 1000 " ]; then log "fax: PASS (payload 1001 for the G.711 fax, 1000 for the T.38 one)"; else log "fax: FAIL (payloads: $got; want 1001 1000)"; return 1; fi
}

step_teardown() {
  stop_agent
  stop_asterisk
  p=$(pidof_file "$RUN/tcpdump.pid") && kill "$p" 2>/dev/null
  p=$(pidof_file "$RUN/tcpdump-sip.pid") && kill "$p" 2>/dev/null
  p=$(pidof_file "$LIVE/db/mysqld.pid") && kill "$p" 2>/dev/null
  log "teardown done"
}

export HERE
steps=${*:-setup agent calls restart wrongsecret noasterisk teardown}
for s in $steps; do
  log "=== step $s ==="
  "step_$s"
done

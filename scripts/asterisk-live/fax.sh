#!/usr/bin/env bash
# Record real Asterisk fax calls on loopback: SendFAX on one PJSIP channel,
# ReceiveFAX on the other (one Asterisk calling itself over 127.0.0.2 ->
# 127.0.0.1), once with T.38 negotiated by re-INVITE and once over G.711.
# Needs Asterisk built with res_fax and res_fax_spandsp (libspandsp-dev
# installed before configure; see README). Writes under $LIVE/fax/<mode>/:
# fax.pcap (SIP, RTP, UDPTL as tcpdump saw them on lo), received.tif (what
# ReceiveFAX wrote), result.txt (FAXSTATUS, FAXPAGES, REMOTESTATIONID of
# both sides), asterisk.out.
# Usage: scripts/asterisk-live/fax.sh [t38] [t38fec] [g711]   (TIFF=file to send;
# t38fec: T.38 with t38_udptl_ec = fec instead of redundancy)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/asterisk-live/asterisk}
ROOT=$WORK/root
LIVE=${LIVE:-${XDG_CACHE_HOME:-$HOME/.cache}/asterisk-live}
TIFF=$(realpath "${TIFF:-$HERE/../../sniffer/fax/testdata/sent.tif}")
log() { echo "[$(date +%T)] $*"; }
[ -f "$ROOT/lib/asterisk/modules/res_fax_spandsp.so" ] || { log "no res_fax_spandsp.so under $ROOT: rebuild Asterisk with libspandsp-dev"; exit 1; }

record() { # $1 = t38 | t38fec | g711
  local mode=$1 t38=no ec=redundancy run=$LIVE/fax/$1
  case $mode in t38) t38=yes ;; t38fec) t38=yes ec=fec ;; esac
  rm -rf "$run"; mkdir -p "$run"/{etc,spool,run,log,var/lib}
  for f in asterisk.conf logger.conf rtp.conf modules.conf; do
    sed -e "s#@ROOT@#$ROOT#g" -e "s#@RUN@#$run#g" "$HERE/conf/$f" >"$run/etc/$f"
  done
  for f in "$HERE"/fax/*.conf; do
    sed -e "s#@ROOT@#$ROOT#g" -e "s#@RUN@#$run#g" -e "s#@T38@#$t38#g" -e "s#@EC@#$ec#g" -e "s#@TIFF@#$TIFF#g" "$f" >"$run/etc/$(basename "$f")"
  done
  local ast=("$ROOT/sbin/asterisk" -C "$run/etc/asterisk.conf")
  tcpdump -i lo -s 0 -U -w "$run/fax.pcap" 'udp and (port 5060 or port 5062 or portrange 10000-10200 or portrange 4000-4999)' >/dev/null 2>&1 &
  local tcpdump=$!
  sleep 1
  "${ast[@]}" -f >"$run/asterisk.out" 2>&1 &
  local astpid=$!
  for _ in $(seq 1 60); do "${ast[@]}" -rx 'core show version' >/dev/null 2>&1 && break; sleep 0.5; done
  "${ast[@]}" -rx 'module show like fax' | tee "$run/modules.txt"
  log "$mode: originate (T.38 $t38)"
  "${ast[@]}" -rx 'channel originate PJSIP/fax@faxout extension s@fax-send'
  for _ in $(seq 1 240); do [ "$(cat "$run/result.txt" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.5; done
  sleep 1
  "${ast[@]}" -rx 'core stop now' >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do kill -0 "$astpid" 2>/dev/null || break; sleep 0.5; done
  kill "$astpid" 2>/dev/null || true
  kill "$tcpdump"; wait "$tcpdump" 2>/dev/null || true
  log "$mode: $(tr '\n' ';' <"$run/result.txt" 2>/dev/null)"
  ls -la "$run/fax.pcap" "$run/received.tif" 2>/dev/null || true
}

for m in "${@:-t38 g711}"; do
  for mm in $m; do record "$mm"; done
done

#!/usr/bin/env bash
# `make bench`: one table measured in one run on one generated capture
# (BENCH_CALLS calls × BENCH_DURATION s of G.711 RTP, default 300 × 60 s),
# then the Go benchmarks of every hot path.
#
# The table: the floor (scripts/benchfloor: a bare gopacket read+decode
# loop), tshark, `pbx-agent replay`, the daemon replaying the file with
# per-call pcaps compressed (pcap_dump_zip = yes, the default) and plain,
# each with its wall time, CPU time (user+sys), packets per second of each
# and the ratio to the floor by CPU time (the machine may be shared: CPU
# time is what the work costs, wall time what it took), peak RSS and, for
# the daemon, the spool's size. Then heap per active call and CPU per
# packet with every call active, at 1,000 and 10,000 concurrent generated
# calls (BenchmarkActiveCalls; 100,000 too with PBX_BENCH_100K=1).
#
# BENCH_TABLE_ONLY=1 stops after the table; BENCHTIME (default 1s) is the
# Go benchmarks' time. HEP: BenchmarkHEPInput (HEP packets/s, allocs per
# packet) and BenchmarkReplayHEPOutput (a 300-call capture replayed with HEP
# output off and on, packets/s of both in one run).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
go build -o .tmp/pbx-agent ./agent
go build -o .tmp/benchfloor ./scripts/benchfloor
calls=${BENCH_CALLS:-300} secs=${BENCH_DURATION:-60}
pcap=.tmp/bench-${calls}x${secs}.pcap
if [ ! -s "$pcap" ]; then
  ./.tmp/pbx-agent gen -o "$pcap" --calls "$calls" --concurrency "$calls" --cps 50 --duration "$secs" --seed 1 >/dev/null
fi
pkts=$(./.tmp/benchfloor "$pcap" | awk '{print $1}')
conf=.tmp/bench-daemon.conf
printf '[general]\nsavesip = yes\nsavertp = yes\nmanagerport = 0\nhttp_bind =\nasterisk_manager_conf = /nonexistent\n' >"$conf"

floor_cpu=
row() { # label, spool dir or "", command...
  local label=$1 spool=$2; shift 2
  local out; out=$(mktemp)
  /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >/dev/null 2>&1 || { echo "$label: failed" >&2; rm -f "$out"; return; }
  read -r wall user sys rss <"$out"; rm -f "$out"
  local size=-
  if [ -n "$spool" ]; then size=$(du -sm --apparent-size "$spool" | cut -f1); fi
  awk -v l="$label" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v n="$pkts" -v f="${floor_cpu:-0}" -v z="$size" 'BEGIN {
    c = u + s; if (c <= 0) c = 0.001; if (w <= 0) w = 0.001
    ratio = (f > 0) ? sprintf("%.2f", f / c) : "1.00"
    printf "| %-44s | %7.2f | %7.2f | %9.2f M | %9.2f M | %6s | %6d | %5s |\n", l, w, c, n / w / 1e6, n / c / 1e6, ratio, r / 1024, z }'
  if [ -z "$floor_cpu" ]; then floor_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }'); fi
}
echo "== $pcap: $calls calls × ${secs} s, $pkts packets, $(du -mL --apparent-size "$pcap" | cut -f1) MB; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| what (same file, same run) | wall s | CPU s | packets/s wall | packets/CPU-s | × floor (CPU) | RSS MB | spool MB |"
echo "|---|---|---|---|---|---|---|---|"
row "floor: gopacket read+decode (benchfloor)" "" ./.tmp/benchfloor "$pcap"
if command -v tshark >/dev/null; then row "tshark -r FILE -q -z sip,stat" "" tshark -r "$pcap" -q -z sip,stat; fi
row "pbx-agent replay FILE (CDRs, RTP stats, MOS)" "" ./.tmp/pbx-agent replay "$pcap"
for zip in yes no; do
  rm -rf ".tmp/bench-spool-$zip"
  row "daemon -r FILE, SIP+RTP pcaps, pcap_dump_zip=$zip" ".tmp/bench-spool-$zip" ./.tmp/pbx-agent -config "$conf" \
    -set "pcap_dump_zip=$zip" -spooldir ".tmp/bench-spool-$zip" -r "$pcap" --exit-after-replay
done
echo
echo "== heap per active call, CPU per packet with every call active (go test -bench ActiveCalls ./sniffer)"
go test -run '^$' -bench 'ActiveCalls' -benchtime 1x ./sniffer | grep -E '^Benchmark' || true
[ -n "${BENCH_TABLE_ONLY:-}" ] && exit 0
echo "== go test -bench"
PBX_BENCH_PCAP="$PWD/$pcap" go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" ./...

#!/usr/bin/env bash
# Benchmarks of every hot path, plus the packet path over a generated
# 1,000-call capture timed next to `cat` and `tshark -z sip,stat` on the same
# file in the same run. BENCHTIME (default 1s), BENCH_CALLS and BENCH_DURATION
# (seconds per call) size the run. HEP: BenchmarkHEPInput (HEP packets/s,
# allocs per packet) and BenchmarkReplayHEPOutput (a 300-call capture
# replayed with HEP output off and on, packets/s of both in one run).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
go build -o .tmp/pbx-agent ./agent
pcap=.tmp/bench-1000calls.pcap
./.tmp/pbx-agent gen -o "$pcap" --calls "${BENCH_CALLS:-1000}" --concurrency "${BENCH_CALLS:-1000}" \
  --duration "${BENCH_DURATION:-10}" --seed 1
timed() { # label, command...
  local label=$1; shift
  local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
  printf '%-34s %6d ms\n' "$label" $(( (t1 - t0) / 1000000 ))
}
pkts=$(capinfos -c -M "$pcap" 2>/dev/null | awk '/Number of packets/{print $NF}' || true)
echo "== the same file, the same run: $pcap ($(du -h "$pcap" | cut -f1), ${pkts:-?} packets)"
timed "cat FILE >/dev/null" cat "$pcap"
if command -v tshark >/dev/null; then timed "tshark -r FILE -q -z sip,stat" tshark -r "$pcap" -q -z sip,stat; fi
timed "pbx-agent replay FILE" ./.tmp/pbx-agent replay "$pcap"
echo "== go test -bench"
PBX_BENCH_PCAP="$PWD/$pcap" go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" ./...

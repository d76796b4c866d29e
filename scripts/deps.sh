#!/usr/bin/env bash
# Installs the real parts the tests use, from Debian's packages, when missing:
# tshark (referee for SIP/RTP figures), MariaDB (CDR store), Chromium (player),
# galera-4 and rsync (the 3-node cluster of make cluster-test; ss/lsof for its SST),
# lintian and dpkg-dev (the .deb's check and its Depends, scripts/package); the codec libraries the
# audio decoders link through cgo (spandsp G.722/G.726, libgsm, libopus, bcg729
# G.729, libspeex, libavcodec iLBC/G.723.1) and ffmpeg, their referee in
# sniffer/codec's tests.
set -euo pipefail
need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || need+=(mariadb-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ -f /usr/lib/galera/libgalera_smm.so ] || need+=(galera-4)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
for h in spandsp/g722.h:libspandsp-dev gsm.h:libgsm1-dev opus/opus.h:libopus-dev bcg729/decoder.h:libbcg729-dev \
	speex/speex.h:libspeex-dev libavcodec/avcodec.h:libavcodec-dev; do
	compgen -G "/usr/include/${h%%:*}" >/dev/null || compgen -G "/usr/include/*/${h%%:*}" >/dev/null || need+=("${h#*:}")
done
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
{ command -v ss >/dev/null 2>&1 || command -v lsof >/dev/null 2>&1; } || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

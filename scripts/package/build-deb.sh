#!/usr/bin/env bash
# build-deb.sh — build the pbx-agent Debian package with dpkg-deb (no nfpm,
# no root: --root-owner-group).
#
#   scripts/package/build-deb.sh [OUTDIR]     # default .tmp/deb; prints the .deb path
#
# VERSION (default: from git, else 0.1.0) and GOARCH may be set in the
# environment. The binary is linked statically: cgo (AF_PACKET ring, the
# codec libraries) against glibc's static libc when available, else
# CGO_ENABLED=0 (pcapgo fallback, G.711 only). A static binary needs no
# runtime Depends for its codec libraries.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:-$ROOT/.tmp/deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { echo "build-deb: $*" >&2; }

command -v dpkg-deb >/dev/null || { log "dpkg-deb not found (apt-get install dpkg)"; exit 1; }
GO=${GO:-go}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

if [[ -z ${VERSION:-} ]]; then
	VERSION=0.1.0
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		if tag=$(git -C "$ROOT" describe --tags --abbrev=0 2>/dev/null); then
			VERSION=${tag#v}
		fi
		count=$(git -C "$ROOT" rev-list --count HEAD 2>/dev/null || echo 0)
		sha=$(git -C "$ROOT" rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
		VERSION="$VERSION+git$count.$sha"
	fi
fi
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { log "bad VERSION $VERSION (must start with a digit)"; exit 1; }

GOARCH=${GOARCH:-$($GO env GOARCH)}
case $GOARCH in
amd64 | arm64 | riscv64 | s390x | ppc64le) ARCH=$GOARCH ;;
386) ARCH=i386 ;;
arm) ARCH=armhf ;;
*) log "unsupported GOARCH $GOARCH"; exit 1 ;;
esac

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/pbx-agent-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/pkg
install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/usr/lib/systemd/system" "$PKG/etc/pbx-agent" \
	"$PKG/usr/share/doc/pbx-agent" "$PKG/usr/share/man/man8" "$PKG/usr/share/lintian/overrides"
# The maintainer: DEB_MAINTAINER, else the last commit's author.
MAINTAINER=${DEB_MAINTAINER:-$(git -C "$ROOT" log -1 --format='%an <%ae>' 2>/dev/null || true)}
[[ -n $MAINTAINER ]] || { log "set DEB_MAINTAINER='Name <mail>'"; exit 1; }

LDFLAGS="-s -w -X main.version=$VERSION"
BIN=$PKG/usr/bin/pbx-agent
# libavcodec (iLBC, G.723.1) does not link statically (Debian's libavcodec.a
# needs every codec library it was built with): the static build then
# leaves it out (noavcodec tag) and plays those two codecs as silence.
static_build() {
	CGO_ENABLED=1 $GO build -trimpath -tags "netgo,osusergo$1" \
		-ldflags "$LDFLAGS -linkmode external -extldflags -static" -o "$BIN" ./agent 2>"$STAGE/cgo.log"
}
if [[ $GOARCH == "$($GO env GOHOSTARCH)" ]] && static_build ""; then
	log "static cgo build (AF_PACKET TPACKET_V3 capture, every codec)"
elif [[ $GOARCH == "$($GO env GOHOSTARCH)" ]] && static_build ",noavcodec"; then
	log "static cgo build (AF_PACKET TPACKET_V3 capture; iLBC and G.723.1 not decoded: libavcodec does not link statically)"
else
	log "static cgo build unavailable ($(tail -1 "$STAGE/cgo.log" 2>/dev/null)); building with CGO_ENABLED=0"
	CGO_ENABLED=0 GOARCH=$GOARCH $GO build -trimpath -ldflags "$LDFLAGS" -o "$BIN" ./agent
fi

install -m 0644 agent/pbx-agent.service "$PKG/usr/lib/systemd/system/pbx-agent.service"
install -m 0640 scripts/package/pbx-agent.conf "$PKG/etc/pbx-agent/pbx-agent.conf"
install -m 0644 README.md "$PKG/usr/share/doc/pbx-agent/README.md"
install -m 0644 agent/README.md "$PKG/usr/share/doc/pbx-agent/CLI.md"
# Debian's files: copyright (every linked module's licence), the changelog
# of this native package, the manual page made from the help text, and the
# lintian overrides with their reasons.
bash scripts/package/copyright.sh >"$PKG/usr/share/doc/pbx-agent/copyright"
{
	printf 'pbx-agent (%s) unstable; urgency=medium\n\n' "$VERSION"
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$ROOT" log -15 --format='%s' | while IFS= read -r subject; do
			printf '%s\n' "$subject" | fold -s -w 72 | sed -e 's/[[:space:]]*$//' -e '1s/^/  * /' -e '2,$s/^/    /'
		done
	else
		printf '  * Release %s.\n' "$VERSION"
	fi
	printf '\n -- %s  %s\n' "$MAINTAINER" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$PKG/usr/share/doc/pbx-agent/changelog.gz"
$GO run ./agent help --man | gzip -9n >"$PKG/usr/share/man/man8/pbx-agent.8.gz"
install -m 0644 scripts/package/lintian-overrides "$PKG/usr/share/lintian/overrides/pbx-agent"
for s in postinst prerm postrm; do
	install -m 0755 "scripts/package/$s" "$PKG/DEBIAN/$s"
done
echo /etc/pbx-agent/pbx-agent.conf >"$PKG/DEBIAN/conffiles"
# gcc's .comment (static cgo build) is dead weight in a release binary.
if command -v objcopy >/dev/null; then
	objcopy --remove-section=.comment "$BIN"
fi
(cd "$PKG" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$PKG/DEBIAN/md5sums"
SIZE=$(du -ks "$PKG" | cut -f1)
cat >"$PKG/DEBIAN/control" <<CONTROL
Package: pbx-agent
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: passwd, init-system-helpers (>= 1.52)
Recommends: asterisk
Suggests: mariadb-server
Section: net
Priority: optional
Homepage: https://github.com/pbx-agent/pbx-agent
Description: SIP/RTP sniffer and Asterisk call monitor (VoIPmonitor-compatible)
 pbx-agent runs beside an Asterisk PBX: it sniffs SIP and RTP, follows
 Asterisk through AMI/ARI, stores VoIPmonitor-compatible CDRs in MySQL and
 serves VoIPmonitor's manager API, web APIs and live audio. It discovers
 Asterisk's settings on start and runs as an unprivileged user with
 CAP_NET_RAW; "pbx-agent doctor" checks an installation.
CONTROL

DEB=$OUT/pbx-agent_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >&2
log "built $DEB"
echo "$DEB"

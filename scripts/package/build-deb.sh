#!/usr/bin/env bash
# build-deb.sh — build the pbx-agent Debian package with dpkg-deb (no nfpm,
# no root: --root-owner-group).
#
#   scripts/package/build-deb.sh [OUTDIR]     # default .tmp/deb; prints the .deb path
#
# VERSION (default: from git, else 0.1.0) and GOARCH may be set in the
# environment. On the build machine's own architecture the binary is a
# dynamically linked cgo build (AF_PACKET ring, every codec: spandsp, libgsm,
# libopus, bcg729, libspeex, libavcodec; spandsp and libtiff for faxes), and
# its Depends are computed by dpkg-shlibdeps from the libraries it needs
# (libavcodec, opened on first use, by the package of its library)
# (the -dev packages scripts/deps.sh installs must be there: the build fails
# otherwise rather than leave codecs out). A cross-architecture build
# (GOARCH differs) has no target C libraries: it falls back to a static
# CGO_ENABLED=0 binary (pcapgo capture, G.711 and CN only; every other codec
# plays as silence, `pbx-agent version` lists them) with no library Depends.
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
# dpkg-shlibdeps wants the Debian layout: debian/control and the package's
# files under debian/<package>.
PKG=$STAGE/debian/pbx-agent
install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/usr/lib/systemd/system" "$PKG/etc/pbx-agent" \
	"$PKG/usr/share/doc/pbx-agent" "$PKG/usr/share/man/man8" "$PKG/usr/share/lintian/overrides"
# The maintainer: DEB_MAINTAINER, else the last commit's author.
MAINTAINER=${DEB_MAINTAINER:-$(git -C "$ROOT" log -1 --format='%an <%ae>' 2>/dev/null || true)}
[[ -n $MAINTAINER ]] || { log "set DEB_MAINTAINER='Name <mail>'"; exit 1; }

LDFLAGS="-s -w -X main.version=$VERSION"
BIN=$PKG/usr/bin/pbx-agent
STATIC=
if [[ $GOARCH == "$($GO env GOHOSTARCH)" ]]; then
	command -v dpkg-shlibdeps >/dev/null || { log "dpkg-shlibdeps not found (apt-get install dpkg-dev)"; exit 1; }
	# PIE with full RELRO, as Debian's hardening flags build C programs.
	if ! CGO_ENABLED=1 $GO build -trimpath -buildmode=pie -tags netgo,osusergo \
		-ldflags "$LDFLAGS -linkmode external -extldflags '-Wl,-z,relro -Wl,-z,now'" -o "$BIN" ./agent 2>"$STAGE/cgo.log"; then
		cat "$STAGE/cgo.log" >&2
		log "cgo build failed: install the codec -dev packages (bash scripts/deps.sh)"
		exit 1
	fi
	log "dynamic cgo build (AF_PACKET TPACKET_V3 capture, every codec)"
else
	log "cross build for $GOARCH: CGO_ENABLED=0 static binary (pcapgo capture, G.711 and CN only)"
	CGO_ENABLED=0 GOARCH=$GOARCH $GO build -trimpath -ldflags "$LDFLAGS" -o "$BIN" ./agent
	STATIC=1
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
if [[ -n $STATIC ]]; then
	cat >>"$PKG/usr/share/lintian/overrides/pbx-agent" <<'OVERRIDE'
# Cross-architecture build: a static CGO_ENABLED=0 Go binary (no target C
# libraries to link against); lintian exempts Go binaries only for packages
# built from a source package that build-depends on golang-go.
pbx-agent: statically-linked-binary [usr/bin/pbx-agent]
OVERRIDE
fi
for s in postinst prerm postrm; do
	install -m 0755 "scripts/package/$s" "$PKG/DEBIAN/$s"
done
echo /etc/pbx-agent/pbx-agent.conf >"$PKG/DEBIAN/conffiles"
# gcc's .comment (cgo build) is dead weight in a release binary.
if command -v objcopy >/dev/null; then
	objcopy --remove-section=.comment "$BIN"
fi
(cd "$PKG" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$PKG/DEBIAN/md5sums"
SIZE=$(du -ks "$PKG" | cut -f1)
# The libraries' packages, as Debian computes them: dpkg-shlibdeps reads the
# binary's NEEDED entries and the shlibs/symbols files of the packages that
# ship those libraries (minimum versions from the symbols the binary uses).
DEPENDS="passwd, init-system-helpers (>= 1.52)"
if [[ -z $STATIC ]]; then
	printf 'Source: pbx-agent\n\nPackage: pbx-agent\nArchitecture: any\n' >"$STAGE/debian/control"
	shlibs=$(cd "$STAGE" && dpkg-shlibdeps -O -e debian/pbx-agent/usr/bin/pbx-agent)
	shlibs=${shlibs#shlibs:Depends=}
	[[ -n $shlibs ]] || { log "dpkg-shlibdeps found no libraries"; exit 1; }
	# libavcodec and libavutil (iLBC, G.723.1) are opened on first use
	# (dlopen), not linked, so dpkg-shlibdeps does not see them: the
	# packages of the ones the binary was built against.
	for lib in libavcodec libavutil; do
		so=$(readlink -f "$(${CC:-gcc} -print-file-name=$lib.so)")
		pkg=$(dpkg -S "$so" 2>/dev/null | cut -d: -f1)
		[[ -n $pkg ]] || { log "no package ships $lib ($so)"; exit 1; }
		shlibs="$shlibs, $pkg"
	done
	DEPENDS="$shlibs, $DEPENDS"
	log "Depends: $DEPENDS"
fi
cat >"$PKG/DEBIAN/control" <<CONTROL
Package: pbx-agent
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: $DEPENDS
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

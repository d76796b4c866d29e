#!/usr/bin/env bash
# install.sh — `make install` for hosts without dpkg: the same files and the
# same set-up as the Debian package (user, group asterisk, state directory,
# unit). DESTDIR stages into a directory instead (then no users are created
# and systemd is not touched).
#
#   scripts/package/install.sh [BINARY]     # BINARY default: ./pbx-agent (make build)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-./pbx-agent}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
[[ -x $BIN ]] || { echo "install: $BIN not built (make build)" >&2; exit 1; }

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" "$DESTDIR/etc/pbx-agent" "$DESTDIR$PREFIX/share/doc/pbx-agent"
install -m 0755 "$BIN" "$DESTDIR$PREFIX/bin/pbx-agent"
sed "s|/usr/bin/pbx-agent|$PREFIX/bin/pbx-agent|g" agent/pbx-agent.service >"$DESTDIR$UNITDIR/pbx-agent.service"
chmod 0644 "$DESTDIR$UNITDIR/pbx-agent.service"
install -m 0644 README.md "$DESTDIR$PREFIX/share/doc/pbx-agent/README.md"
# The config is the operator's: never overwrite it (a conffile in the .deb).
if [[ -e $DESTDIR/etc/pbx-agent/pbx-agent.conf ]]; then
	install -m 0640 scripts/package/pbx-agent.conf "$DESTDIR/etc/pbx-agent/pbx-agent.conf.dist"
	echo "install: kept /etc/pbx-agent/pbx-agent.conf; the packaged one is pbx-agent.conf.dist" >&2
else
	install -m 0640 scripts/package/pbx-agent.conf "$DESTDIR/etc/pbx-agent/pbx-agent.conf"
fi
if [[ -z $DESTDIR ]]; then
	[[ $(id -u) -eq 0 ]] || { echo "install: run as root (or set DESTDIR)" >&2; exit 1; }
	sh scripts/package/postinst configure
fi
echo "install: done; check with: $PREFIX/bin/pbx-agent doctor" >&2

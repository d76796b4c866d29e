#!/bin/sh
# Refreshes the chart library the operator's console embeds (uPlot, MIT):
# fetched with npm, checked against the tarball's SHA-256, copied into
# webui/console/assets. The console never loads it from a CDN.
set -eu
VERSION=1.6.32
SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "uplot@$VERSION" >/dev/null
echo "$SHA256  uplot-$VERSION.tgz" | sha256sum -c - >/dev/null
tar xzf "uplot-$VERSION.tgz"
dst="$root/webui/console/assets"
cp package/dist/uPlot.iife.min.js "$dst/uPlot.iife.min.js"
cp package/dist/uPlot.min.css "$dst/uPlot.min.css"
cp package/LICENSE "$dst/uPlot.LICENSE"
echo "uPlot $VERSION in $dst"

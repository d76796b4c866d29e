#!/usr/bin/env bash
# copyright.sh — writes the package's debian/copyright (DEP-5) to stdout:
# pbx-agent itself, then every Go module compiled into the binary (and Go's
# standard library) with the licence text found in the module cache: Go
# links those into the one executable, so it ships their notices. The C
# libraries (codecs, libtiff, libc) are linked dynamically from their own
# Debian packages (the Depends), which carry their own copyright files: the
# binary contains none of their code, so their notices are not repeated here.
#
#   scripts/package/copyright.sh > copyright
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}

# license_name FILE: the SPDX short name of a licence text (best effort; the
# full text follows in the file anyway).
license_name() {
	local head
	head=$(head -c 4000 "$1" | tr '\n' ' ')
	case $head in
	*"Apache License"*) echo Apache-2.0 ;;
	*"Mozilla Public License"*) echo MPL-2.0 ;;
	*"ISC License"*) echo ISC ;;
	*"Permission is hereby granted"*) echo MIT ;;
	*"Neither the name"*) echo BSD-3-Clause ;;
	*"Redistribution and use in source and binary forms"*) echo BSD-2-Clause ;;
	*) echo other ;;
	esac
}

cat <<'HEAD'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pbx-agent
Comment: The paragraphs after the first are the Go modules and the Go
 standard library compiled into the binary, with their licence texts as
 found in each module. The C libraries it uses (spandsp, libgsm, libopus,
 bcg729, libspeex, libavcodec, libtiff, glibc) are linked dynamically from
 the Debian packages in its Depends, whose own copyright files cover them.

Files: *
Copyright: 2026 the pbx-agent authors
License: pbx-agent
 The pbx-agent authors have not published a licence for pbx-agent yet; until
 they do, all rights are reserved by them.
HEAD

emit() { # emit NAME VERSION LICENSE_FILE
	local name=$1 ver=$2 file=$3 short
	short=$(license_name "$file")
	printf '\nFiles: go/%s/*\nCopyright: the %s authors (%s)\nLicense: %s\n' "$name" "$name" "$ver" "$short"
	case $short in
	Apache-2.0 | MPL-2.0) # Debian ships these texts: refer to them (policy 12.5)
		printf ' On Debian systems, the full text of the licence is in\n /usr/share/common-licenses/%s.\n' "$short"
		;;
	*) sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /' "$file" ;;
	esac
}

emit "std" "$($GO env GOVERSION)" "$($GO env GOROOT)/LICENSE"
$GO list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./agent | sort -u |
	while read -r path ver dir; do
		lic=$(find "$dir" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' -o -iname 'COPYING*' \) | sort | head -1)
		if [[ -z $lic ]]; then
			echo "copyright.sh: no licence file in $path $ver" >&2
			exit 1
		fi
		emit "$path" "$ver" "$lic"
	done

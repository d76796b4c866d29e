package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

// writeManPage renders pbx-agent(8) in roff from the help text itself (the
// overview, the daemon's flags and each command's -h), so the manual never
// drifts from the binary. `make deb` installs its output.
func writeManPage(ctx context.Context, w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH PBX-AGENT 8 \"\" \"pbx-agent %s\" \"System Administration\"\n", roffEscape(version))
	b.WriteString(".SH NAME\npbx-agent \\- SIP/RTP and Asterisk AMI call monitor with VoIPmonitor-compatible APIs\n")
	b.WriteString(".SH SYNOPSIS\n.B pbx-agent\n[\\fIflags\\fR]\n.br\n.B pbx-agent\n\\fICOMMAND\\fR [\\fIflags\\fR] [\\fIargs\\fR]\n")
	var daemon bytes.Buffer
	_, _ = parseDaemonFlags([]string{"-h"}, &daemon)
	b.WriteString(".SH DESCRIPTION\n")
	writeRoffBlock(&b, daemon.String())
	for _, c := range commands() {
		if c.name == "help" {
			continue
		}
		var help bytes.Buffer
		_ = c.run(ctx, []string{"-h"}, io.Discard, &help)
		fmt.Fprintf(&b, ".SH %s\n", strings.ToUpper(roffEscape(c.name)))
		writeRoffBlock(&b, help.String())
	}
	b.WriteString(".SH FILES\n.TP\n/etc/pbx-agent/pbx-agent.conf\nthe configuration (voipmonitor.conf syntax and option names)\n")
	b.WriteString(".TP\n/usr/share/doc/pbx-agent/README.md\nthe full documentation\n")
	b.WriteString(".SH EXIT STATUS\n0 success, 1 failure, 2 bad command line.\n")
	b.WriteString(".SH SEE ALSO\n.BR asterisk (8)\n")
	_, err := w.Write(b.Bytes())
	return err
}

// writeRoffBlock prints help text verbatim (no filling), escaped for roff.
func writeRoffBlock(b *bytes.Buffer, text string) {
	b.WriteString(".nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		line = roffEscape(line)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = "\\&" + line
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(".fi\n")
}

func roffEscape(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\e")
	return strings.ReplaceAll(s, "-", "\\-")
}

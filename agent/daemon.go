package main

import (
	"context"
	"flag"
	"io"
)

// defaultCapture is what the agent replays when neither an interface nor a
// capture file is configured (`make run` from a fresh clone).
const defaultCapture = "testdata/pcap/asterisk-call-answered.pcap"

// runDaemon runs the agent: capture (live or -r FILE) and every server the
// config enables, until ctx ends.
func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pbx-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	_ = fs.String("config", "/etc/pbx-agent/pbx-agent.conf", "config file (voipmonitor.conf-style INI)")
	file := fs.String("r", "", "read packets from a pcap/pcapng file instead of an interface")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		*file = defaultCapture
	}
	return runReplay(ctx, []string{*file}, stdout, stderr)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"

	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
)

// runReplay reads capture files and prints one JSON line per finished call
// and per REGISTER summary (CLI.md "Replay JSON").
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ports := fs.String("sipport", "5060", "SIP ports: list and ranges, e.g. 5060,5070-5080")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("replay: no capture file given")}
	}
	ps, err := sniffer.ParsePorts(*ports)
	if err != nil {
		return usageError{err}
	}
	out := newRecordWriter(stdout)
	sn := sniffer.New(sniffer.Config{
		SIPPorts: ps,
		Call: call.Config{
			IdleTimeout: -1, // a file's clock may jump; EOF ends every call
			OnCallEnd:   out.call,
			OnRegister:  out.register,
		},
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	for _, path := range fs.Args() {
		if err := sn.ReplayFile(ctx, path, sniffer.RunOptions{}); err != nil {
			return err
		}
	}
	sn.Flush()
	return out.err
}

// recordWriter prints call and REGISTER records as JSON lines.
type recordWriter struct {
	enc *json.Encoder
	err error
}

func newRecordWriter(w io.Writer) *recordWriter { return &recordWriter{enc: json.NewEncoder(w)} }

func (r *recordWriter) call(c *call.CDR) {
	if r.err == nil {
		r.err = r.enc.Encode(callJSON(c))
	}
}

func (r *recordWriter) register(reg *call.Register) {
	if r.err == nil {
		r.err = r.enc.Encode(registerJSON(reg))
	}
}

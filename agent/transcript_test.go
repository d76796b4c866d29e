package main

import (
	"testing"

	"pbx-agent/agent/demo"
)

// TestDemoTranscriptPhases: before the hang-up the demo's two channels are
// up and tied to the capture's Call-IDs; after it they are gone.
func TestDemoTranscriptPhases(t *testing.T) {
	tr, err := newTranscript(demo.AMI, demo.AMISent)
	if err != nil {
		t.Fatal(err)
	}
	if tr.cut == len(demo.AMI) || tr.cut == 0 {
		t.Fatalf("no Hangup found in the transcript (cut %d of %d)", tr.cut, len(demo.AMI))
	}
	tk, err := tr.begin()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ch := range tk.Channels() {
		got[ch.Name] = ch.CallID
	}
	want := map[string]string{"PJSIP/1001-00000009": "f431e3956bf2ebd6", "PJSIP/1002-0000000a": "63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f"}
	for name, id := range want {
		if got[name] != id {
			t.Errorf("channel %s: Call-ID %q, want %q (all: %v)", name, got[name], id, got)
		}
	}
	if err := tr.finish(tk); err != nil {
		t.Fatal(err)
	}
	if n := len(tk.Channels()); n != 0 {
		t.Errorf("%d channels left after the hang-up", n)
	}
}

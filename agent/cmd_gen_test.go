package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbx-agent/internal/pcaptest"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

func TestRunGen(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.pcap")
	truthPath := filepath.Join(dir, "x.truth.tsv")
	var stdout, stderr bytes.Buffer
	args := []string{"-o", out, "--calls", "3", "--concurrency", "2", "--duration", "1.5", "--codec", "pcma",
		"--loss", "2", "--jitter", "4", "--seed", "9", "-vlan", "42", "-mtu", "400", "-busy", "30",
		"-registers", "2", "-register-auth", "50", "-truth", truthPath}
	if err := runGen(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("runGen: %v (stderr %s)", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "3 calls") {
		t.Errorf("summary %q lacks the call count", stderr.String())
	}
	frames := 0
	for range fixture.Packets(t, pcaptest.Open(t, out).ReadPacketData) {
		frames++
	}
	tf, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	truth, err := simulate.ReadTSV(tf)
	if err != nil {
		t.Fatal(err)
	}
	if len(truth.Calls) != 3 || len(truth.Registers) != 2 {
		t.Errorf("truth has %d calls, %d registers; want 3 and 2", len(truth.Calls), len(truth.Registers))
	}
	rtp := 0
	for _, s := range truth.Streams {
		rtp += s.Received()
		if s.PT != 8 || s.Sent != 75 {
			t.Errorf("stream %+v: want PT 8 and 75 packets sent", s)
		}
	}
	if frames <= rtp {
		t.Errorf("%d frames in the pcap, not more than the %d RTP packets of the truth", frames, rtp)
	}
}

func TestRunGenUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no output", []string{"--calls", "2"}},
		{"bad flag", []string{"-o", "x.pcap", "--nope"}},
		{"bad duration", []string{"-o", "x.pcap", "--duration", "soon"}},
		{"bad codec", []string{"-o", filepath.Join(t.TempDir(), "x.pcap"), "--codec", "amr"}},
		{"bad vlan", []string{"-o", "x.pcap", "--vlan", "5000"}},
		{"positional", []string{"-o", "x.pcap", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ue usageError
			err := runGen(context.Background(), tt.args, io.Discard, io.Discard)
			if !errors.As(err, &ue) {
				t.Errorf("runGen(%q) = %v, want a usageError", tt.args, err)
			}
		})
	}
}

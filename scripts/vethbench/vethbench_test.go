package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/simulate"
)

// TestMain runs the bench's helpers when the test binary is started as
// one (the bench starts itself in the namespace to inject and scrape).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
	}
	os.Exit(m.Run())
}

// TestVethCapture is the short version of the live-capture bench: a
// generated capture injected (built-in injector) into a veth pair in a
// network namespace at 2,000 packets/s for 3 s, pbx-agent capturing the
// other end with the compressed spool on. Every frame sent is captured, no
// kernel or agent drop, and the calls land in the spool as .pcap.gz. Skips
// without root, iproute2 or namespace rights (CI containers).
func TestVethCapture(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veth pairs)")
	}
	if err := probeNamespace(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	agent := filepath.Join(dir, "pbx-agent")
	if out, err := command("go", "build", "-o", agent, "../../agent").CombinedOutput(); err != nil {
		t.Fatalf("build pbx-agent: %v\n%s", err, out)
	}
	pcap := filepath.Join(dir, "calls.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	// 20 calls of 5 s: 20,000 RTP packets, more than the step sends.
	if _, err := simulate.WritePcap(context.Background(), f, simulate.Options{Calls: 20, CPS: 20, Duration: 250 * simulate.Ptime, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The agent's stderr (written by exec's copying goroutine) and the
	// steps' report share one buffer: it must be safe for both.
	var log testkit.SyncBuffer
	res, err := run(context.Background(), benchConfig{agent: agent, file: pcap, injector: "builtin",
		rates: []int{2000}, step: 150 * simulate.Ptime, stderr: &log}, &log)
	if errors.Is(err, ErrNoNamespace) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.steps) != 1 {
		t.Fatalf("%d steps\n%s", len(res.steps), log.String())
	}
	st := res.steps[0]
	if st.sent < 5000 || st.captured != st.sent || st.kernelDrops != 0 || st.agentDrops != 0 || res.best != 2000 {
		t.Fatalf("sent %d, captured %d, kernel drops %d, agent drops %d, best %d\n%s",
			st.sent, st.captured, st.kernelDrops, st.agentDrops, res.best, log.String())
	}
	if st.spoolPackets == 0 || res.files[".pcap.gz"] == 0 || res.files[".pcap"] != 0 {
		t.Fatalf("spool stored %d packets, files %v (want compressed pcaps only)\n%s", st.spoolPackets, res.files, log.String())
	}
	t.Logf("%d frames sent and captured; spool files %v", st.sent, res.files)
}

func TestParsers(t *testing.T) {
	m := parseMetrics(strings.NewReader("# HELP x y\n# TYPE x counter\npbx_a_total 12\npbx_b{k=\"1\"} 2\npbx_b{k=\"2\"} 3.5\nbad\npbx_c notanumber\n"))
	if m["pbx_a_total"] != 12 || m["pbx_b"] != 5.5 || len(m) != 2 {
		t.Errorf("metrics %v", m)
	}
	tcpreplay := "Actual: 200001 packets (43478 bytes) sent in 10.00 seconds\nRated: 4347.8 Bps, 0.034 Mbps, 20000.05 pps\n"
	for _, tt := range []struct {
		inj, out string
		n        uint64
		pps      float64
	}{
		{"tcpreplay", tcpreplay, 200001, 20000.05},
		{"tcpreplay", "garbage", 0, 0},
		{"builtin", "sent 6000\n", 6000, 0},
		{"builtin", "", 0, 0},
	} {
		if n, pps := sentPackets(tt.inj, tt.out); n != tt.n || pps != tt.pps {
			t.Errorf("sentPackets(%s, %q) = %d, %v; want %d, %v", tt.inj, tt.out, n, pps, tt.n, tt.pps)
		}
	}
}

// FuzzParseMetrics: any text parses without a panic into finite sums of
// the names it holds.
func FuzzParseMetrics(f *testing.F) {
	f.Add("pbx_a_total 12\npbx_b{k=\"1\"} 2\n")
	f.Add("# HELP\n{ 1\n 2\nx{ 3")
	f.Fuzz(func(t *testing.T, s string) {
		for k := range parseMetrics(strings.NewReader(s)) {
			if !strings.Contains(s, k) {
				t.Fatalf("name %q not in the input", k)
			}
		}
	})
}

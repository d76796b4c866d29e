package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/hep"
	"pbx-agent/sniffer/hep/heptest"
)

// TestDaemonHEP runs two daemons: A replays the real Asterisk TLS call
// with hep = yes (the HEP inside the capture decoded) and sends HEP over
// TCP to a collector (every packet checked byte by byte); B has no
// interface and listens for HEP on UDP, receiving the datagrams Asterisk
// sent, and sees the TLS leg. /metrics shows both sides' counters.
func TestDaemonHEP(t *testing.T) {
	pcap := fixture.Repo(t, "testdata", "pcap", "asterisk-call-hep-tls.pcap")

	// Collector for A's output.
	var mu sync.Mutex
	var got [][]byte
	coll, err := hep.Listen(hep.ListenConfig{Addr: "127.0.0.1:0", TCP: true, Handler: func(b []byte, _ time.Time) {
		mu.Lock()
		got = append(got, bytes.Clone(b))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopColl := context.WithCancel(context.Background())
	defer stopColl()
	go func() { _ = coll.Serve(cctx) }()

	dir := t.TempDir()
	confA := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(confA, []byte(fmt.Sprintf("[general]\nmanagerport = 0\nhttp_bind =\nspooldir = %s\nasterisk_manager_conf = %s\nhep = yes\nhep_password = hepsecret\nhep_destination = %s\nhep_destination_transport = tcp\nhep_capture_id = 99\nhep_node_name = agent-a\n",
		filepath.Join(dir, "a"), filepath.Join(dir, "none.conf"), coll.TCPAddr())), 0o644); err != nil {
		t.Fatal(err)
	}
	var logA syncBuffer
	if code := run(context.Background(), []string{"-config", confA, "-r", pcap, "--exit-after-replay"}, &bytes.Buffer{}, &logA); code != 0 {
		t.Fatalf("A exit %d; log:\n%s", code, logA.String())
	}
	for _, id := range []string{"callid=3b5a193e80f4d691", "callid=a588a11b-2f9b-4179-924e-64e8d496c28c"} {
		if strings.Count(logA.String(), id) != 1 {
			t.Errorf("A: %s logged %d times, want once; log:\n%s", id, strings.Count(logA.String(), id), logA.String())
		}
	}
	// The TLS leg's per-call SIP pcap holds its 10 messages in synthetic
	// IP/UDP frames that tshark dissects as SIP.
	sipPcaps, _ := filepath.Glob(filepath.Join(dir, "a", "*", "*", "*", "SIP", "3b5a193e80f4d691*"))
	if len(sipPcaps) != 1 {
		t.Errorf("A's spool: SIP pcaps of the TLS leg %v, want 1", sipPcaps)
	} else if bin, err := exec.LookPath("tshark"); err == nil {
		out, err := exec.Command(bin, "-n", "-r", sipPcaps[0], "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID").Output()
		if n := strings.Count(string(out), "3b5a193e80f4d691\n"); err != nil || n != 10 {
			t.Errorf("tshark on %s: %v, %d SIP messages of the TLS leg, want 10:\n%s", sipPcaps[0], err, n, out)
		}
	}
	// The collector reads A's connection on its own: wait for every kind
	// (the RTCP reports, of which there are many, may come before the last
	// SIP messages).
	var kinds map[uint8]int
	count := func(check bool) {
		mu.Lock()
		defer mu.Unlock()
		kinds = map[uint8]int{}
		var p hep.Packet
		for i, b := range got {
			if check {
				if err := heptest.Check(b); err != nil {
					t.Errorf("A's packet %d: %v", i, err)
				}
			}
			if err := p.Unmarshal(b); check && (err != nil || p.CaptureID != 99 || string(p.NodeName) != "agent-a") {
				t.Errorf("A's packet %d: %v capture id %d node %q", i, err, p.CaptureID, p.NodeName)
			}
			kinds[p.ProtoType]++
		}
	}
	deadline := time.Now().Add(30 * time.Second) // all arrive within milliseconds; a starved machine needs longer
	for count(false); time.Now().Before(deadline) && (kinds[hep.ProtoSIP] < 32 || kinds[hep.ProtoQoSReport] < 4); count(false) {
		time.Sleep(10 * time.Millisecond)
	}
	count(true)
	if kinds[hep.ProtoSIP] != 32 || kinds[hep.ProtoQoSReport] != 4 || kinds[hep.ProtoRTCPJSON] == 0 {
		t.Errorf("A sent %v, want 32 SIP, RTCP and 4 stream reports", kinds)
	}

	// B: HEP input only.
	hepPort, httpPort := freeUDPPort(t), testkit.FreePort(t)
	confB := filepath.Join(dir, "b.conf")
	if err := os.WriteFile(confB, []byte(fmt.Sprintf("[general]\nmanagerport = 0\nhttp_bind = 127.0.0.1:%d\napi_disable_auth = yes\nspooldir = %s\nasterisk_manager_conf = %s\nhep = yes\nhep_bind_port = %d\nhep_password = hepsecret\n",
		httpPort, filepath.Join(dir, "b"), filepath.Join(dir, "none.conf"), hepPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logB syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-config", confB}, &bytes.Buffer{}, &logB) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base+"/metrics", 200)
	ds, err := heptest.ReadUDP(pcap, 9060)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", hepPort))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if _, err := c.Write(d.Payload); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	_, _ = c.Write([]byte("HEP3\x00\x20garbage")) // counted, dropped
	c.Close()
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		metrics = httpGet(t, base+"/metrics")
		if strings.Contains(metrics, "pbx_hep_input_packets_total 40") && strings.Contains(metrics, "pbx_hep_input_errors_total 1") {
			break
		}
	}
	for _, m := range []string{"pbx_hep_input_packets_total 40", "pbx_hep_input_errors_total 1", "pbx_hep_input_datagrams_total 41", "pbx_hep_input_auth_failed_total 0"} {
		if !strings.Contains(metrics, m+"\n") {
			t.Errorf("B /metrics lacks %q:\n%s", m, grepLines(metrics, "pbx_hep"))
		}
	}
	stopDaemon(t, cancel, done, &logB)
	if !strings.Contains(logB.String(), "callid=3b5a193e80f4d691") {
		t.Errorf("B did not log the TLS leg; log:\n%s", logB.String())
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		p := testkit.FreePort(t)
		if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			c.Close()
			return p
		}
	}
	t.Fatal("no free port for UDP and TCP")
	return 0
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"pbx-agent/agent/manager/client"
	"pbx-agent/internal/pcaptest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/fixture"
)

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

// syncBuffer is a buffer safe for a logger and the test at once.
type syncBuffer = testkit.SyncBuffer

// TestDaemonRealtimeReplay runs the daemon on a capture at its recorded pace
// and asks the manager API, over a real socket, for the active calls while
// the file plays; SIGTERM-like cancellation then ends it cleanly.
func TestDaemonRealtimeReplay(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "pbx-agent.conf")
	port, httpPort := testkit.FreePort(t), testkit.FreePort(t)
	sock := filepath.Join(dir, "manager.sock")
	cfgText := fmt.Sprintf("[general]\nsipport = 5060\nspooldir = %s\nmanagerip = 127.0.0.1\nmanagerport = %d\nmanagersocket = %s\nhttp_bind = 127.0.0.1:%d\napi_disable_auth = yes\nasterisk_manager_conf = %s\n",
		filepath.Join(dir, "spool"), port, sock, httpPort, filepath.Join(dir, "none.conf"))
	if err := os.WriteFile(conf, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	pcap := fixture.Repo(t, "testdata", "pcap", "gensip-vlan42-frag400.pcap")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-config", conf, "-r", pcap, "--realtime"}, &bytes.Buffer{}, &stderr)
	}()

	// The capture lasts ~4 s: poll listcalls until both calls are active.
	var rows [][]any
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		reply, err := client.Exchange(rctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port), "listcalls", nil)
		rcancel()
		if err == nil && len(reply) > 0 {
			rows = nil
			if err := json.Unmarshal(reply, &rows); err != nil {
				t.Fatalf("listcalls reply is not JSON: %v: %q", err, reply)
			}
			if len(rows) == 3 { // header + 2 calls
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rows) != 3 {
		t.Fatalf("listcalls never showed 2 active calls; last reply rows %d; log:\n%s", len(rows), stderr.String())
	}
	if rows[0][0] != "callreference" || !strings.HasPrefix(fmt.Sprint(rows[1][1]), "gensip-") {
		t.Errorf("unexpected listcalls rows: %v / %v", rows[0][:3], rows[1][:3])
	}
	// The web API and /metrics see the same calls.
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if body := httpGet(t, base+"/php/api.php?task=listActiveCalls"); !strings.Contains(body, "gensip-") {
		t.Errorf("listActiveCalls: %s", body)
	}
	body := httpGet(t, base+"/metrics")
	if !strings.Contains(body, "pbx_calls_active 2") || !strings.Contains(body, "pbx_build_info") {
		t.Errorf("/metrics lacks the active calls gauge:\n%.2000s", body)
	}
	// Every component's own series (tap and the database writer need
	// Asterisk and MySQL: their Register is tested in their packages).
	for _, series := range []string{"pbx_sniffer_frames_total", "pbx_decoder_fragments_total", "pbx_calls_started_total",
		"pbx_spool_files_total", "pbx_manager_commands_total", "pbx_manager_sources_evicted_total", "pbx_player_listeners ",
		"pbx_http_requests_total{", "pbx_web_login_keys_evicted_total"} {
		if !strings.Contains(body, "\n"+series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if body := httpGet(t, base+"/api/chunkplayer/index.html"); !strings.Contains(strings.ToLower(body), "callref") {
		t.Errorf("player page lacks the callref field:\n%.500s", body)
	}
	// VoIPmonitor's live listening: listen, then readaudio returns PCM (or
	// asks to wait) for a call being replayed.
	ref := fmt.Sprint(rows[1][0])
	mgr := fmt.Sprintf("127.0.0.1:%d", port)
	if reply, err := client.Exchange(ctx, "tcp", mgr, "listen "+ref+" t1", nil); err != nil || !strings.Contains(string(reply), "success") {
		t.Errorf("listen %s: %v %q", ref, err, reply)
	}
	time.Sleep(300 * time.Millisecond)
	if reply, err := client.Exchange(ctx, "tcp", mgr, "readaudio "+ref+" t1", nil); err != nil || len(reply) == 0 || strings.HasPrefix(string(reply), "error") {
		t.Errorf("readaudio %s: %v %.80q", ref, err, reply)
	}
	// The unix socket answers the same command.
	reply, err := client.Exchange(ctx, "unix", sock, "listcalls", nil)
	if err != nil || !bytes.HasPrefix(reply, []byte(`[["callreference"`)) {
		t.Errorf("unix socket listcalls: %v %q", err, reply)
	}
	stopDaemon(t, cancel, done, &stderr)
	if log := stderr.String(); !strings.Contains(log, "pbx-agent stopped") {
		t.Errorf("no clean stop in the log:\n%s", log)
	}
}

// stopDaemon cancels a daemon run in a goroutine (its exit code comes on
// done) and fails the test unless it stops cleanly within 30 s.
// startDaemon runs the daemon with args until the test ends (then it must
// stop cleanly); it returns the daemon's log.
func startDaemon(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, log) }()
	t.Cleanup(func() { stopDaemon(t, cancel, done, log) })
	return log
}

func stopDaemon(t *testing.T, cancel context.CancelFunc, done <-chan int, log *syncBuffer) {
	t.Helper()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("daemon exit %d; log:\n%s", code, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop after cancellation")
	}
}

// TestDaemonExitAfterReplay: -r FILE --exit-after-replay reads the file,
// closes every call and exits 0 on its own.
func TestDaemonExitAfterReplay(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte("[general]\nmanagerport = 0\nhttp_bind =\nspooldir = "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	code := run(context.Background(), []string{"-config", conf, "-r", fixture.Repo(t, "testdata", "pcap", "asterisk-call-busy.pcap"), "--exit-after-replay"}, &bytes.Buffer{}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "msg=call "); n != 2 {
		t.Errorf("%d calls logged, want 2; log:\n%s", n, stderr.String())
	}
	// savesip and pcap_dump_zip are on by default: each call's SIP pcap is
	// in the spool, complete and compressed.
	sipFiles, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", "SIP", "*.pcap.gz"))
	tmp, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", "*", "*.tmp"))
	if len(sipFiles) != 2 || len(tmp) != 0 {
		t.Errorf("spool: SIP pcaps %v, unfinished %v", sipFiles, tmp)
	}
}

func TestDaemonBadConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(conf, []byte("[general]\nmanagerport = banana\nnot_a_key = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "-config", conf)
	if code == 0 || !strings.Contains(stderr, "bad.conf:2") || !strings.Contains(stderr, "bad.conf:3") {
		t.Errorf("exit %d, stderr %q: want file:line for both problems", code, stderr)
	}
	code, _, stderr = runCLI(t, "check-config", "-config", conf)
	if code == 0 || !strings.Contains(stderr, "bad.conf:2") {
		t.Errorf("check-config: exit %d, stderr %q", code, stderr)
	}
}

// TestDaemonSaveRTCP: savertcp decides whether RTCP goes into the call's
// RTP pcap; absent, it follows savertp (it was tied to savertp whatever the
// key said).
func TestDaemonSaveRTCP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		conf      string
		rtp, rtcp int // packets in the calls' RTP pcaps
	}{
		{"default", "", 1, 8},
		{"savertcp = no", "savertcp = no\n", 1, 0},
		{"savertp = no, savertcp = yes", "savertp = no\nsavertcp = yes\n", 0, 8},
		{"savertp = no", "savertp = no\n", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "c.conf")
			if err := os.WriteFile(conf, []byte("[general]\nmanagerport = 0\nhttp_bind =\nspooldir = "+dir+"\n"+tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			var stderr syncBuffer
			in := fixture.Repo(t, "testdata", "pcap", "asterisk-call-answered.pcap")
			if code := run(context.Background(), []string{"-config", conf, "-r", in, "--exit-after-replay"}, &bytes.Buffer{}, &stderr); code != 0 {
				t.Fatalf("exit %d; log:\n%s", code, stderr.String())
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*", "RTP", "*.pcap*"))
			rtp, rtcp := 0, 0
			for _, f := range files {
				r := pcaptest.Open(t, f)
				for {
					data, _, err := r.ReadPacketData()
					if err != nil {
						break
					}
					p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
					if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && len(u.Payload) > 1 {
						if pt := u.Payload[1]; pt >= 200 && pt <= 204 {
							rtcp++
						} else {
							rtp++
						}
					}
				}
			}
			if min(rtp, 1) != tc.rtp || rtcp != tc.rtcp {
				t.Errorf("RTP pcaps %v: %d RTP, %d RTCP packets; want RTP %v, %d RTCP", files, rtp, rtcp, tc.rtp > 0, tc.rtcp)
			}
		})
	}
}

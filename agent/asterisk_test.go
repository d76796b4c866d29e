package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbx-agent/agent/config"
	"pbx-agent/agent/tap"
	"pbx-agent/ami"
	"pbx-agent/ami/amitest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/fixture"
)

// TestDaemonAMIMetrics pins issue 16 items 7 and 9 through the daemon: a
// wrong ami_secret shows on /metrics as pbx_ami_up 0 with the refused login
// counted; ami_auth = md5 logs in with Challenge/MD5 against a manager that
// refuses a plain Secret, and shows as up.
func TestDaemonAMIMetrics(t *testing.T) {
	tests := []struct {
		name, secret, auth string
		want               []string
	}{
		{"wrong secret", "wrong", "", []string{"pbx_ami_up 0", "pbx_ami_auth_failures_total 1", "pbx_ami_connects_total 0"}},
		{"md5 login", "monpass", "md5", []string{"pbx_ami_up 1", "pbx_ami_auth_failures_total 0", "pbx_ami_connects_total 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answers := amitest.NewAnswers()
			answers.AddFile(t, "CoreShowChannels", "", "", fixture.Repo(t, "testdata", "ami", "ami-coreshowchannels-empty.raw"))
			s := &amitest.Server{Users: map[string]string{"monitor": "monpass"}, RefusePlain: tc.auth == "md5", Answers: answers}
			s.Start(t)
			_, amiPort, _ := strings.Cut(s.Addr(), ":")
			dir := t.TempDir()
			conf := filepath.Join(dir, "pbx-agent.conf")
			httpPort := testkit.FreePort(t)
			text := fmt.Sprintf("[general]\nmanagerport = 0\nspooldir = %s\nhttp_bind = 127.0.0.1:%d\napi_disable_auth = yes\nami_host = 127.0.0.1\nami_port = %s\nami_user = monitor\nami_secret = %s\n",
				filepath.Join(dir, "spool"), httpPort, amiPort, tc.secret)
			if tc.auth != "" {
				text += "ami_auth = " + tc.auth + "\n"
			}
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var stderr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"-config", conf, "-r", fixture.Repo(t, "testdata", "pcap", "asterisk-call-busy.pcap")}, &bytes.Buffer{}, &stderr)
			}()
			defer func() {
				cancel()
				<-done
			}()
			url := fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)
			var body string
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if body = tryGet(url); strings.Contains(body, tc.want[1]) && strings.Contains(body, tc.want[2]) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w+"\n") {
					t.Errorf("/metrics lacks %q; log:\n%s\nmetrics:\n%s", w, stderr.String(), grepLines(body, "pbx_ami_"))
				}
			}
		})
	}
}

// TestTapIsStereo pins issue 16 item 4: the daemon's ARI tap taps each
// direction on its own (caller left, callee right), and the callee-side
// channel of a Dial (linked to the caller's) is marked Outbound so its
// incoming audio goes right.
func TestTapIsStereo(t *testing.T) {
	d := &daemon{cfg: config.Default(), sn: sniffer.New(sniffer.Config{})}
	if !d.tapConfig().Split {
		t.Error("the ARI tap mixes both parties into the left channel (Split off)")
	}
	chs := []ami.Channel{
		{Uniqueid: "1795560337.9", Linkedid: "1795560337.9", CallID: "f431e3956bf2ebd6"},
		{Uniqueid: "1795560337.10", Linkedid: "1795560337.9", CallID: "63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f"},
	}
	tests := []struct {
		callID string
		want   tap.Target
		ok     bool
	}{
		{"f431e3956bf2ebd6", tap.Target{Channel: "1795560337.9"}, true},
		{"63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f", tap.Target{Channel: "1795560337.10", Outbound: true}, true},
		{"other", tap.Target{}, false},
	}
	for _, tc := range tests {
		if got, ok := channelTarget(chs, tc.callID); got != tc.want || ok != tc.ok {
			t.Errorf("%s: %+v %v, want %+v %v", tc.callID, got, ok, tc.want, tc.ok)
		}
	}
}

// tryGet returns the body of a GET, "" on any error (the server may not be up yet).
func tryGet(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

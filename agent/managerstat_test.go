package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"pbx-agent/agent/manager"
	"pbx-agent/agent/manager/client"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
)

// TestSnifferStatDrops: sniffer_stat's pbCountPacketDrop is the live
// capture's real kernel drops. A tiny AF_PACKET ring on lo is not read
// while a burst of UDP datagrams goes through it; the kernel drops what
// does not fit, and the manager reports that count. Needs CAP_NET_RAW.
func TestSnifferStatDrops(t *testing.T) {
	src, err := capture.OpenLive(capture.LiveOptions{Interface: "lo", Filter: capture.UDPPortFilter(), BlockSize: 1 << 16, NumBlocks: 2})
	if err != nil {
		t.Skipf("live capture on lo not permitted here (%v); needs CAP_NET_RAW", err)
	}
	defer src.Close()
	conn := testkit.LoopbackUDP(t)
	payload := make([]byte, 1200)
	for range 2000 { // ~2.4 MB through a 128 KiB ring nobody reads yet
		_, _ = conn.Write(payload)
	}

	d := &daemon{sn: sniffer.New(sniffer.Config{})}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := d.sn.Run(ctx, src, sniffer.RunOptions{}); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	drops := d.sn.Stats().KernelDrops
	if drops == 0 {
		t.Fatalf("no kernel drops after a burst through a 128 KiB ring: %+v", d.sn.Stats())
	}

	srv := manager.New(manager.Config{Addr: "127.0.0.1:0", Stats: d.managerStats})
	srv.SetReady(true)
	testkit.Run(t, srv.ListenAndServe)
	for deadline := time.Now().Add(30 * time.Second); srv.Addr() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("manager not bound")
		}
	}
	reply, err := client.Exchange(context.Background(), "tcp", srv.Addr().String(), "sniffer_stat", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(reply, &st); err != nil {
		t.Fatalf("sniffer_stat: %v: %s", err, reply)
	}
	if got := st["pbCountPacketDrop"]; got != strconv.FormatUint(drops, 10) {
		t.Errorf("pbCountPacketDrop = %v, want %d (the capture's kernel drops)", got, drops)
	}
}

// TestManagerReload: the manager's `reload` re-reads the web API users, as
// SIGHUP does (it used to answer "reload ok" and reload nothing).
func TestManagerReload(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.conf")
	if err := os.WriteFile(users, []byte("[alice]\nsecret = alicepw\nread = call\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "pbx-agent.conf")
	port, httpPort := testkit.FreePort(t), testkit.FreePort(t)
	cfgText := fmt.Sprintf("[general]\nspooldir = %s\nmanagerip = 127.0.0.1\nmanagerport = %d\nhttp_bind = 127.0.0.1:%d\nusers_file = %s\nasterisk_manager_conf = %s\n",
		filepath.Join(dir, "spool"), port, httpPort, users, filepath.Join(dir, "none.conf"))
	if err := os.WriteFile(conf, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := startDaemon(t, "-config", conf, "-r", fixture.Repo(t, "testdata", "pcap", "asterisk-call-busy.pcap"))
	status := func(user, pw string) int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/php/api.php?task=listActiveCalls&user=%s&password=%s", httpPort, user, pw))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(15 * time.Second); status("alice", "alicepw") != http.StatusOK; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("web API never answered alice; log:\n%s", stderr.String())
		}
	}
	if code := status("bob", "bobpw"); code == http.StatusOK {
		t.Fatalf("bob let in before he exists")
	}
	if err := os.WriteFile(users, []byte("[alice]\nsecret = alicepw\nread = call\n[bob]\nsecret = bobpw\nread = call\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reply, err := client.Exchange(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", port), "reload", nil)
	if err != nil || string(reply) != "reload ok" {
		t.Fatalf("reload: %v %q", err, reply)
	}
	if code := status("bob", "bobpw"); code != http.StatusOK {
		t.Errorf("bob after reload: HTTP %d, want 200", code)
	}
}

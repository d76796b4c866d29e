package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"pbx-agent/agent/manager"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
)

// TestListcallsOfReplayedCapture feeds the answered Asterisk call up to the
// middle of its conversation, then asks the real manager server for
// listcalls over TCP with a bare client (written from the spec: one request
// ending in CRLF CRLF, the reply is everything until the server closes) and
// checks every row against what the capture holds.
func TestListcallsOfReplayedCapture(t *testing.T) {
	ports, _ := sniffer.ParsePorts("5060")
	sn := sniffer.New(sniffer.Config{SIPPorts: ports, Call: call.Config{IdleTimeout: -1}})
	src, err := capture.OpenFile(fixture.Repo(t, "testdata", "pcap", "asterisk-call-answered.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	stop := time.Date(2026, 11, 24, 22, 45, 45, 0, time.UTC) // talk runs 22:45:40.46 → 49.46
	for data, ci := range fixture.Packets(t, src.ReadPacket) {
		if ci.Timestamp.After(stop) {
			break
		}
		if err := sn.HandleFrame(src.LinkType(), data, ci.Timestamp); err != nil {
			t.Fatal(err)
		}
	}
	srv := manager.New(manager.Config{Calls: managerCalls{sn: sn}, SensorID: 7, Location: time.UTC})
	srv.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("listcalls\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	if err := json.Unmarshal(reply, &rows); err != nil {
		t.Fatalf("reply is not VoIPmonitor's JSON array: %v: %.300q", err, reply)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want header + 2 active calls", len(rows))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name.(string)] = i
	}
	want := map[string]struct{ caller, called string }{
		"f431e3956bf2ebd6":                     {"1001", "1002"},
		"63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f": {"1001", "1002-0x559bc0765b70"},
	}
	for _, r := range rows[1:] {
		get := func(name string) any {
			i, ok := col[name]
			if !ok {
				t.Fatalf("listcalls has no %q column", name)
			}
			return r[i]
		}
		id, _ := get("callid").(string)
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected call %q", id)
			continue
		}
		if ref, _ := get("callreference").(string); !strings.HasPrefix(ref, "0x") {
			t.Errorf("%s: callreference %v, want 0x… hex", id, get("callreference"))
		}
		if get("caller") != w.caller || get("called") != w.called {
			t.Errorf("%s: caller %v called %v, want %s %s", id, get("caller"), get("called"), w.caller, w.called)
		}
		// 127.0.0.1 as VoIPmonitor's unsigned integer.
		if get("callerip") != 2130706433.0 || get("calledip") != 2130706433.0 {
			t.Errorf("%s: callerip %v calledip %v, want 2130706433", id, get("callerip"), get("calledip"))
		}
		if get("lastSIPresponseNum") != 200.0 || get("callercodec") != 0.0 || get("calledcodec") != 0.0 {
			t.Errorf("%s: last %v codecs %v/%v, want 200 and PCMU (0)", id, get("lastSIPresponseNum"), get("callercodec"), get("calledcodec"))
		}
		// ~4.5 s of talk at 50 packets/s each way, no loss, MOS 4.5 (45).
		for _, side := range []string{"src", "dst"} {
			rec, _ := get(side + "_received").(float64)
			if rec < 200 || rec > 260 || get(side+"_loss_abs") != 0.0 || get(side+"_mosf1") != 45.0 {
				t.Errorf("%s: %s received %v loss %v mos %v", id, side, get(side+"_received"), get(side+"_loss_abs"), get(side+"_mosf1"))
			}
			if j, _ := get(side + "_jitter_max").(float64); j <= 0 || j > 10 {
				t.Errorf("%s: %s jitter max %v ms", id, side, get(side+"_jitter_max"))
			}
		}
		t.Logf("%s: src received %v dst received %v jitter max %v/%v", id, get("src_received"), get("dst_received"), get("src_jitter_max"), get("dst_jitter_max"))
		if get("id_sensor") != 7.0 {
			t.Errorf("%s: id_sensor %v", id, get("id_sensor"))
		}
	}
}

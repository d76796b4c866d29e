package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"pbx-agent/sniffer/fixture"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestReplayCommand(t *testing.T) {
	pcap := fixture.Repo(t, "testdata", "pcap", "asterisk-call-answered.pcap")
	transcript := fixture.Repo(t, "testdata", "ami", "ami-call-answered.raw")
	hepPcap := fixture.Repo(t, "testdata", "pcap", "asterisk-call-hep-tls.pcap")
	hepAMI := fixture.Repo(t, "testdata", "ami", "ami-call-hep-tls.raw")
	faxPcap := fixture.Repo(t, "testdata", "pcap", "asterisk-fax-g711.pcap")
	noFaxTones := func(t *testing.T, calls []map[string]any) {
		for _, c := range calls {
			if _, ok := c["fax_tones"]; ok {
				t.Errorf("%v: fax_tones = %v", c["callid"], c["fax_tones"])
			}
		}
	}
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantCalls int
		wantRegs  int
		check     func(t *testing.T, calls []map[string]any)
	}{
		{name: "calls and registers", args: []string{"replay", "--sipport", "5060,5070", pcap}, wantCalls: 2, wantRegs: 4,
			check: func(t *testing.T, calls []map[string]any) {
				c := calls[0]
				if c["callid"] != "f431e3956bf2ebd6" || c["caller"] != "1001" || c["called"] != "1002" || c["lastSIPresponseNum"] != 200.0 || c["bye"] != 3.0 {
					t.Errorf("first call: %v", c)
				}
				if c["a_received"] != 451.0 || c["b_received"] != 450.0 || c["a_mos_f1"] != 4.5 || c["calldate"] != "2026-11-24 22:45:37.442" {
					t.Errorf("RTP/time fields: a_received %v b_received %v mos %v calldate %v", c["a_received"], c["b_received"], c["a_mos_f1"], c["calldate"])
				}
			}},
		{name: "with AMI correlation", args: []string{"replay", "--sipport", "5060", "--ami", transcript, pcap}, wantCalls: 2, wantRegs: 4,
			check: func(t *testing.T, calls []map[string]any) {
				for _, c := range calls {
					a, ok := c["asterisk"].(map[string]any)
					if !ok || a["linkedid"] != "1795560337.9" || a["match"] != "callid" {
						t.Errorf("%v: asterisk = %v", c["callid"], c["asterisk"])
					}
				}
			}},
		// The real Asterisk TLS call: without --hep only the UDP leg; with
		// --hep both legs, each correlated to its Asterisk channel.
		{name: "TLS call without HEP", args: []string{"replay", hepPcap}, wantCalls: 1, wantRegs: 2,
			check: func(t *testing.T, calls []map[string]any) {
				if calls[0]["callid"] != "a588a11b-2f9b-4179-924e-64e8d496c28c" {
					t.Errorf("call %v, want the UDP leg", calls[0]["callid"])
				}
			}},
		{name: "TLS call with HEP and AMI", args: []string{"replay", "--hep", "--hep-password", "hepsecret", "--ami", hepAMI, hepPcap}, wantCalls: 2, wantRegs: 4,
			check: func(t *testing.T, calls []map[string]any) {
				want := map[string]string{"3b5a193e80f4d691": "PJSIP/1001-00000000", "a588a11b-2f9b-4179-924e-64e8d496c28c": "PJSIP/1002-00000001"}
				for _, c := range calls {
					a, _ := c["asterisk"].(map[string]any)
					chans, _ := a["channels"].([]any)
					if len(chans) != 1 || chans[0].(map[string]any)["name"] != want[c["callid"].(string)] || a["linkedid"] != "1796603508.0" {
						t.Errorf("%v: asterisk = %v", c["callid"], c["asterisk"])
					}
					if c["a_received"] == nil || c["b_received"] == nil {
						t.Errorf("%v: no RTP", c["callid"])
					}
				}
			}},
		// faxdetect: the real T.30-over-PCMU fax call is marked, an
		// ordinary call is not; without the flag neither is.
		{name: "fax with faxdetect", args: []string{"replay", "--faxdetect", faxPcap}, wantCalls: 1,
			check: func(t *testing.T, calls []map[string]any) {
				if calls[0]["fax_tones"] != true {
					t.Errorf("fax_tones = %v, want true", calls[0]["fax_tones"])
				}
			}},
		{name: "fax without faxdetect", args: []string{"replay", faxPcap}, wantCalls: 1, check: noFaxTones},
		{name: "voice with faxdetect", args: []string{"replay", "--faxdetect", "--sipport", "5060,5070", pcap}, wantCalls: 2, wantRegs: 4, check: noFaxTones},
		{name: "TLS call with HEP, wrong password", args: []string{"replay", "--hep", "--hep-password", "nope", hepPcap}, wantCalls: 1, wantRegs: 2},
		{name: "no file", args: []string{"replay"}, wantCode: 2},
		{name: "bad ports", args: []string{"replay", "--sipport", "0", pcap}, wantCode: 2},
		{name: "missing file", args: []string{"replay", "/nonexistent.pcap"}, wantCode: 1},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut)
			}
			if tt.wantCode != 0 {
				if errOut == "" {
					t.Error("no error message")
				}
				return
			}
			var calls []map[string]any
			regs := 0
			for _, r := range jsonLines(t, out) {
				switch r["type"] {
				case "call":
					calls = append(calls, r)
				case "register":
					regs++
				}
			}
			if len(calls) != tt.wantCalls || regs != tt.wantRegs {
				t.Fatalf("%d calls, %d registers; want %d, %d", len(calls), regs, tt.wantCalls, tt.wantRegs)
			}
			if tt.check != nil {
				tt.check(t, calls)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "pbx-agent ") || !strings.Contains(out, "\ndecodes: PCMU PCMA ") || !strings.Contains(out, "\nsilent: ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

package sensors

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"pbx-agent/agent/manager/client"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
)

func TestParseListCalls(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []call.Summary
		wantErr error
	}{
		{"header only", `[["callreference","callid"]]`, []call.Summary{}, nil},
		{"summary skipped", `[["callreference","callid"],[{"total":0,"is_receiver":0}]]`, []call.Summary{}, nil},
		{"one call", `[["callreference","callid","calldate_num","connect_duration","callerip","calledip","lastSIPresponseNum","id_sensor","caller"],` +
			`["0x7f01","a@b",1700000000,12,167772161,"2001:db8::1",200,3,"1001",null,null]]`,
			[]call.Summary{{Sensor: 3, Ref: 0x7f01, CallID: "a@b", CallDate: time.Unix(1700000000, 0), ConnectDuration: 12 * time.Second,
				Connected: true, CallerIP: netip.MustParseAddr("10.0.0.1"), CalledIP: netip.MustParseAddr("2001:db8::1"),
				LastSIPResponseNum: 200, Caller: "1001"}}, nil},
		{"id_sensor -1 takes the asked sensor", `[["callreference","id_sensor","lastSIPresponseNum"],["0x1",-1,180]]`,
			[]call.Summary{{Sensor: 9, Ref: 1, LastSIPResponseNum: 180}}, nil},
		{"not json", `need aes!`, nil, ErrBadReply},
		{"empty array", `[]`, nil, ErrBadReply},
		{"no callreference column", `[["callid"],["x"]]`, nil, ErrBadReply},
		{"bad reference", `[["callreference"],["zz"]]`, nil, ErrBadReply},
		{"row not an array", `[["callreference"],7]`, nil, ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseListCalls([]byte(tt.in), 9)
			if testkit.WantErr(t, err, tt.wantErr) {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d calls, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("call %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestListCallsRoundTrip: what a real manager.Server writes parses back to
// the calls it was given.
func TestListCallsRoundTrip(t *testing.T) {
	now := time.Now()
	calls := genCalls(2, 50, now)
	s := startSensor(t, 2, calls, nil)
	b, err := client.Exchange(context.Background(), "tcp", s.addr, "listcalls", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseListCalls(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(calls) {
		t.Fatalf("%d calls, want %d", len(got), len(calls))
	}
	byRef := map[uint64]call.Summary{}
	for _, c := range got {
		byRef[c.Ref] = c
	}
	for _, c := range calls {
		g, ok := byRef[c.CallRef]
		if !ok {
			t.Fatalf("call 0x%x missing", c.CallRef)
		}
		if g.CallID != c.CallID || !g.CallDate.Equal(c.CallDate) || g.Caller != c.Caller || g.Called != c.Called ||
			g.CallerIP != c.CallerIP || g.CalledIP != c.CalledIP || g.CallerUA != c.CallerUA || g.CallerName != c.CallerName ||
			g.LastSIPResponseNum != c.LastSIPResponseNum || g.Sensor != 2 || g.Connected != !c.ConnectTime.IsZero() {
			t.Errorf("call 0x%x:\n got %+v\nfrom %+v", c.CallRef, g, c)
		}
	}
}

// TestParseVoIPmonitorListCalls parses the reply recorded from a real
// VoIPmonitor sniffer: a front end may list a VoIPmonitor sensor's calls too.
func TestParseVoIPmonitorListCalls(t *testing.T) {
	b, err := os.ReadFile(fixture.Shared(t, "voipmonitor-ref", "manager", "plain", "listcalls.raw"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseListCalls(b, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatal("no calls parsed")
	}
	for _, c := range got {
		if c.Ref == 0 || c.CallID == "" || c.CallDate.IsZero() || !c.CallerIP.IsValid() {
			t.Errorf("incomplete call %+v", c)
		}
	}
}

func FuzzParseListCalls(f *testing.F) {
	f.Add([]byte(`[["callreference","callid","callerip"],["0x7f01","a",167772161]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		calls, err := ParseListCalls(b, 1)
		if err == nil && calls == nil {
			t.Fatal("nil calls without error")
		}
	})
}

func BenchmarkParseListCalls1000(b *testing.B) {
	s := startSensor(b, 1, genCalls(1, 1000, time.Now()), nil)
	reply, err := client.Exchange(context.Background(), "tcp", s.addr, "listcalls", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(reply)))
	for b.Loop() {
		if _, err := ParseListCalls(reply, 1); err != nil {
			b.Fatal(err)
		}
	}
}

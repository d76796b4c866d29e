package call

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

// inDialog is the i-th message of an in-dialog storm on call c1.
func inDialog(kind string, i int) (string, bool) {
	first, method, ctype, body := "INVITE sip:200@pbx.example SIP/2.0", "INVITE", "application/sdp", ""
	switch kind {
	case "reinvite": // 8 m= lines, every port new
		var b strings.Builder
		b.WriteString("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n")
		for j := range 8 {
			fmt.Fprintf(&b, "m=audio %d RTP/AVP 0\r\n", 1024+i*16+2*j)
		}
		body = b.String()
	case "hold": // on hold, off hold, ...
		dir := []string{"sendonly", "sendrecv"}[i%2]
		body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=" + dir + "\r\n"
	case "info":
		first, method, ctype, body = "INFO sip:200@pbx.example SIP/2.0", "INFO", "application/dtmf-relay", "Signal=5\r\n"
	case "responses": // a new reason phrase each time
		first, method, ctype = fmt.Sprintf("SIP/2.0 200 OK %d", i), "OPTIONS", ""
	}
	s := first + fmt.Sprintf("\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK%d\r\nFrom: <sip:100@example.com>;tag=ft\r\n", i) +
		fmt.Sprintf("To: <sip:200@pbx.example>;tag=tt\r\nCall-ID: c1\r\nCSeq: %d %s\r\n", i+2, method)
	if ctype != "" {
		s += "Content-Type: " + ctype + "\r\n"
	}
	return s + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body, kind == "responses"
}

// TestInDialogStormBounded: the peers of one answered call send thousands
// of in-dialog messages (re-INVITEs moving the media each time, responses
// with new reason phrases, INFO digits, hold toggles). The call keeps at
// most its bounds; it was one entry per message (20,000 re-INVITEs: 320,002
// media addresses, 27 MB and 38 s of CPU, each address scanned the call's
// list).
func TestInDialogStormBounded(t *testing.T) {
	const n = 2000
	for _, tc := range []struct {
		kind    string
		media   int
		resp    int
		dtmf    int
		hold    int
		evicted uint64
		dropped uint64
	}{
		// every re-INVITE is an INVITE transaction too (response times)
		{kind: "reinvite", media: MaxMediaAddrs, resp: 1, evicted: 4 + 16*n - MaxMediaAddrs, dropped: n + 1 - MaxInviteTx},
		{kind: "responses", media: 4, resp: MaxResponses, dropped: n + 1 - MaxResponses},
		{kind: "info", media: 4, resp: 1, dtmf: MaxDTMF, dropped: n - MaxDTMF},
		{kind: "hold", media: 4, resp: 1, hold: MaxHolds, dropped: n/2 - MaxHolds + n + 1 - MaxInviteTx},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			tb := New(Config{})
			var m sip.Message
			handle := func(s string, at time.Duration, fromPBX bool) {
				t.Helper()
				if _, err := sip.Parse([]byte(s), &m); err != nil {
					t.Fatal(err)
				}
				meta := Meta{Time: t0.Add(at), Src: alice, Dst: pbx}
				if fromPBX {
					meta.Src, meta.Dst = pbx, alice
				}
				tb.HandleSIP(&m, meta)
			}
			handle(sipText("INVITE sip:200@pbx.example SIP/2.0", "c1", "ft", "", 1, "INVITE", "10.0.0.1"), 0, false)
			handle(sipText("SIP/2.0 200 OK", "c1", "ft", "tt", 1, "INVITE", "10.0.0.2"), 0, true)
			for i := range n {
				s, fromPBX := inDialog(tc.kind, i)
				handle(s, time.Duration(i)*time.Millisecond, fromPBX)
			}
			c := tb.calls["c1"]
			got := [4]int{len(c.media), len(c.cdr.SIPResponses), len(c.cdr.DTMF), len(c.cdr.Hold)}
			if want := [4]int{tc.media, tc.resp, tc.dtmf, tc.hold}; got != want {
				t.Errorf("media, responses, digits, holds = %v, want %v", got, want)
			}
			if tb.media.len() != tc.media {
				t.Errorf("media index holds %d addresses, want %d", tb.media.len(), tc.media)
			}
			if st := tb.Stats(); st.MediaEvicted != tc.evicted || st.EntriesDropped != tc.dropped {
				t.Errorf("evicted %d dropped %d, want %d %d", st.MediaEvicted, st.EntriesDropped, tc.evicted, tc.dropped)
			}
			if tc.kind == "reinvite" { // the newest addresses are the call's, the oldest forgotten
				last := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1024+(n-1)*16+14))
				if _, _, ok := mediaAt(tb, last, t0); !ok {
					t.Errorf("%v (last re-INVITE) not mapped", last)
				}
				if _, _, ok := mediaAt(tb, netip.MustParseAddrPort("10.0.0.1:1024"), t0); ok {
					t.Error("10.0.0.1:1024 (first re-INVITE) still mapped")
				}
			}
			tb.Flush()
			if tb.media.len() != 0 {
				t.Errorf("media index holds %d addresses after Flush", tb.media.len())
			}
		})
	}
}

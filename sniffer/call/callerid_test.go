package call

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/sip"
)

// TestCallerID: the caller's number, domain and name from the identity
// headers VoIPmonitor's options name, in its order, and a withheld From
// ("anonymous") filled from them.
func TestCallerID(t *testing.T) {
	const (
		pai  = "P-Asserted-Identity: \"Alice Real\" <sip:+4930111@carrier.example>\r\n"
		ppi  = "P-Preferred-Identity: <sip:222@pbx.example>\r\n"
		rpid = "Remote-Party-ID: \"Remote\" <sip:333@rpid.example>;party=calling;privacy=off\r\n"
		tel  = "P-Asserted-Identity: <tel:+4930999;cpc=ordinary>, <sip:999@carrier.example>\r\n"
		// user parameters in the user part, with and without a host
		parm   = "P-Asserted-Identity: <sip:+4930444;cpc=ordinary@carrier.example>\r\n"
		noHost = "P-Asserted-Identity: <sip:+4930555;cpc=ordinary>\r\n"
	)
	type want struct{ caller, domain, name string }
	from := want{"100", "example.com", "Alice"}
	for _, tc := range []struct {
		name    string
		opts    CallerID
		anon    bool // From: "Anonymous" <sip:anonymous@anonymous.invalid>
		headers string
		want    want
	}{
		{"defaults: From", CallerID{}, false, pai + rpid, from},
		{"passertedidentity", CallerID{PAssertedIdentity: true}, false, pai + ppi + rpid, want{"+4930111", "carrier.example", "Alice Real"}},
		{"passertedidentity, header absent", CallerID{PAssertedIdentity: true}, false, ppi, from},
		{"P-Asserted before P-Preferred", CallerID{PAssertedIdentity: true, PPreferredIdentity: true}, false, ppi + pai, want{"+4930111", "carrier.example", "Alice Real"}},
		{"ppreferredidentity", CallerID{PPreferredIdentity: true}, false, pai + ppi, want{"222", "pbx.example", ""}},
		{"remotepartyid after the others", CallerID{PAssertedIdentity: true, RemotePartyID: true}, false, rpid + pai, want{"+4930111", "carrier.example", "Alice Real"}},
		{"remotepartypriority", CallerID{PAssertedIdentity: true, RemotePartyID: true, RemotePartyFirst: true}, false, pai + rpid, want{"333", "rpid.example", "Remote"}},
		{"tel URI", CallerID{PAssertedIdentity: true}, false, tel, want{"+4930999", "", ""}},
		{"user parameters: number only", CallerID{PAssertedIdentity: true}, false, parm, want{"+4930444", "carrier.example", ""}},
		{"user parameters, callernum_numberonly = no", CallerID{PAssertedIdentity: true, NumberWithParams: true}, false, parm, want{"+4930444", "carrier.example", ""}},
		{"no host: callernum_numberonly", CallerID{PAssertedIdentity: true}, false, noHost, want{"+4930555", "+4930555", ""}},
		{"no host, callernum_numberonly = no: From", CallerID{PAssertedIdentity: true, NumberWithParams: true}, false, noHost, from},
		{"anonymous, defaults: Remote-Party-ID", CallerID{}, true, pai + rpid, want{"333", "rpid.example", "anonymous"}},
		{"anonymous, nothing to fill from", CallerID{}, true, pai, want{"anonymous", "anonymous.invalid", "Anonymous"}},
		{"anonymous, passertedidentity", CallerID{PAssertedIdentity: true}, true, pai, want{"+4930111", "carrier.example", "Alice Real"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := sipText("INVITE sip:200@pbx.example SIP/2.0", "cid-"+strings.NewReplacer(" ", "-", ",", "", ":", "").Replace(tc.name), "ft", "", 1, "INVITE", "")
			if tc.anon {
				text = strings.Replace(text, `From: "Alice" <sip:100@example.com>`, `From: "Anonymous" <sip:anonymous@anonymous.invalid>`, 1)
			}
			text = strings.Replace(text, "User-Agent:", tc.headers+"User-Agent:", 1)
			out, _ := runWith(t, Config{CallerID: tc.opts}, []step{{0, "A>B", text}})
			if len(out) != 1 {
				t.Fatalf("%d CDRs", len(out))
			}
			if got := (want{out[0].Caller, out[0].CallerDomain, out[0].CallerName}); got != tc.want {
				t.Errorf("caller %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCalledFromURI: destination_number_mode = 2 takes the called number
// and domain from the INVITE's Request-URI (a trunk's To keeps the dialled
// DID, the Request-URI the extension), 1 (default) from To.
func TestCalledFromURI(t *testing.T) {
	for _, tc := range []struct {
		name           string
		fromURI        bool
		requestURI     string
		called, domain string
	}{
		{"default: To", false, "sip:300@10.0.0.9:5060", "200", "pbx.example"},
		{"mode 2: Request-URI", true, "sip:300@10.0.0.9:5060", "300", "10.0.0.9"},
		{"mode 2, URI without user: To's number", true, "sip:10.0.0.9", "200", "10.0.0.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := sipText("INVITE "+tc.requestURI+" SIP/2.0", "cid-uri-"+strings.ReplaceAll(tc.name, " ", "-"), "ft", "", 1, "INVITE", "")
			out, _ := runWith(t, Config{CalledFromURI: tc.fromURI}, []step{{0, "A>B", text}})
			if len(out) != 1 {
				t.Fatalf("%d CDRs", len(out))
			}
			if out[0].Called != tc.called || out[0].CalledDomain != tc.domain {
				t.Errorf("called %q@%q, want %q@%q", out[0].Called, out[0].CalledDomain, tc.called, tc.domain)
			}
		})
	}
}

// TestLastDestNumber: overlap dialling sends the number digit by digit,
// each INVITE answered 484 until the last; last_dest_number keeps the
// latest INVITE's number, the default the first's. A re-INVITE from the
// callee's side changes nothing.
func TestLastDestNumber(t *testing.T) {
	invite := func(cseq int, num string) string {
		return strings.Replace(sipText("INVITE sip:"+num+"@pbx.example SIP/2.0", "cid-overlap", "ft", "", cseq, "INVITE", ""),
			"<sip:200@pbx.example>", "<sip:"+num+"@pbx.example>", 1)
	}
	reverse := strings.NewReplacer("From: \"Alice\" <sip:100@example.com>;tag=ft", "From: <sip:999@pbx.example>;tag=tt",
		"To: <sip:20@pbx.example>", "To: <sip:101@10.0.0.1>;tag=ft").Replace(invite(1, "20"))
	steps := []struct {
		text string
		back bool
	}{
		{invite(1, "2"), false},
		{sipText("SIP/2.0 484 Address Incomplete", "cid-overlap", "ft", "t1", 1, "INVITE", ""), true},
		{invite(2, "20"), false},
		{sipText("SIP/2.0 200 OK", "cid-overlap", "ft", "tt", 2, "INVITE", ""), true},
		{reverse, true},
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		proxy bool // the second INVITE comes from another IP than the first
		want  string
	}{
		// sipoverlap's default yes (voipmonitor.cpp:350, sniff.cpp:5320):
		// each INVITE from the caller's IP
		{"default: the latest INVITE from the caller's IP", Config{}, false, "20"},
		{"default: not an INVITE from another IP", Config{}, true, "2"},
		{"sipoverlap = no: the first INVITE's", Config{NoSIPOverlap: true}, false, "2"},
		{"last_dest_number", Config{LastDestNumber: true, NoSIPOverlap: true}, false, "20"},
		{"last_dest_number: from another IP too", Config{LastDestNumber: true, NoSIPOverlap: true}, true, "20"},
		{"last_dest_number, destination_number_mode 2", Config{LastDestNumber: true, CalledFromURI: true}, false, "20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := make([]sent, len(steps))
			for i, s := range steps {
				msgs[i] = sent{s.text, alice, pbx}
				if s.back {
					msgs[i].src, msgs[i].dst = pbx, alice
				} else if tc.proxy && i > 0 {
					msgs[i].src = netip.MustParseAddrPort("10.0.0.99:5060")
				}
			}
			out := runFrom(t, tc.cfg, msgs)
			if len(out) != 1 {
				t.Fatalf("%d CDRs", len(out))
			}
			if out[0].Called != tc.want {
				t.Errorf("called %q, want %q", out[0].Called, tc.want)
			}
		})
	}
}

// TestDstnumOnAnswer: a proxy forks the INVITE for a hunt group (600) to
// two phones (201, 202) on two Via branches; update_dstnum_onanswer takes
// the number of the branch the 200 OK answers, the default the first
// INVITE's.
func TestDstnumOnAnswer(t *testing.T) {
	bob1, bob2 := netip.MustParseAddrPort("10.0.0.3:5060"), netip.MustParseAddrPort("10.0.0.4:5060")
	msg := func(first, num, branch, toTag string) string {
		s := sipText(first, "cid-hunt", "ft", toTag, 1, "INVITE", "")
		s = strings.Replace(s, "branch=z9hG4bK1", "branch="+branch, 1)
		return strings.Replace(s, "<sip:200@pbx.example>", "<sip:"+num+"@pbx.example>", 1)
	}
	steps := []sent{
		{msg("INVITE sip:600@pbx.example SIP/2.0", "600", "z9hG4bKa", ""), alice, pbx},
		{msg("INVITE sip:201@10.0.0.3 SIP/2.0", "201", "z9hG4bKb1", ""), pbx, bob1},
		{msg("INVITE sip:202@10.0.0.4 SIP/2.0", "202", "z9hG4bKb2", ""), pbx, bob2},
		{msg("SIP/2.0 200 OK", "202", "z9hG4bKb2", "t2"), bob2, pbx},
		{msg("SIP/2.0 200 OK", "600", "z9hG4bKa", "t2"), pbx, alice},
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"default: the first INVITE's", Config{}, "600"},
		{"update_dstnum_onanswer", Config{UpdateDstnumOnAnswer: true}, "202"},
		{"update_dstnum_onanswer, destination_number_mode 2", Config{UpdateDstnumOnAnswer: true, CalledFromURI: true}, "202"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runFrom(t, tc.cfg, steps)
			if len(out) != 1 {
				t.Fatalf("%d CDRs", len(out))
			}
			if out[0].Called != tc.want {
				t.Errorf("called %q, want %q", out[0].Called, tc.want)
			}
		})
	}
}

// sent is a SIP message from src to dst, for runFrom.
type sent struct {
	text     string
	src, dst netip.AddrPort
}

// runFrom hands msgs, a second apart, to a table configured as cfg and
// returns the CDRs it ends with.
func runFrom(t *testing.T, cfg Config, msgs []sent) []CDR {
	t.Helper()
	var out []CDR
	cfg.OnCallEnd = func(c *CDR) { out = append(out, *c) }
	tb := New(cfg)
	for i, s := range msgs {
		var m sip.Message
		if _, err := sip.Parse([]byte(s.text), &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		tb.HandleSIP(&m, Meta{Time: t0.Add(time.Duration(i) * time.Second), Src: s.src, Dst: s.dst})
	}
	tb.Flush()
	return out
}

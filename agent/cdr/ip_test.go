package cdr

import (
	"context"
	"database/sql"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
)

// TestSchemaIPv6MatchesVoIPmonitor compares the ipv6 = yes tables, column by
// column, with what VoIPmonitor created with ipv6 = yes; every IP column
// of ipColumns must have become varbinary(16).
func TestSchemaIPv6MatchesVoIPmonitor(t *testing.T) {
	ref := refTablesIPv6(t)
	for _, td := range tableDDL {
		want, ok := ref[td.name]
		if !ok {
			t.Errorf("table %s not in schema-ipv6.sql", td.name)
			continue
		}
		got := columns(quoteIdents(ddlBody(td.name, td.body, true)))
		compareColumns(t, td.name, got, columns(want), nil)
		for _, c := range ipColumns[td.name] {
			if !strings.HasPrefix(got[c], "varbinary(16)") {
				t.Errorf("%s.%s = %q, want varbinary(16)", td.name, c, got[c])
			}
		}
	}
}

// TestLiveSchemaIPv6 checks what MariaDB created with ipv6 = yes.
func TestLiveSchemaIPv6(t *testing.T) {
	db := liveSchema(t, refTablesIPv6(t), schemaOptions{ipv6: true, now: time.Now()})
	f, err := readIPForms(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for table, cols := range ipColumns {
		for _, c := range cols {
			n++
			if !f[table+"."+c] {
				t.Errorf("%s.%s not read as varbinary", table, c)
			}
		}
	}
	if len(f) != n || !f.v6() {
		t.Errorf("readIPForms = %v, want the %d IP columns", f, n)
	}
}

func TestIPValues(t *testing.T) {
	v6 := ipForms{"cdr.sipcallerip": true, "register_state.sipcallerip": true}
	for _, tc := range []struct {
		name  string
		f     ipForms
		table string
		col   string
		in    netip.Addr
		want  any
	}{
		{"ipv6 = no, IPv4", nil, "cdr", "sipcallerip", netip.MustParseAddr("127.0.0.1"), uint32(2130706433)},
		{"ipv6 = no, IPv6 is NULL", nil, "cdr", "sipcallerip", netip.MustParseAddr("fe80::1"), nil},
		{"ipv6 = no, mapped IPv4", nil, "cdr", "sipcallerip", netip.MustParseAddr("::ffff:127.0.0.1"), uint32(2130706433)},
		{"varbinary, IPv4 is 4 bytes", v6, "cdr", "sipcallerip", netip.MustParseAddr("127.0.0.1"), "7f000001"},
		{"varbinary, IPv6 is 16 bytes", v6, "cdr", "sipcallerip", netip.MustParseAddr("fe80::21a:a0ff:fe07:32e0"), "fe80000000000000021aa0fffe0732e0"},
		{"varbinary, none is NULL", v6, "cdr", "sipcallerip", netip.Addr{}, nil},
		{"int column beside varbinary ones", v6, "cdr", "sipcalledip", netip.MustParseAddr("10.0.0.1"), uint32(167772161)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.f.ip(tc.table, tc.col, tc.in)
			if b, ok := got.([]byte); ok {
				got = hex.EncodeToString(b)
			}
			if got != tc.want {
				t.Errorf("ip(%s) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	if got := hex.EncodeToString(v6.ipNotNull("register_state", "sipcallerip", netip.Addr{}).([]byte)); got != "00000000" {
		t.Errorf("ipNotNull(none) on varbinary = %s, want 0.0.0.0's bytes", got)
	}
	if got := (ipForms{}).ipNotNull("register_state", "sipcallerip", netip.Addr{}); got != uint32(0) {
		t.Errorf("ipNotNull(none) on int = %v, want 0", got)
	}
}

// ipv6CDR is a call between two IPv6 hosts (sip_ipv6_udp.pcap's addresses)
// with one RTP stream and one DTMF digit.
func ipv6CDR() *call.CDR {
	c := sampleCDR(1)
	c.CallID = "ipv6-call"
	caller, callee := netip.MustParseAddr("fe80::21a:a0ff:fe07:32e0"), netip.MustParseAddr("fec0::216:d3ff:fe0d:22c")
	c.CallerIP, c.CalledIP = caller, callee
	c.Streams = c.Streams[:1]
	c.Streams[0].Src = netip.AddrPortFrom(caller, 20000)
	c.Streams[0].Dst = netip.AddrPortFrom(callee, 10000)
	c.DTMF = []call.DTMF{{Time: c.CallDate.Add(time.Second), Digit: '5', Source: "rfc2833",
		Src: netip.AddrPortFrom(caller, 20000), Dst: netip.AddrPortFrom(callee, 10000)}}
	return c
}

// ipRows reads the hex of every IP column the writer filled (NULL as
// "NULL"), in order.
func ipRows(tb testing.TB, db *sql.DB) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	for table, cols := range ipColumns {
		for _, c := range cols {
			rows, err := db.Query("SELECT COALESCE(HEX(`" + c + "`), 'NULL') FROM `" + table + "` ORDER BY 1")
			if err != nil {
				tb.Fatal(err)
			}
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					tb.Fatal(err)
				}
				out[table+"."+c] = append(out[table+"."+c], s)
			}
			rows.Close()
		}
	}
	return out
}

// TestWriterIPv6 writes an IPv6 call, an IPv4 call and a REGISTER with
// ipv6 = yes: the database gets varbinary(16) IP columns holding the
// addresses' 16 or 4 bytes, and INET6_NTOA reads them back as text.
func TestWriterIPv6(t *testing.T) {
	dsn := scratchDB(t, testDSN(t))
	o := testOptions(dsn, t.TempDir())
	o.IPv6 = true
	w := startWriter(t, o)
	if err := w.Enqueue(ipv6CDR()); err != nil {
		t.Fatal(err)
	}
	if err := w.Enqueue(sampleBusy(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.EnqueueRegister(sampleRegister(1, call.RegOK)); err != nil {
		t.Fatal(err)
	}
	fail := sampleRegister(2, call.RegFailed)
	fail.CallerIP = netip.Addr{}
	if err := w.EnqueueRegister(fail); err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	db := openDB(t, dsn)
	var typ string
	if err := db.QueryRow("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cdr' AND COLUMN_NAME = 'a_saddr'").Scan(&typ); err != nil || typ != "varbinary" {
		t.Fatalf("cdr.a_saddr is %q (%v), want varbinary", typ, err)
	}
	const (
		v6a  = "FE80000000000000021AA0FFFE0732E0"
		v6b  = "FEC00000000000000216D3FFFE0D022C"
		lo   = "7F000001"
		null = "NULL"
	)
	want := map[string][]string{
		"cdr.sipcallerip":             {lo, v6a},
		"cdr.sipcalledip":             {lo, v6b},
		"cdr.a_saddr":                 {v6a, null},
		"cdr.b_saddr":                 {null, null},
		"cdr_rtp.saddr":               {v6a},
		"cdr_rtp.daddr":               {v6b},
		"cdr_dtmf.saddr":              {v6a},
		"cdr_dtmf.daddr":              {v6b},
		"register_state.sipcallerip":  {lo},
		"register_state.sipcalledip":  {lo},
		"register_failed.sipcallerip": {"00000000"},
		"register_failed.sipcalledip": {lo},
	}
	got := ipRows(t, db)
	for k, v := range want {
		if strings.Join(got[k], " ") != strings.Join(v, " ") {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	var text string
	if err := db.QueryRow("SELECT INET6_NTOA(sipcallerip) FROM cdr WHERE caller = '1001' AND called = '5001'").Scan(&text); err != nil || text != "fe80::21a:a0ff:fe07:32e0" {
		t.Errorf("INET6_NTOA(sipcallerip) = %q (%v)", text, err)
	}
}

// TestWriterIPModeFollowsDatabase: the IP columns of an existing database
// keep their type whatever ipv6 says, and the writer fills them in that
// type's form, as VoIPmonitor does: ipv6 = yes on an ipv6 = no database
// stores IPv4 as numbers and IPv6 as NULL; ipv6 = no on an ipv6 = yes
// database stores bytes.
func TestWriterIPModeFollowsDatabase(t *testing.T) {
	for _, tc := range []struct {
		name         string
		created, run bool // the database's mode, the writer's ipv6
		wantCaller   []string
	}{
		{"ipv6 = yes on an ipv6 = no database", false, true, []string{"7F000001", "NULL"}},
		{"ipv6 = no on an ipv6 = yes database", true, false, []string{"7F000001", "FE80000000000000021AA0FFFE0732E0"}},
		{"ipv6 = no", false, false, []string{"7F000001", "NULL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := scratchDB(t, testDSN(t))
			db := openDB(t, dsn)
			if err := migrate(context.Background(), db, schemaOptions{ipv6: tc.created, now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			o := testOptions(dsn, t.TempDir())
			o.IPv6 = tc.run
			w := startWriter(t, o)
			for _, c := range []*call.CDR{ipv6CDR(), sampleBusy(1)} {
				if err := w.Enqueue(c); err != nil {
					t.Fatal(err)
				}
			}
			flush(t, w)
			rows, err := db.Query("SELECT COALESCE(HEX(sipcallerip), 'NULL') FROM cdr ORDER BY ID DESC")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != strings.Join(tc.wantCaller, " ") {
				t.Errorf("HEX(sipcallerip) = %v, want %v", got, tc.wantCaller)
			}
		})
	}
}

// TestRowsIPv4Unchanged: with ipv6 = no (the zero ipForms) the rows carry
// the same values as before ipv6 existed: numbers, NULL for IPv6.
func TestRowsIPv4Unchanged(t *testing.T) {
	c := ipv6CDR()
	c.Streams = append(c.Streams, rtp.Summary{Src: netip.MustParseAddrPort("192.0.2.1:4000"), Dst: netip.MustParseAddrPort("192.0.2.2:4002")})
	r := cdrRTPRows(1, c, rowOptions{})
	if r[0][1].v != nil || r[1][1].v != uint32(0xc0000201) {
		t.Errorf("cdr_rtp saddr = %v, %v", r[0][1].v, r[1][1].v)
	}
}

package cdrquery

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"pbx-agent/internal/testkit"
)

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// whereOf parses kv (with a date added unless present) and returns the WHERE
// clause without the date condition, plus its arguments.
func TestParseFilters(t *testing.T) {
	const from = "c.calldate >= ?"
	tests := []struct {
		name     string
		in       url.Values
		want     string // WHERE without " WHERE "
		wantArgs []any
		wantErr  error
	}{
		{name: "date only", in: vals("fdatefrom", "2013-05-08T00:00:00"), want: from, wantArgs: []any{"2013-05-08 00:00:00.000"}},
		{name: "dateto day", in: vals("fdateto", "2013-05-28"), want: "c.calldate < ?", wantArgs: []any{"2013-05-29 00:00:00.000"}},
		{name: "dateto time", in: vals("fdateto", "2013-05-28 10:11:12"), want: "c.calldate <= ?", wantArgs: []any{"2013-05-28 10:11:12.000"}},
		{name: "no date", in: vals("fcaller", "190"), wantErr: ErrNoDate},
		{name: "bad date", in: vals("fdatefrom", "yesterday"), wantErr: ErrBadParam},
		{name: "caller", in: vals("fdatefrom", "2013-05-08", "fcaller", "190"), want: from + " AND c.caller = ?", wantArgs: []any{"2013-05-08 00:00:00.000", "190"}},
		{name: "caller prefix", in: vals("fdatefrom", "2013-05-08", "fcaller", "190%"), want: from + " AND c.caller LIKE ?", wantArgs: []any{"2013-05-08 00:00:00.000", "190%"}},
		{name: "caller suffix uses reverse", in: vals("fdatefrom", "2013-05-08", "fcaller", "%190"), want: from + " AND c.caller_reverse LIKE ?", wantArgs: []any{"2013-05-08 00:00:00.000", "091%"}},
		{name: "caller list", in: vals("fdatefrom", "2013-05-08", "fcaller", "1,2"), want: from + " AND (c.caller = ? OR c.caller = ?)", wantArgs: []any{"2013-05-08 00:00:00.000", "1", "2"}},
		{name: "caller OR called type 0", in: vals("fdatefrom", "2013-05-08", "fcaller", "7", "fcallerd_type", "0"), want: from + " AND (c.caller = ? OR c.called = ?)", wantArgs: []any{"2013-05-08 00:00:00.000", "7", "7"}},
		{name: "caller AND called type 1", in: vals("fdatefrom", "2013-05-08", "fcaller", "7", "fcalled", "8", "fcallerd_type", "1"), want: from + " AND c.caller = ? AND c.called = ?", wantArgs: []any{"2013-05-08 00:00:00.000", "7", "8"}},
		{name: "bad type", in: vals("fdatefrom", "2013-05-08", "fcaller", "7", "fcallerd_type", "2 OR 1=1"), wantErr: ErrBadParam},
		{name: "domain type 0", in: vals("fdatefrom", "2013-05-08", "fcaller_domain", "a.b", "fcallerd_domain_type", "0"), want: from + " AND (c.caller_domain = ? OR c.called_domain = ?)", wantArgs: []any{"2013-05-08 00:00:00.000", "a.b", "a.b"}},
		{name: "callername", in: vals("fdatefrom", "2013-05-08", "fcallername", "Bob%"), want: from + " AND c.callername LIKE ?", wantArgs: []any{"2013-05-08 00:00:00.000", "Bob%"}},
		{name: "sip ip", in: vals("fdatefrom", "2013-05-08", "fsipcallerip", "10.0.0.1"), want: from + " AND c.sipcallerip = ?", wantArgs: []any{"2013-05-08 00:00:00.000", uint32(0x0a000001)}},
		{name: "sip ip prefix", in: vals("fdatefrom", "2013-05-08", "fsipcalledip", "10.0.0.0/24"), want: from + " AND c.sipcalledip BETWEEN ? AND ?", wantArgs: []any{"2013-05-08 00:00:00.000", uint32(0x0a000000), uint32(0x0a0000ff)}},
		{name: "sip ip bad", in: vals("fdatefrom", "2013-05-08", "fsipcallerip", "10.0.0.1' OR '1'='1"), wantErr: ErrBadParam},
		{name: "rtp ip type 0", in: vals("fdatefrom", "2013-05-08", "fa_saddr", "192.168.0.1", "fab_saddr_type", "0"), want: from + " AND (c.a_saddr = ? OR c.b_saddr = ?)", wantArgs: []any{"2013-05-08 00:00:00.000", uint32(0xc0a80001), uint32(0xc0a80001)}},
		{name: "codec", in: vals("fdatefrom", "2013-05-08", "fcodec", "4, 12"), want: from + " AND (c.a_payload IN (?,?) OR c.b_payload IN (?,?))", wantArgs: []any{"2013-05-08 00:00:00.000", int64(4), int64(12), int64(4), int64(12)}},
		{name: "codec bad", in: vals("fdatefrom", "2013-05-08", "fcodec", "4,x"), wantErr: ErrBadParam},
		{name: "duration seed example", in: vals("fdatefrom", "2013-05-08", "fdurationgt", "30", "fdurationlt", "10"), want: from + " AND c.duration > ? AND c.duration < ?", wantArgs: []any{"2013-05-08 00:00:00.000", 10.0, 30.0}},
		{name: "pdd", in: vals("fdatefrom", "2013-05-08", "fpddgt", "10", "fpddlt", "30"), want: from + " AND c.progress_time > ? AND c.progress_time < ?", wantArgs: []any{"2013-05-08 00:00:00.000", 10.0, 30.0}},
		{name: "duration negative", in: vals("fdatefrom", "2013-05-08", "fdurationgt", "-1"), wantErr: ErrBadParam},
		{name: "duration NaN", in: vals("fdatefrom", "2013-05-08", "fdurationgt", "NaN"), wantErr: ErrBadParam},
		{name: "sip response", in: vals("fdatefrom", "2013-05-08", "fsipresponse", "503"), want: from + " AND c.lastSIPresponseNum IN (?)", wantArgs: []any{"2013-05-08 00:00:00.000", int64(503)}},
		{name: "bye true", in: vals("fdatefrom", "2013-05-08", "fbye", "true"), want: from + " AND " + interruptedBye, wantArgs: []any{"2013-05-08 00:00:00.000"}},
		{name: "bye false", in: vals("fdatefrom", "2013-05-08", "fbye", "false"), want: from + " AND NOT " + interruptedBye, wantArgs: []any{"2013-05-08 00:00:00.000"}},
		{name: "bye bad", in: vals("fdatefrom", "2013-05-08", "fbye", "maybe"), wantErr: ErrBadParam},
		{name: "has audio", in: vals("fdatefrom", "2013-05-08", "fhasaudio", "1"), want: from + " AND (COALESCE(c.a_received, 0) > 0 OR COALESCE(c.b_received, 0) > 0)", wantArgs: []any{"2013-05-08 00:00:00.000"}},
		{name: "fax no", in: vals("fdatefrom", "2013-05-08", "ffax", "0"), want: from + " AND NOT COALESCE(c.payload, 0) IN (1000, 1001)", wantArgs: []any{"2013-05-08 00:00:00.000"}},
		{name: "fax bad", in: vals("fdatefrom", "2013-05-08", "ffax", "fax"), wantErr: ErrBadParam},
		{name: "trunk accepted", in: vals("fdatefrom", "2013-05-08", "ftrunk", "false"), want: from, wantArgs: []any{"2013-05-08 00:00:00.000"}},
		{name: "ua", in: vals("fdatefrom", "2013-05-08", "fa_ua", "%Asterisk%"), want: from + " AND c.a_ua_id IN (SELECT id FROM cdr_ua WHERE ua LIKE ?)", wantArgs: []any{"2013-05-08 00:00:00.000", "%Asterisk%"}},
		{name: "ua type 0", in: vals("fdatefrom", "2013-05-08", "fa_ua", "x", "fab_ua_type", "0"), want: from + " AND (c.a_ua_id IN (SELECT id FROM cdr_ua WHERE ua = ?) OR c.b_ua_id IN (SELECT id FROM cdr_ua WHERE ua = ?))", wantArgs: []any{"2013-05-08 00:00:00.000", "x", "x"}},
		{name: "callid", in: vals("fdatefrom", "2013-05-08", "fcallid", "a/b@c"), want: from + " AND c.ID IN (SELECT cdr_ID FROM cdr_next WHERE fbasename = ?)", wantArgs: []any{"2013-05-08 00:00:00.000", "a_b@c"}},
		{name: "sensor", in: vals("fdatefrom", "2013-05-08", "fsensor_id", "1,2"), want: from + " AND c.id_sensor IN (?,?)", wantArgs: []any{"2013-05-08 00:00:00.000", int64(1), int64(2)}},
		{name: "jitter", in: vals("fdatefrom", "2013-05-08", "frtcp_avgjitter", "2.5"), want: from + " AND (c.a_rtcp_avgjitter_mult10 >= ? OR c.b_rtcp_avgjitter_mult10 >= ?)", wantArgs: []any{"2013-05-08 00:00:00.000", 25.0, 25.0}},
		{name: "mos", in: vals("fdatefrom", "2013-05-08", "fmosf1", "3.5"), want: from + " AND (c.a_mos_f1_mult10 <= ? OR c.b_mos_f1_mult10 <= ?)", wantArgs: []any{"2013-05-08 00:00:00.000", 35.0, 35.0}},
		{name: "mos too high", in: vals("fdatefrom", "2013-05-08", "fmosadapt", "6"), wantErr: ErrBadParam},
		{name: "delay", in: vals("fdatefrom", "2013-05-08", "f_d300", "1"), want: from + " AND (c.a_d300 >= ? OR c.b_d300 >= ?)", wantArgs: []any{"2013-05-08 00:00:00.000", 1.0, 1.0}},
		{name: "loss", in: vals("fdatefrom", "2013-05-08", "floss10", "2"), want: from + " AND (c.a_sl10 >= ? OR c.b_sl10 >= ?)", wantArgs: []any{"2013-05-08 00:00:00.000", 2.0, 2.0}},
		{name: "filter template", in: vals("fdatefrom", "2013-05-08", "ffilterTemplate", "3"), wantErr: ErrBadParam},
		{name: "sort unknown", in: vals("fdatefrom", "2013-05-08", "sort", `[{"property":"calldate; DROP TABLE cdr","direction":"DESC"}]`), wantErr: ErrBadParam},
		{name: "sort bad direction", in: vals("fdatefrom", "2013-05-08", "sort", `[{"property":"calldate","direction":"DESC;"}]`), wantErr: ErrBadParam},
		{name: "sort not json", in: vals("fdatefrom", "2013-05-08", "sort", `calldate`), wantErr: ErrBadParam},
		{name: "limit too big", in: vals("fdatefrom", "2013-05-08", "limit", "1000000"), wantErr: ErrBadParam},
		{name: "limit not number", in: vals("fdatefrom", "2013-05-08", "limit", "10 OR 1"), wantErr: ErrBadParam},
		{name: "orderBy bad", in: vals("fdatefrom", "2013-05-08", "orderByLoss", "x"), wantErr: ErrBadParam},
		{name: "group bad", in: vals("fdatefrom", "2013-05-08", "groupBy", "caller"), wantErr: ErrBadParam},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.in, Options{RequireDate: true})
			if testkit.WantErr(t, err, tt.wantErr) {
				return
			}
			w, args := q.Where()
			if got := strings.TrimPrefix(w, " WHERE "); got != tt.want {
				t.Errorf("where\n got %s\nwant %s", got, tt.want)
			}
			if len(args) != len(tt.wantArgs) {
				t.Fatalf("args %#v, want %#v", args, tt.wantArgs)
			}
			for i := range args {
				if args[i] != tt.wantArgs[i] {
					t.Errorf("arg %d = %#v, want %#v", i, args[i], tt.wantArgs[i])
				}
			}
		})
	}
}

func TestPagingAndOrder(t *testing.T) {
	tests := []struct {
		name      string
		in        url.Values
		start     int
		limit     int
		wantOrder string
	}{
		{"defaults", vals(), 0, 30, "ORDER BY c.calldate DESC, c.ID DESC LIMIT"},
		{"page", vals("page", "3", "limit", "10"), 20, 10, "ORDER BY c.calldate DESC"},
		{"start wins", vals("page", "3", "start", "5", "limit", "10"), 5, 10, "ORDER BY c.calldate DESC"},
		{"sort", vals("sort", `[{"property":"calldate2","direction":"asc"},{"property":"caller","direction":"DESC"}]`), 0, 30, "ORDER BY c.calldate ASC, c.caller DESC, c.calldate DESC"},
		{"sort object", vals("sort", `{"property":"duration","direction":"DESC"}`), 0, 30, "ORDER BY c.duration DESC"},
		{"special first", vals("orderByLoss", "1", "sort", `[{"property":"caller"}]`), 0, 30, "ORDER BY c.packet_loss_perc_mult1000 DESC, c.caller ASC"},
		{"special duration", vals("orderByCallDuration_asc", "true"), 0, 30, "ORDER BY c.duration ASC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if q.Start != tt.start || q.Limit != tt.limit {
				t.Errorf("start/limit = %d/%d, want %d/%d", q.Start, q.Limit, tt.start, tt.limit)
			}
			s, args := q.ListSQL()
			if !strings.Contains(s, tt.wantOrder) {
				t.Errorf("sql %s\nlacks %s", s, tt.wantOrder)
			}
			if args[len(args)-2] != tt.limit || args[len(args)-1] != tt.start {
				t.Errorf("limit args %v", args[len(args)-2:])
			}
		})
	}
}

func TestSensorsRestriction(t *testing.T) {
	q, err := Parse(vals(), Options{Sensors: []int{2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if w, args := q.Where(); w != " WHERE c.id_sensor IN (?,?)" || len(args) != 2 {
		t.Errorf("where %q %v", w, args)
	}
	q, _ = Parse(vals(), Options{Sensors: []int{}})
	if w, _ := q.Where(); w != " WHERE FALSE" {
		t.Errorf("no sensors: %q", w)
	}
}

func TestParseObject(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    url.Values
		wantErr bool
	}{
		{"seed", `{fcallid:"uDR8mtloKFa1F8625VL2OXSFp.RuG73v"}`, url.Values{"fcallid": {"uDR8mtloKFa1F8625VL2OXSFp.RuG73v"}}, false},
		{"json", `{"fdatefrom":"2020-01-01","limit":10,"fbye":false,"x":null}`, url.Values{"fdatefrom": {"2020-01-01"}, "limit": {"10"}, "fbye": {"false"}}, false},
		{"single quotes", ` { fcaller : '1\'2' , } `, nil, true},
		{"escapes", `{a:'1\'2',b:"\u0041"}`, url.Values{"a": {"1'2"}, "b": {"A"}}, false},
		{"empty", `{}`, url.Values{}, false},
		{"nested", `{a:{b:1}}`, nil, true},
		{"bare word", `{a:DROP}`, nil, true},
		{"trailing", `{a:1} x`, nil, true},
		{"unterminated", `{a:"1`, nil, true},
		{"not object", `[1]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseObject(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrBadObject) {
					t.Errorf("err %v is not ErrBadObject", err)
				}
				return
			}
			if got.Encode() != tt.want.Encode() {
				t.Errorf("got %v want %v", got, tt.want)
			}
		})
	}
}

func TestAddrOrPrefix(t *testing.T) {
	tests := []struct {
		in, want string // want "": refused
		single   bool
	}{
		{in: "10.1.1.1", want: "10.1.1.1/32", single: true},
		{in: "10.2.2.7/24", want: "10.2.2.0/24"},
		{in: "::ffff:10.1.1.1", want: "10.1.1.1/32", single: true},
		{in: "2001:db8::1", want: "2001:db8::1/128", single: true},
		{in: "10.1.1.1/33"},
		{in: "host"},
	}
	for _, tt := range tests {
		p, single, err := AddrOrPrefix(tt.in)
		if (err != nil) != (tt.want == "") {
			t.Errorf("AddrOrPrefix(%q) err = %v", tt.in, err)
			continue
		}
		if err == nil && (p.String() != tt.want || single != tt.single) {
			t.Errorf("AddrOrPrefix(%q) = %v, %v; want %s, %v", tt.in, p, single, tt.want, tt.single)
		}
	}
}

// TestParseIPFiltersIPv6: with varbinary(16) IP columns (ipv6 = yes) an
// address is its 4 or 16 bytes and a prefix a byte range of its own
// family's length; without, IPv6 is refused as before.
func TestParseIPFiltersIPv6(t *testing.T) {
	const from = "c.calldate >= ? AND "
	tests := []struct {
		name     string
		in       url.Values
		ipv6     bool
		want     string
		wantArgs []string // hex of []byte args, or fmt of the others
		wantErr  error
	}{
		{name: "IPv4 address", ipv6: true, in: vals("fdatefrom", "2013-05-08", "fsipcallerip", "10.0.0.1"),
			want: from + "c.sipcallerip = ?", wantArgs: []string{"0a000001"}},
		{name: "IPv4 prefix", ipv6: true, in: vals("fdatefrom", "2013-05-08", "fsipcalledip", "10.0.0.0/23"),
			want: from + "(c.sipcalledip BETWEEN ? AND ? AND LENGTH(c.sipcalledip) = 4)", wantArgs: []string{"0a000000", "0a0001ff"}},
		{name: "IPv6 address", ipv6: true, in: vals("fdatefrom", "2013-05-08", "fsipcallerip", "fe80::21a:a0ff:fe07:32e0"),
			want: from + "c.sipcallerip = ?", wantArgs: []string{"fe80000000000000021aa0fffe0732e0"}},
		{name: "IPv4-mapped is IPv4", ipv6: true, in: vals("fdatefrom", "2013-05-08", "fa_saddr", "::ffff:10.0.0.1"),
			want: from + "c.a_saddr = ?", wantArgs: []string{"0a000001"}},
		{name: "IPv6 prefix both sides", ipv6: true, in: vals("fdatefrom", "2013-05-08", "fa_saddr", "fe80::/10", "fab_saddr_type", "0"),
			want:     from + "((c.a_saddr BETWEEN ? AND ? AND LENGTH(c.a_saddr) = 16) OR (c.b_saddr BETWEEN ? AND ? AND LENGTH(c.b_saddr) = 16))",
			wantArgs: []string{"fe800000000000000000000000000000", "febfffffffffffffffffffffffffffff", "fe800000000000000000000000000000", "febfffffffffffffffffffffffffffff"}},
		{name: "IPv6 bad", ipv6: true, in: vals("fdatefrom", "2013-05-08", "fsipcallerip", "fe80::1' OR '1'='1"), wantErr: ErrBadParam},
		{name: "IPv6 refused with int columns", in: vals("fdatefrom", "2013-05-08", "fsipcallerip", "fe80::1"), wantErr: ErrBadParam},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.in, Options{RequireDate: true, IPv6: tt.ipv6})
			if testkit.WantErr(t, err, tt.wantErr) {
				return
			}
			w, args := q.Where()
			if got := strings.TrimPrefix(w, " WHERE "); got != tt.want {
				t.Errorf("where\n got %s\nwant %s", got, tt.want)
			}
			if len(args) != len(tt.wantArgs)+1 {
				t.Fatalf("args %#v, want date + %v", args, tt.wantArgs)
			}
			for i, a := range args[1:] {
				if got := fmt.Sprintf("%x", a); got != tt.wantArgs[i] {
					t.Errorf("arg %d = %s, want %s", i, got, tt.wantArgs[i])
				}
			}
		})
	}
}

func TestSelectSQLIPText(t *testing.T) {
	for _, tc := range []struct {
		ipv6      bool
		want, not string
	}{
		{false, "INET_NTOA(c.sipcallerip)", "INET6_NTOA"},
		{true, "INET6_NTOA(c.sipcallerip)", "INET_NTOA"},
	} {
		s := SelectSQL(tc.ipv6)
		if !strings.Contains(s, tc.want) || strings.Contains(s, tc.not) || strings.Count(s, "NTOA(") != 4 {
			t.Errorf("SelectSQL(%v) = %s", tc.ipv6, s)
		}
		q, err := Parse(vals(), Options{IPv6: tc.ipv6})
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := q.ListSQL(); !strings.Contains(s, tc.want) {
			t.Errorf("ListSQL with IPv6 %v: %s", tc.ipv6, s)
		}
	}
}

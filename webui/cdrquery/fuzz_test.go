package cdrquery

import (
	"net/url"
	"strings"
	"testing"
)

// checkSQL asserts the invariant that makes injection impossible: the SQL
// text holds no quote or comment characters (no literal from the request
// reached it) and every argument has its placeholder.
func checkSQL(t *testing.T, s string, args []any) {
	t.Helper()
	if strings.ContainsAny(s, `'"`+"`#;") || strings.Contains(s, "--") || strings.Contains(s, "/*") {
		t.Fatalf("SQL text has a quote or comment: %s", s)
	}
	if n := strings.Count(s, "?"); n != len(args) {
		t.Fatalf("%d placeholders, %d args: %s", n, len(args), s)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"fdatefrom=2013-05-08T00:00:00&fcaller=190",
		"fdatefrom=2013-05-08&fcaller=%25190&fcalled=1,2&fcallerd_type=0",
		"fdateto=2013-05-28&fsipcallerip=10.0.0.0/8&fa_saddr=1.2.3.4&fab_saddr_type=1",
		"fdatefrom=2013-05-08&fcodec=4,%2012&fdurationgt=30&fdurationlt=10&fbye=false",
		"fdatefrom=2013-05-08&sort=[{\"property\":\"calldate2\",\"direction\":\"DESC\"}]&orderByLoss=1",
		"fdatefrom=2013-05-08&fmosf1=3.1&floss3=2&f_d150=4&frtcp_maxfr=9&page=2&limit=10",
		"fdatefrom=2013-05-08&fcaller='+OR+1=1+--+&fcallid=x\"y",
		"fdatefrom=2013-05-08&fsipcallerip=fe80::/10,10.0.0.1&fb_saddr=::ffff:1.2.3.4&fab_saddr_type=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, ipv6 := range []bool{false, true} { // int unsigned and varbinary(16) IP columns
			q, err := Parse(v, Options{RequireDate: true, IPv6: ipv6})
			if err != nil {
				continue
			}
			for _, f := range []func() (string, []any){q.CountSQL, q.ListSQL, q.GroupSQL, q.GroupCountSQL} {
				s, args := f()
				checkSQL(t, s, args)
			}
		}
	})
}

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{fcallid:"abc"}`, `{"a":1,"b":'x\'y',c:null,d:true}`, `{a:"\u00e9"}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseObject(s)
		if err != nil {
			return
		}
		q, err := Parse(v, Options{})
		if err != nil {
			return
		}
		s2, args := q.ListSQL()
		checkSQL(t, s2, args)
	})
}

func BenchmarkParse(b *testing.B) {
	v, _ := url.ParseQuery("fdatefrom=2013-05-08T00:00:00&fcaller=190&fcodec=0,8&fsipcallerip=10.0.0.0/8&sort=[{\"property\":\"calldate2\",\"direction\":\"DESC\"}]")
	b.ReportAllocs()
	for b.Loop() {
		q, err := Parse(v, Options{RequireDate: true})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = q.ListSQL()
	}
}

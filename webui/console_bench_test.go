package webui

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// BenchmarkConsoleHistory1M: the calls page's request (LISTING as
// calls.js builds it: one day, first page of 30, newest first, total
// counted) over 1,000,000 CDRs, for the five filters operators use most.
// p95-ms is the figure. Run:
//
//	go test -run XXX -bench ConsoleHistory1M -benchtime 200x ./webui/
func BenchmarkConsoleHistory1M(b *testing.B) {
	db := benchDB(b)
	h := New(Options{DB: db, DisableAuth: true})
	srv := httptest.NewServer(h)
	defer srv.Close()
	day := url.Values{"task": {"LISTING"}, "module": {"CDR"}, "fdatefrom": {"2025-01-05T00:00:00"},
		"fdateto": {"2025-01-06T00:00:00"}, "limit": {"30"}, "start": {"0"}}
	for _, c := range []struct {
		name string
		add  url.Values
	}{
		{"last-day", nil},
		{"number-part", url.Values{"fcaller": {"%0042%"}, "fcallerd_type": {"0"}}},
		{"sip-code-486", url.Values{"fsipresponse": {"486"}}},
		{"ip-either-side", url.Values{"fsipcallerip": {"10.0.0.42"}, "fsipcallerdip_type": {"0"}}},
		{"call-id", url.Values{"fcallid": {"bench-200042"}, "fdatefrom": {"2025-01-01T00:00:00"}, "fdateto": {"2025-02-01T00:00:00"}}},
		{"mos-below-4.2", url.Values{"fmosadapt": {"4.2"}}},
		{"has-audio", url.Values{"fhasaudio": {"1"}}},
	} {
		q := url.Values{}
		for k, v := range day {
			q[k] = v
		}
		for k, v := range c.add {
			q[k] = v
		}
		b.Run(c.name, func(b *testing.B) {
			runLatency(b, srv, "/php/model/sql.php?"+q.Encode(), "")
		})
	}
}

// BenchmarkConsoleOverview1M: the overview's request (per-step figures and
// calls in progress per sensor) over 1,000,000 CDRs (a 30 s call every
// 2 s), for the page's time ranges ending a minute after the last CDR, as
// they end now on a live agent. Run:
//
//	go test -run XXX -bench ConsoleOverview1M -benchtime 20x ./webui/
func BenchmarkConsoleOverview1M(b *testing.B) {
	db := benchDB(b)
	now := time.Date(2025, 1, 24, 3, 34, 0, 0, time.UTC) // the last CDR starts at 03:33:18
	h := New(Options{DB: db, DisableAuth: true, Now: func() time.Time { return now }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, hours := range []string{"1", "6", "24", "168"} {
		b.Run(hours+"h", func(b *testing.B) {
			runLatencyMethod(b, srv, "GET", "/console/api/overview?hours="+hours, "")
		})
	}
}

package webui

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/cdr"
)

const benchRows = 1_000_000

// benchDB returns a database with benchRows generated CDRs, kept between
// runs (database pbx_webui_bench on the test server) because generating
// them takes a while on a small machine.
func benchDB(b *testing.B) *sql.DB {
	b.Helper()
	mc, err := mysql.ParseDSN(testDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	mc.DBName = "pbx_webui_bench"
	dsn := mc.FormatDSN()
	admin := openDB(b, func() string { m := *mc; m.DBName = ""; return m.FormatDSN() }())
	if _, err := admin.Exec("CREATE DATABASE IF NOT EXISTS pbx_webui_bench"); err != nil {
		b.Fatal(err)
	}
	db := openDB(b, dsn)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM cdr").Scan(&n); err == nil && n == benchRows {
		return db
	}
	// Schema through agent/cdr's writer (its migrations), then bulk rows.
	w, err := cdr.New(cdr.Options{DSN: dsn, IDSensor: 1, QueueDir: b.TempDir(),
		RetryInterval: 50 * time.Millisecond, PartitionCheck: time.Hour}, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	if err := w.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	cancel()
	<-errc
	w.Close()
	start := time.Now()
	for _, q := range []string{
		"DELETE FROM cdr_next", "DELETE FROM cdr",
		// 1M calls over ~23 days, 5000 callers, 2000 called numbers.
		`INSERT INTO cdr (calldate, callend, duration, connect_duration, caller, caller_reverse, called, called_reverse,
		  caller_domain, called_domain, sipcallerip, sipcalledip, lastSIPresponseNum, bye, a_payload, b_payload, payload,
		  mos_min_mult10, packet_loss_perc_mult1000, jitter_mult10, a_received, id_sensor)
		 SELECT '2025-01-01' + INTERVAL seq*2 SECOND, '2025-01-01' + INTERVAL seq*2+30 SECOND, 30, IF(seq%5=0,NULL,25),
		  CONCAT('1', LPAD(seq%5000,4,'0')), REVERSE(CONCAT('1', LPAD(seq%5000,4,'0'))),
		  CONCAT('2', LPAD(seq%2000,4,'0')), REVERSE(CONCAT('2', LPAD(seq%2000,4,'0'))),
		  'a.example', 'b.example', 167772160+seq%254, 167772416+seq%254, IF(seq%5=0,486,200), IF(seq%5=0,0,3),
		  IF(seq%2=0,0,8), IF(seq%2=0,0,8), IF(seq%2=0,0,8), 40+seq%6, seq%300, seq%50, IF(seq%5=0,NULL,1250), 1
		 FROM seq_0_to_999999`,
		"INSERT INTO cdr_next (cdr_ID, fbasename) SELECT ID, CONCAT('bench-', ID) FROM cdr",
		"ANALYZE TABLE cdr",
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("%.60s: %v", q, err)
		}
	}
	b.Logf("generated %d CDRs in %v", benchRows, time.Since(start))
	return db
}

// runLatency issues the request (POST) b.N times and reports p50/p95 in ms.
func runLatency(b *testing.B, srv *httptest.Server, path, cookie string) {
	b.Helper()
	runLatencyMethod(b, srv, "POST", path, cookie)
}

// runLatencyMethod is runLatency with the request's method.
func runLatencyMethod(b *testing.B, srv *httptest.Server, method, path, cookie string) {
	b.Helper()
	var lat []time.Duration
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 32<<10)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}

// BenchmarkListing1M: LISTING with a one-day date range and a caller over
// 1,000,000 CDRs (total + first page of 30, joins included).
func BenchmarkListing1M(b *testing.B) {
	db := benchDB(b)
	h := New(Options{DB: db, DisableAuth: true})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct{ name, caller string }{
		{"date+caller", "10042"},
		{"date+caller-suffix", "%042"},
		{"date-only", ""},
	} {
		q := url.Values{"task": {"LISTING"}, "module": {"CDR"}, "fdatefrom": {"2025-01-05T00:00:00"},
			"fdateto": {"2025-01-06T00:00:00"}, "fcaller": {c.caller}}
		b.Run(c.name, func(b *testing.B) {
			runLatency(b, srv, "/php/model/sql.php?"+q.Encode(), "")
		})
	}
}

// BenchmarkGetPCAPTwoLegs: getPCAP of the two-leg Asterisk call (legs by
// caller within 60 s, merged into one pcap).
func BenchmarkGetPCAPTwoLegs(b *testing.B) {
	e := newEnv(b, nil)
	path := "/php/api.php?task=getPCAP&user=admin&password=adminpw&params=" +
		url.QueryEscape(`{"callId":"f431e3956bf2ebd6","cidInterval":60,"cidMerge":true}`)
	runLatency(b, e.srv, path, "")
}

package sensors

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"pbx-agent/internal/every"
	"pbx-agent/webui"
)

// benchSite: sensors 1-3 with 1,000 active calls each (sensor 2 with AES),
// optionally a 4th that never answers, and a front end (id 9).
func benchSite(b testing.TB, hung bool, cooldown, timeout time.Duration) (*httptest.Server, *Client) {
	b.Helper()
	db := openDB(b, scratchDB(b))
	now := time.Now()
	k2 := mustKey(b)
	for id := 1; id <= 3; id++ {
		var key = &k2
		if id != 2 {
			key = nil
		}
		s := startSensor(b, id, genCalls(id, 1000, now), key)
		register(b, db, id, s.addr, key)
	}
	putSystemKey(b, db, "manager_key_2", k2)
	if hung {
		addr, _ := startHung(b)
		register(b, db, 4, addr, nil)
	}
	// The sensors' heartbeats, as their registries would keep them.
	ctx, cancel := context.WithCancel(context.Background())
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		every.Tick(ctx, 2*time.Second, func(time.Time) bool {
			_, _ = db.ExecContext(ctx, "UPDATE sensors SET agent_heartbeat = UTC_TIMESTAMP() WHERE id_sensor <> 9")
			return true
		})
	}()
	b.Cleanup(func() { cancel(); <-beats })
	reg, err := New(Options{DB: db, Self: Self{ID: 9, Host: "127.0.0.1"}, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(ClientOptions{Dir: reg, Keys: &Keys{DB: db}, Timeout: timeout, Cooldown: cooldown, Logger: testLogger()})
	h := webui.New(webui.Options{DB: db, DisableAuth: true, SensorID: 9, Remote: WebRemote{c}, Spool: Spool{Client: c}})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv, c
}

// benchListActive measures listActiveCalls through the web API end to end
// and reports p50/p95 latency.
func benchListActive(b *testing.B, srv *httptest.Server, wantTotal string) {
	b.Helper()
	url := srv.URL + "/php/api.php?task=listActiveCalls&params=%7B%7D"
	get := func() int {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body[:min(len(body), 80)]), `"total":"`+wantTotal+`"`) {
			b.Fatalf("status %d err %v: %.200s", resp.StatusCode, err, body)
		}
		return len(body)
	}
	size := get() // warm: sensor list cached, connections known
	var lat []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		get()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(size), "resp-bytes")
}

// BenchmarkListActiveCalls3x1000: three sensors with 1,000 calls each.
func BenchmarkListActiveCalls3x1000(b *testing.B) {
	srv, _ := benchSite(b, false, 0, 10*time.Second)
	benchListActive(b, srv, "3000")
}

// BenchmarkListActiveCalls3x1000Hung: plus a sensor that never answers,
// asked every time (no cooldown): each request waits its 1 s timeout.
func BenchmarkListActiveCalls3x1000Hung(b *testing.B) {
	srv, _ := benchSite(b, true, -1, time.Second)
	benchListActive(b, srv, "3000")
}

// BenchmarkListActiveCalls3x1000HungCooldown: the same with the default
// cooldown: after one timeout the hung sensor is reported at once.
func BenchmarkListActiveCalls3x1000HungCooldown(b *testing.B) {
	srv, _ := benchSite(b, true, time.Hour, time.Second)
	benchListActive(b, srv, "3000")
}

// BenchmarkFanout3x1000: the client's fan-out alone (no JSON out).
func BenchmarkFanout3x1000(b *testing.B) {
	_, c := benchSite(b, false, 0, 10*time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.ActiveCalls(ctx, -1)
		if err != nil || len(res) != 3 || len(res[2].Calls) != 1000 {
			b.Fatalf("%v %d", err, len(res))
		}
	}
}

// TestFrontEndMemory reports the front end's heap while it serves
// listActiveCalls for 3 sensors × 1,000 calls: what one request allocates,
// and that nothing is retained per request.
func TestFrontEndMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("figure test (3 × 1,000 calls); skipped with -short")
	}
	srv, _ := benchSite(t, false, 0, 10*time.Second)
	url := srv.URL + "/php/api.php?task=listActiveCalls&params=%7B%7D"
	do := func() {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do()
	const n = 50
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for range n {
		do()
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	growth := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	t.Logf("3 sensors × 1,000 calls: %.0f KiB allocated per listActiveCalls (front end + 3 in-process sensors), "+
		"live heap after GC %.1f MiB (whole process), growth over %d requests %+.0f KiB",
		float64(m1.TotalAlloc-m0.TotalAlloc)/n/1024, float64(m1.HeapAlloc)/(1<<20), n, float64(growth)/1024)
	if growth > 4<<20 {
		t.Errorf("heap grew %d KiB over %d requests: something is retained per request", growth>>10, n)
	}
}

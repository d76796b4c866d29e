package manager

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
	"pbx-agent/sniffer/rtp"
)

// genCalls makes n active calls with two streams each.
func genCalls(n int) []call.CDR {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]call.CDR, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		p := netip.MustParseAddr("192.0.2.10")
		start := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		out[i] = call.CDR{
			CallID: fmt.Sprintf("gen-%d@192.0.2.10", i), CallRef: 0x7f0000000000 + uint64(i)*0x100,
			CallDate: start, ConnectTime: start.Add(time.Second), CallEnd: start.Add(30 * time.Second),
			Caller: fmt.Sprint(1000 + i), Called: fmt.Sprint(5000 + i), CallerDomain: a.String(), CalledDomain: "192.0.2.10",
			CallerIP: a, CalledIP: p, LastSIPResponseNum: 200, CallerUA: "gensip", Active: true,
			Streams: []rtp.Summary{
				{Src: netip.AddrPortFrom(a, 20000), Dst: netip.AddrPortFrom(p, 10000), Payload: 8, Received: 1500, Lost: 3,
					AvgJitter: 1.25, MaxJitter: 3.5, MOSF1: 4.4, MOSF2: 4.4, MOSAdapt: 4.4, Caller: true},
				{Src: netip.AddrPortFrom(p, 10000), Dst: netip.AddrPortFrom(a, 20000), Payload: 8, Received: 1499,
					AvgJitter: 0.75, MaxJitter: 2.5, MOSF1: 4.5, MOSF2: 4.5, MOSAdapt: 4.5},
			},
		}
	}
	return out
}

func benchListcalls(b *testing.B, n int, cmd string) {
	s := New(Config{Calls: &calltest.Table{Calls: genCalls(n)}, SensorID: 1, Location: time.UTC})
	cw := &countWriter{}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Run(context.Background(), cw, cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cw.n)/float64(b.N), "bytes/op")
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func BenchmarkListcalls1000(b *testing.B)  { benchListcalls(b, 1000, "listcalls") }
func BenchmarkListcalls10000(b *testing.B) { benchListcalls(b, 10000, "listcalls") }
func BenchmarkListcalls10000SortCaller(b *testing.B) {
	benchListcalls(b, 10000, `listcalls {"sort_field":"caller","sort_dir":"asc"}`)
}
func BenchmarkListcalls10000Limit10(b *testing.B) {
	benchListcalls(b, 10000, `listcalls {"limit":"10"}`)
}

// BenchmarkListcallsTCPLatency10000 measures whole exchanges over TCP
// (connect, request, 10,000-call reply, close) and reports p50/p95.
func BenchmarkListcallsTCPLatency10000(b *testing.B) {
	ts := startServer(b, func(c *Config) { c.Calls = &calltest.Table{Calls: genCalls(10000)} })
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		roundTrip(b, ts.addr, "listcalls\r\n\r\n")
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkCommandsParallelTCP: 16 parallel clients, one getversion per
// connection; ns/op is the inverse of the server's commands per second.
func BenchmarkCommandsParallelTCP(b *testing.B) {
	ts := startServer(b, func(c *Config) { c.Calls = &calltest.Table{Calls: genCalls(1000)} })
	b.ReportAllocs()
	var mu sync.Mutex
	var lat []time.Duration
	clients := 16
	per := b.N/clients + 1
	b.ResetTimer()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				roundTrip(b, ts.addr, "getversion\r\n\r\n")
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "cmds/s")
	reportPercentiles(b, lat)
}

func roundTrip(b *testing.B, addr, req string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		b.Error(err)
		return
	}
	if n, err := io.Copy(io.Discard, c); err != nil || n == 0 {
		b.Errorf("reply %d bytes, %v", n, err)
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds()), "p95-µs")
}

func BenchmarkRequestComplete(b *testing.B) {
	req := []byte(`listcalls {"limit":"10","sort_field":"calldate","sort_dir":"desc"}` + "\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if !requestComplete(req, true) {
			b.Fatal("incomplete")
		}
	}
}

func TestRequestCompleteAllocs(t *testing.T) {
	req := []byte("listcalls\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { _ = requestComplete(req, true) }); n != 0 {
		t.Errorf("requestComplete allocates %v times", n)
	}
}

// benchFileExists asks file_exists for paths (one request) in a spool of
// one capture, 2024-01-01/00/00/SIP/x.pcap.
func benchFileExists(b *testing.B, paths []string) {
	spool := b.TempDir()
	dir := filepath.Join(spool, "2024-01-01", "00", "00", "SIP")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.pcap"), []byte("PCAPDATA"), 0o644); err != nil {
		b.Fatal(err)
	}
	s := New(Config{SpoolDir: spool, Location: time.UTC})
	cmd := "file_exists " + strings.Join(paths, "|")
	cw := &countWriter{}
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		if err := s.Run(context.Background(), cw, cmd); err != nil {
			b.Fatal(err)
		}
	}
	cputime.PerOp(b, cpu0)
	b.ReportMetric(float64(len(paths)), "paths/op")
}

// BenchmarkFileExistsMissing: a 64 KiB request of 9,362 short missing
// pcaps (each also looked for as .pcap.gz).
func BenchmarkFileExistsMissing(b *testing.B) {
	benchFileExists(b, slices.Repeat([]string{"x.pcap"}, 64<<10/len("x.pcap|")))
}

// BenchmarkFileExistsFound: a 64 KiB request of 2,340 captures that exist.
func BenchmarkFileExistsFound(b *testing.B) {
	p := "2024-01-01/00/00/SIP/x.pcap"
	benchFileExists(b, slices.Repeat([]string{p}, 64<<10/len(p+"|")))
}

// v6 is an address of the n-th IPv6 /64 of 2001:db8::/32 (2001:db8:X:Y::1
// for n < 2^32): the guard counts each /64 as one source.
func v6(n uint64) netip.Addr {
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	for i := range 4 {
		b[7-i] = byte(n >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// benchGuardNewSource measures a connection from a new source (admit,
// done; a failed AES request on it when failing) on a table already full
// (maxGuardSources), its sources each having made one such connection.
// The clock moves 1 ms per connection (a flood of 1,000 new sources a
// second); the failure window is 24 h, so failing sources stay in theirs.
func benchGuardNewSource(b *testing.B, failing bool) {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newGuard(DefaultMaxConnsPerSource, DefaultAESMaxFailures, 24*time.Hour)
	g.now = func() time.Time { return t }
	n := uint64(0)
	conn := func() {
		n++
		src := v6(n)
		e, ok, _ := g.admit(src)
		if failing {
			g.fail(src)
		}
		if ok {
			g.done(e)
		}
		t = t.Add(time.Millisecond)
	}
	for range maxGuardSources {
		conn()
	}
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		conn()
	}
	cputime.PerOp(b, cpu0)
}

// BenchmarkGuardNewSourceClean: the table is full of sources holding
// nothing (no failure, no block, no connection open).
func BenchmarkGuardNewSourceClean(b *testing.B) { benchGuardNewSource(b, false) }

// BenchmarkGuardNewSourceFailing: the table is full of sources with a
// failure in their window; the new ones fail too.
func BenchmarkGuardNewSourceFailing(b *testing.B) { benchGuardNewSource(b, true) }

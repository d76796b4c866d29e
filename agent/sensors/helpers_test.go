package sensors

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/dbtest"
	"pbx-agent/agent/manager"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
)

const dsnEnv = "PBX_TEST_MYSQL_DSN"

func testDSN(tb testing.TB) string { return dbtest.DSN(tb) }

// scratchDB creates an empty database, dropped when the test ends, and
// returns its DSN (UTC, client-side placeholders).
func scratchDB(tb testing.TB) string {
	tb.Helper()
	mc, err := mysql.ParseDSN(dbtest.Scratch(tb, testDSN(tb), "pbx_s_"))
	if err != nil {
		tb.Fatal(err)
	}
	mc.ParseTime = false
	mc.Loc = time.UTC
	mc.InterpolateParams = true
	return mc.FormatDSN()
}

func openDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	return dbtest.Open(tb, dsn)
}

func testLogger() *slog.Logger { return testkit.Logger() }

// genCalls makes n active calls of one sensor: refs 0x7f<sensor>0000+i.
func genCalls(sensor, n int, now time.Time) []call.CDR {
	out := make([]call.CDR, 0, n)
	for i := range n {
		start := now.Add(-time.Duration(60+i%600) * time.Second).Truncate(time.Second)
		c := call.CDR{
			CallID:       fmt.Sprintf("s%d-call-%d@test", sensor, i),
			CallRef:      uint64(0x7f0000000000) + uint64(sensor)<<20 + uint64(i),
			CallDate:     start,
			Caller:       strconv.Itoa(1000 + i),
			Called:       strconv.Itoa(5000 + i),
			CallerName:   "Caller " + strconv.Itoa(i),
			CallerDomain: "10.0." + strconv.Itoa(sensor) + ".1", CalledDomain: "pbx" + strconv.Itoa(sensor) + ".test",
			CallerIP:   netip.AddrFrom4([4]byte{10, 0, byte(sensor), byte(1 + i%250)}),
			CalledIP:   netip.AddrFrom4([4]byte{192, 0, 2, byte(sensor)}),
			CallerUA:   "phone/1.0",
			CalledUA:   "Asterisk 20",
			Active:     true,
			CallerPort: 5060, CalledPort: 5060,
		}
		if i%3 != 0 {
			c.ConnectTime = start.Add(5 * time.Second)
			c.LastSIPResponseNum = 200
		} else {
			c.LastSIPResponseNum = 180
		}
		out = append(out, c)
	}
	return out
}

// fakeSensor is a real manager.Server on a loopback port.
type fakeSensor struct {
	id    int
	srv   *manager.Server
	calls *calltest.Table
	addr  string
	spool string
	key   *wire.AESKey
}

func startSensor(tb testing.TB, id int, calls []call.CDR, key *wire.AESKey) *fakeSensor {
	tb.Helper()
	fs := &fakeSensor{id: id, calls: &calltest.Table{Calls: calls}, spool: tb.TempDir(), key: key}
	cfg := manager.Config{Addr: "127.0.0.1:0", Calls: fs.calls, SpoolDir: fs.spool, SensorID: id,
		Location: time.UTC, MaxSnapshots: 16}
	if key != nil {
		cfg.Keys = wire.StaticKey(*key)
	}
	fs.srv = manager.New(cfg)
	fs.srv.SetReady(true)
	stop := testkit.Run(tb, fs.srv.ListenAndServe)
	tb.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, manager.ErrServerClosed) {
			tb.Errorf("sensor %d: %v", id, err)
		}
	})
	for range 500 {
		if a := fs.srv.Addr(); a != nil {
			fs.addr = a.String()
			return fs
		}
		time.Sleep(2 * time.Millisecond)
	}
	tb.Fatalf("sensor %d did not bind", id)
	return nil
}

// startHung accepts connections, reads requests and never answers (until
// the test ends); maxOpen is the most connections it held open at once.
func startHung(tb testing.TB) (addr string, maxOpen func() int) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	peak := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			peak = max(peak, len(conns))
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c) // until the client gives up
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// register writes sensor id's row as that agent's Registry would.
func register(tb testing.TB, db *sql.DB, id int, addr string, key *wire.AESKey) *Registry {
	tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	self := Self{ID: id, Name: "sensor-" + strconv.Itoa(id), Host: host, Port: p, Version: "test"}
	if key != nil {
		self.KeyID = KeyID(*key)
	}
	r, err := New(Options{DB: db, Self: self, Logger: testLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := r.EnsureSchema(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := r.Register(ctx); err != nil {
		tb.Fatal(err)
	}
	return r
}

func mustKey(tb testing.TB) wire.AESKey {
	tb.Helper()
	k, err := wire.GenerateAESKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// putSystemKey stores a manager key row in `system`.
func putSystemKey(tb testing.TB, db *sql.DB, typ string, k wire.AESKey) {
	tb.Helper()
	kb, ib := k.Base64()
	if _, err := db.Exec("INSERT INTO `system` (`type`,`cdate`,`cdatetime`,`content`) VALUES (?,CURDATE(),NOW(),?)",
		typ, `{"key":"`+kb+`","iv":"`+ib+`"}`); err != nil {
		tb.Fatal(err)
	}
}

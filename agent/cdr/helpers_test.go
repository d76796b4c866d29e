package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbx-agent/agent/dbtest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/rtp"
)

const dsnEnv = "PBX_TEST_MYSQL_DSN"

func testDSN(tb testing.TB) string { return dbtest.DSN(tb) }

func scratchDB(tb testing.TB, dsn string) string { return dbtest.Scratch(tb, dsn, "pbx_t_") }

func openDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	mc, err := driverConfig(dsn, time.UTC)
	if err != nil {
		tb.Fatal(err)
	}
	return dbtest.Open(tb, mc.FormatDSN())
}

func count(tb testing.TB, db *sql.DB, q string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n
}

func testLogger(testing.TB) *slog.Logger { return testkit.Logger() }

func testOptions(dsn, queueDir string) Options {
	return Options{
		DSN: dsn, IDSensor: 1,
		QueueDir: queueDir, BatchSize: 50, FlushInterval: 20 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond, PartitionCheck: time.Hour, DrainTimeout: 5 * time.Second,
	}
}

// startWriter runs a writer until the test ends.
func startWriter(tb testing.TB, o Options) *Writer {
	tb.Helper()
	w, err := New(o, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() }) // after Run has returned
	testkit.Run(tb, w.Run)
	return w
}

// flush waits (30 s at most) until w has written what is queued; an error
// fails the test.
func flush(tb testing.TB, w *Writer) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// sampleCDR is an answered call with RTP both ways, shaped like
// gensip-10calls' second call in voipmonitor-ref (5 of 500 lost on B).
func sampleCDR(i int) *call.CDR {
	start := t0.Add(time.Duration(i) * 10 * time.Millisecond)
	caller := netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})
	callee := netip.MustParseAddr("192.0.2.10")
	end := start.Add(ms(10934))
	return &call.CDR{
		CallID:             fmt.Sprintf("gensip-1-%d@192.0.2.10", i),
		CallDate:           start,
		CallEnd:            end,
		ProgressTime:       start.Add(ms(60)),
		ConnectTime:        start.Add(ms(900)),
		ByeTime:            end.Add(-ms(4)),
		Caller:             fmt.Sprintf("%d", 1000+i),
		Called:             fmt.Sprintf("%d", 5000+i),
		CallerDomain:       caller.String(),
		CalledDomain:       "192.0.2.10",
		CallerIP:           caller,
		CalledIP:           callee,
		CallerPort:         5060,
		CalledPort:         5060,
		LastSIPResponseNum: 200,
		LastSIPResponse:    "200 OK",
		Responses:          []int{100, 180, 200},
		Response100:        call.ResponseDelay{First: start.Add(ms(3)), Min: ms(3)},
		ResponseXXX:        call.ResponseDelay{First: start.Add(ms(60)), Min: ms(60)},
		Bye:                call.ByeOK,
		WhoHanged:          call.HangerCaller,
		CallerUA:           "gensip",
		Streams: []rtp.Summary{
			{Src: netip.AddrPortFrom(caller, 20000), Dst: netip.AddrPortFrom(callee, 10000), SSRC: 1823804162,
				Payload: 8, Codec: "PCMA", ClockRate: 8000, FirstTime: start.Add(ms(920)), LastTime: end.Add(-ms(30)),
				Received: 498, Expected: 500, Lost: 2, AvgJitter: 1.31, MaxJitter: 1.7, CDRAvgJitter: 1.31, CDRMaxJitter: 1.7, MaxDelta: 21.5,
				SL: [10]int{2}, MOSF1: 4.5, MOSF2: 4.5, MOSAdapt: 4.5, MOSF1Min: 4.5, MOSF2Min: 4.5, MOSAdaptMin: 4.5, Caller: true},
			{Src: netip.AddrPortFrom(callee, 10000), Dst: netip.AddrPortFrom(caller, 20000), SSRC: 672245080,
				Payload: 8, Codec: "PCMA", ClockRate: 8000, FirstTime: start.Add(ms(931)), LastTime: end.Add(-ms(22)),
				Received: 495, Expected: 500, Lost: 5, AvgJitter: 1.25, MaxJitter: 1.8, CDRAvgJitter: 1.25, CDRMaxJitter: 1.8, MaxDelta: 22.1,
				SL: [10]int{5}, D: [7]int{1, 0, 0, 0, 0, 0, 0}, MOSF1: 4.1, MOSF2: 4.1, MOSAdapt: 4.1,
				MOSF1Min: 4.1, MOSF2Min: 4.1, MOSAdaptMin: 4.1},
		},
	}
}

// sampleBusy is an unanswered call without RTP and with a Q.850 reason.
func sampleBusy(i int) *call.CDR {
	start := t0.Add(time.Hour + time.Duration(i)*time.Second)
	return &call.CDR{
		CallID: fmt.Sprintf("busy-%d", i), CallDate: start, CallEnd: start.Add(ms(2500)),
		ProgressTime: start.Add(ms(4)), Caller: "1001", Called: "1002-0x559bc0765b70", CallerName: "Alice",
		CallerDomain: "127.0.0.1", CalledDomain: "127.0.0.1",
		CallerIP: netip.MustParseAddr("127.0.0.1"), CalledIP: netip.MustParseAddr("127.0.0.1"),
		CallerPort: 5161, CalledPort: 5060, LastSIPResponseNum: 486, LastSIPResponse: "486 Rejected",
		Responses: []int{180, 486}, ReasonQ850Cause: 21, Bye: call.ByeNoOK,
		CallerUA: "baresip v1.0.0 (x86_64/linux)", CalledUA: "Asterisk PBX 20.0.0", VLAN: 42,
	}
}

func sampleRegister(i int, state call.RegisterState) *call.Register {
	return &call.Register{
		Time: t0.Add(2*time.Hour + time.Duration(i)*time.Second), CallID: fmt.Sprintf("reg-%d", i),
		FromNum: "1001", FromDomain: "127.0.0.1", ToNum: "1001", ToDomain: "127.0.0.1",
		ContactNum: "1001-0x555c3329cb70", ContactDomain: "127.0.0.1", DigestUsername: "1001",
		DigestRealm: "asterisk", CallerIP: netip.MustParseAddr("127.0.0.1"), CalledIP: netip.MustParseAddr("127.0.0.1"),
		CallerPort: 5161, CalledPort: 5060, Expires: 599, State: state, UA: "baresip v1.0.0 (x86_64/linux)",
		FailedAttempts: 2, LastResponseNum: 200,
	}
}

// privateMariaDB starts a MariaDB of the test's own (for tests that stop and
// restart it) with scripts/mariadb-up.sh; it is stopped when the test ends.
type privateMariaDB struct {
	dir  string
	dsn  string
	repo string
}

func startPrivateMariaDB(tb testing.TB) *privateMariaDB {
	tb.Helper()
	testDSN(tb) // the same switch as the shared instance: skip when MySQL tests are off
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			tb.Skip("mariadbd not installed (apt-get install -y mariadb-server)")
		}
	}
	m := &privateMariaDB{dir: tb.TempDir(), repo: fixture.RepoRoot(tb)}
	out := m.up(tb)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export PBX_TEST_MYSQL_DSN='"); ok {
			m.dsn = strings.TrimSuffix(v, "'")
		}
	}
	if m.dsn == "" {
		tb.Fatalf("mariadb-up.sh printed no DSN:\n%s", out)
	}
	tb.Cleanup(func() { m.down(tb, false) })
	return m
}

func (m *privateMariaDB) up(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command("bash", filepath.Join(m.repo, "scripts", "mariadb-up.sh"), m.dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("mariadb-up.sh: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func (m *privateMariaDB) down(tb testing.TB, kill bool) {
	tb.Helper()
	args := []string{filepath.Join(m.repo, "scripts", "mariadb-down.sh"), m.dir}
	if kill {
		args = append(args, "--kill")
	}
	if out, err := exec.Command("bash", args...).CombinedOutput(); err != nil {
		tb.Errorf("mariadb-down.sh: %v\n%s", err, out)
	}
}

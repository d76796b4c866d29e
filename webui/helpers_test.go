package webui

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/correlate"
	"pbx-agent/agent/dbtest"
	"pbx-agent/ami"
	"pbx-agent/asteriskconf"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/sip"
)

var update = flag.Bool("update", false, "rewrite testdata/webui/*.golden")

const dsnEnv = "PBX_TEST_MYSQL_DSN"

func testDSN(tb testing.TB) string { return dbtest.DSN(tb) }

// scratchDB creates an empty database and returns its DSN; dropped at cleanup.
func scratchDB(tb testing.TB, dsn string) string { return dbtest.Scratch(tb, dsn, "pbx_web_") }

// openDB opens the DSN the way the agent should: latin1 (byte for byte),
// UTC, client-side placeholders.
func openDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	mc.Collation = "latin1_swedish_ci"
	mc.Loc = time.UTC
	mc.InterpolateParams = true
	return dbtest.Open(tb, mc.FormatDSN())
}

func testLogger() *slog.Logger { return testkit.Logger() }

// captures are the repo's copies of public/own captures replayed into the
// test database, in this order (CDR ids follow it).
var captures = []string{
	"asterisk-call-answered.pcap",
	"asterisk-call-busy.pcap",
	"asterisk-call-cancel.pcap",
	"register-invite-reinvite-bye.pcap",
	"sip-488-codec-reject.pcapng",
}

const testManagerConf = `[general]
enabled = yes

[admin]
secret = adminpw
read = all
write = all

[reader]
secret = readpw
read = cdr

[operator]
secret = oppw
read = call
write = call

[faraway]
secret = farpw
read = all
deny = 0.0.0.0/0.0.0.0
permit = 10.0.0.0/255.0.0.0

[nobody]
secret = nopw
read = system
`

func testUsers(tb testing.TB) []User {
	m, err := asteriskconf.LoadManager(fstest.MapFS{"manager.conf": {Data: []byte(testManagerConf)}}, "manager.conf", "")
	if err != nil {
		tb.Fatal(err)
	}
	return UsersFromManager(m)
}

type testEnv struct {
	h     *Handler
	db    *sql.DB
	spool DirSpool
	srv   *httptest.Server
	calls *calltest.Table
	now   time.Time
}

// newEnv replays the captures through the sniffer and agent/cdr's writer
// into a scratch database, writes each call's SIP and RTP pcaps into a
// spool, and starts the handler on an httptest server.
func newEnv(t testing.TB, mod func(*Options)) *testEnv {
	t.Helper()
	paths := make([]string, len(captures))
	for i, name := range captures {
		paths[i] = fixture.Repo(t, "testdata", "pcap", name)
	}
	return newEnvFrom(t, paths, mod)
}

// newEnvFrom is newEnv over the captures at paths.
func newEnvFrom(t testing.TB, paths []string, mod func(*Options)) *testEnv {
	t.Helper()
	return newEnvWith(t, envSpec{paths: paths}, mod)
}

// envSpec is what newEnvWith replays: captures, and optionally the AMI
// session Asterisk sent during them (each CDR then goes to the writer with
// its correlation, as the daemon does) and savegraph.
type envSpec struct {
	paths     []string
	ami       string // a recorded AMI session (X.raw; X.sent.raw is read too when present)
	saveGraph bool
	ipv6      bool // the writer's ipv6 (the database's IP columns varbinary(16))
}

// amiTracker replays a recorded AMI session into a channel table.
func amiTracker(t testing.TB, path string) *ami.Tracker {
	t.Helper()
	tr := ami.NewTracker(ami.TrackerConfig{})
	var actions []ami.Message
	if sent, err := os.ReadFile(strings.TrimSuffix(path, ".raw") + ".sent.raw"); err == nil {
		if actions, err = ami.ReadActions(bytes.NewReader(sent)); err != nil {
			t.Fatal(err)
		}
	}
	recv, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ami.ReplayTranscript(bytes.NewReader(recv), actions, tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// newEnvWith is newEnv over spec.
func newEnvWith(t testing.TB, spec envSpec, mod func(*Options)) *testEnv {
	t.Helper()
	paths := spec.paths
	var tr *ami.Tracker
	if spec.ami != "" {
		tr = amiTracker(t, spec.ami)
	}
	dsn := scratchDB(t, testDSN(t))
	ctx := context.Background()
	w, err := cdr.New(cdr.Options{DSN: dsn, IDSensor: 1,
		QueueDir: t.TempDir(), BatchSize: 50, FlushInterval: 20 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond, PartitionCheck: time.Hour, DrainTimeout: 5 * time.Second, IPv6: spec.ipv6}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(rctx) }()
	defer func() { cancel(); <-errc; w.Close() }()

	ports, err := sniffer.ParsePorts("5060,5070,5080")
	if err != nil {
		t.Fatal(err)
	}
	byCallID := map[string]*call.CDR{}
	var order []string
	for _, path := range paths {
		var ended []*call.CDR
		s := sniffer.New(sniffer.Config{SIPPorts: ports, SaveGraph: spec.saveGraph, Call: call.Config{IdleTimeout: -1,
			OnCallEnd: func(c *call.CDR) { cc := *c; ended = append(ended, &cc) }}})
		if err := s.ReplayFile(ctx, path, sniffer.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		s.Flush()
		for _, c := range ended {
			var a *cdr.Asterisk
			if tr != nil {
				a = correlate.Record(c, tr, correlate.DefaultSlack)
			}
			if err := w.EnqueueCorrelated(c, a); err != nil {
				t.Fatal(err)
			}
			// One CDR at a time keeps the ids in capture order.
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			byCallID[c.CallID] = c
			order = append(order, c.CallID)
		}
	}
	// Without captures too, the schema is in place when the test starts.
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dsn)
	sp := DirSpool{Root: t.TempDir()}
	writeSpool(t, db, sp, byCallID, paths)
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fc := &calltest.Table{Calls: []call.CDR{{
		CallID: "active-1@test", CallRef: 0x7f0e4c3c2680, CallDate: now.Add(-30 * time.Second),
		ConnectTime: now.Add(-20 * time.Second), Caller: "1001", Called: "1002", CallerDomain: "a.test",
		CalledDomain: "b.test", CallerIP: netip.MustParseAddr("10.0.0.1"), CalledIP: netip.MustParseAddr("10.0.0.2"),
		LastSIPResponseNum: 200, CallerUA: "baresip", Active: true,
	}}}
	o := Options{DB: db, Users: testUsers(t), Calls: fc, Spool: sp, SensorID: 1,
		Logger: testLogger(), ShareKey: []byte("test share key"), PublicURL: "http://agent.test",
		Now: func() time.Time { return now }}
	if mod != nil {
		mod(&o)
	}
	h := New(o)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testEnv{h: h, db: db, spool: sp, srv: srv, calls: fc, now: now}
}

// writeSpool splits the captures per call: SIP frames by Call-ID, RTP frames
// by the call's stream addresses.
func writeSpool(t testing.TB, db *sql.DB, sp DirSpool, byCallID map[string]*call.CDR, paths []string) {
	t.Helper()
	rs, err := db.Query("SELECT c.calldate, n.fbasename FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID")
	if err != nil {
		t.Fatal(err)
	}
	dates := map[string]time.Time{}
	for rs.Next() {
		var d, b string
		if err := rs.Scan(&d, &b); err != nil {
			t.Fatal(err)
		}
		dt, err := time.Parse("2006-01-02 15:04:05.000", d)
		if err != nil {
			t.Fatal(err)
		}
		dates[b] = dt
	}
	rs.Close()
	type out struct {
		f *os.File
		w *pcapgo.Writer
	}
	files := map[string]*out{}
	get := func(kind FileKind, callID string, link uint8) *pcapgo.Writer {
		key := string(kind) + "\x00" + callID
		if o := files[key]; o != nil {
			return o.w
		}
		p, err := sp.Path(SpoolFile{Kind: kind, CallDate: dates[callID], Basename: callID})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriter(f)
		if err := w.WriteFileHeader(262144, layersLink(link)); err != nil {
			t.Fatal(err)
		}
		files[key] = &out{f, w}
		return w
	}
	for _, path := range paths {
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := decode.New(src.LinkType())
		if err != nil {
			t.Fatal(err)
		}
		var pkt decode.Packet
		var m sip.Message
		for {
			data, ci, err := src.ReadPacket()
			if err != nil {
				break
			}
			ok, err := dec.Decode(data, ci.Timestamp, &pkt)
			if !ok || err != nil || pkt.Fragment {
				continue
			}
			if _, err := sip.Parse(pkt.Payload, &m); err == nil {
				id := string(m.CallID)
				if _, known := byCallID[id]; known {
					_ = get(KindSIP, id, uint8(src.LinkType())).WritePacket(ci, data)
				}
				continue
			}
			for id, c := range byCallID {
				for _, st := range c.Streams {
					if st.Src == pkt.Src || st.Dst == pkt.Dst || st.Src == pkt.Dst || st.Dst == pkt.Src {
						_ = get(KindRTP, id, uint8(src.LinkType())).WritePacket(ci, data)
						goto next
					}
				}
			}
		next:
		}
		src.Close()
	}
	for _, o := range files {
		o.f.Close()
	}
}

// do sends a request and returns status and body.
func (e *testEnv) do(t testing.TB, method, path string, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	return send(t, e.srv, method, path, body, hdr...)
}

// send sends method path with body to srv; hdr are name, value pairs
// ("Host" sets the request's Host).
func send(t testing.TB, srv *httptest.Server, method, path string, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rb)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return testkit.HTTP(t).Read(srv.Client().Do(req))
}

// login returns a session cookie header value.
func (e *testEnv) login(t testing.TB, user, pass string) string {
	t.Helper()
	st, b, _ := e.do(t, "POST", "/php/model/sql.php?module=bypass_login&user="+url.QueryEscape(user)+"&pass="+url.QueryEscape(pass), "")
	if st != 200 {
		t.Fatalf("login %s: %d %s", user, st, b)
	}
	i := bytes.Index(b, []byte(`"SID":"`))
	sid := string(b[i+7 : i+7+26])
	return "PHPSESSID=" + sid
}

// loadUsers writes text as a users file (users.conf in a new temporary
// directory) and loads it.
func loadUsers(t *testing.T, text string) ([]User, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadUsersFile(path)
}

// golden compares b with testdata/webui/name.golden (rewritten with -update).
func golden(t *testing.T, name string, b []byte) {
	t.Helper()
	testkit.Golden(t, filepath.Join(fixture.RepoRoot(t), "testdata", "webui", name+".golden"), b, *update)
}

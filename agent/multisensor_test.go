package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/gorilla/websocket"

	"pbx-agent/agent/dbtest"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/simulate"
	"pbx-agent/webui/player"
)

// Site timing (sensor_heartbeat, sensor_offline_after): short so the test
// sees a killed sensor go offline in seconds. The registry's list cache
// (1 s) and the database clock's whole seconds add to the bound.
const (
	siteHeartbeat    = time.Second
	siteOfflineAfter = 3 * time.Second
	offlineBound     = siteOfflineAfter + siteHeartbeat + time.Second /* list TTL */ + time.Second /* whole seconds */
)

// TestMultiSensorSite is issue 8's site on loopback: one MariaDB, sensor 1
// and sensor 2 replaying different generated captures at their recorded
// pace (sensor 2's manager API encrypted, its key given to the front end as
// sensor_manager_key), and a front end (id 3, sniffer = no). Through the
// front end's web API: listActiveCalls merges both sensors, pausecall of a
// call on sensor 2 pauses it there, live listening of that call delivers
// its audio (silent while paused), CDRs of both sensors are listed; then
// sensor 2 dies (its database link cut, then stopped) and shows offline
// within the heartbeat bound while sensor 1 is still served.
func TestMultiSensorSite(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-sensor site replays ~25 s of calls in real time; skipped with -short")
	}
	db := newSiteDB(t)
	dir := t.TempDir()
	start := time.Now().UTC().Truncate(time.Second)
	// Sensor 1: a call every 2 s, 6 s each (calls overlap for ~25 s).
	pcap1 := writeCapture(t, dir, "sensor1.pcap", simulate.Options{Calls: 10, CPS: 0.5, Duration: 6 * time.Second,
		Seed: 11, Start: start, Tones: [2]float64{400, 1000}})
	// Sensor 2: two long calls (listened to and paused).
	pcap2 := writeCapture(t, dir, "sensor2.pcap", simulate.Options{Calls: 2, CPS: 4, Duration: 16 * time.Second,
		Seed: 22, Start: start, Tones: [2]float64{1000, 2000}})

	key2, err := wire.GenerateAESKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kb, ib := key2.Base64()
	// Sensor 2 reaches the database through a proxy the test can cut (a
	// crash: no clean "stopped" mark, the heartbeat just goes stale).
	proxy := dbtest.StartProxy(t, db.addr)

	s1 := startSiteAgent(t, dir, 1, db, db.addr, "", "-r", pcap1, "--realtime")
	s2 := startSiteAgent(t, dir, 2, db, proxy.Addr(), "manager_aes_key = "+kb+"\nmanager_aes_iv = "+ib+"\n", "-r", pcap2, "--realtime")
	fe := startSiteAgent(t, dir, 3, db, db.addr, "sniffer = no\nsensor_manager_key = 2:"+kb+":"+ib+"\n")

	// listActiveCalls on the front end merges both sensors' calls.
	var ref2 string
	var merged activeCalls
	waitUntil(t, 30*time.Second, "listActiveCalls with calls of sensors 1 and 2", func() bool {
		merged = fe.active(t)
		ref2 = ""
		for _, c := range merged.Results {
			if c.Sensor == "2" && c.Connect != nil {
				ref2 = c.CallRef
			}
		}
		return merged.count("1") > 0 && ref2 != ""
	}, func() string { return fmt.Sprintf("last reply %+v\nfront end log:\n%s", merged, fe.log.String()) })
	if st := merged.status(); st["1"] != "ok" || st["2"] != "ok" {
		t.Errorf("sensor statuses %v, want 1 and 2 ok", st)
	}
	t.Logf("merged: %d calls (sensor 1: %d, sensor 2: %d); listening to %s on sensor 2", len(merged.Results), merged.count("1"), merged.count("2"), ref2)
	if fe.active(t).count("3") != 0 {
		t.Error("the front end (no capture) lists calls of its own")
	}

	// Live listening of sensor 2's call through the front end.
	ws := fe.listen(t, ref2, 2)
	defer ws.Close()
	if loud := ws.frames(t, 25, isLoud); loud != 25 {
		t.Fatalf("%d loud frames before the pause, want 25", loud)
	}
	// pausecall through the front end reaches sensor 2.
	if code, b := fe.api(t, "handleActiveCall", map[string]any{"command": "pausecall", "callRef": ref2, "sensorId": "2"}); code != http.StatusOK || !strings.Contains(string(b), `"success":true`) {
		t.Fatalf("pausecall through the front end: %d %s", code, b)
	}
	if !s2.paused(t, ref2) {
		t.Errorf("sensor 2's calls.json does not show %s paused", ref2)
	}
	if n := ws.frames(t, 25, isSilent); n != 25 {
		t.Errorf("%d silent frames after pausecall, want 25 in a row", n)
	}
	if code, b := fe.api(t, "handleActiveCall", map[string]any{"command": "unpausecall", "callRef": ref2, "sensorId": "2"}); code != http.StatusOK {
		t.Fatalf("unpausecall: %d %s", code, b)
	}
	if n := ws.frames(t, 10, isLoud); n != 10 {
		t.Errorf("%d loud frames after unpausecall, want 10", n)
	}
	if s2.paused(t, ref2) {
		t.Errorf("sensor 2 still shows %s paused", ref2)
	}
	ws.Close()

	// CDRs of both sensors, from the shared database, through the front end.
	var n1, n2, all int
	waitUntil(t, 60*time.Second, "CDRs of both sensors", func() bool {
		n1, n2, all = fe.cdrs(t, start, "1"), fe.cdrs(t, start, "2"), fe.cdrs(t, start, "")
		return n2 == 2 && n1 > 0 && all == n1+n2
	}, func() string { return fmt.Sprintf("sensor 1 %d, sensor 2 %d, all %d", n1, n2, all) })
	t.Logf("CDRs listed by the front end: sensor 1 %d, sensor 2 %d, all %d", n1, n2, all)

	// Sensor 2 dies: its database link is cut, then it stops (it cannot
	// mark itself stopped); the front end reports it offline once its
	// heartbeat is stale, answering for sensor 1 all along.
	proxy.Cut()
	killed := time.Now()
	s2.stop()
	var last activeCalls
	waitUntil(t, 60*time.Second, "sensor 2 offline", func() bool {
		last = fe.active(t)
		st := last.status()
		if st["1"] != "ok" {
			t.Errorf("sensor 1 status %q while sensor 2 is going down", st["1"])
		}
		return st["2"] == "offline"
	}, func() string { return fmt.Sprintf("last reply %+v", last) })
	took := time.Since(killed)
	t.Logf("sensor 2 offline %v after it died (bound %v: offline_after %v + heartbeat + list cache + 1 s rounding)", took.Round(10*time.Millisecond), offlineBound, siteOfflineAfter)
	// Generous margin for a loaded machine: the bound is the design's.
	if took > offlineBound+5*time.Second {
		t.Errorf("sensor 2 went offline %v after it died; the bound is %v", took, offlineBound)
	}
	if last.count("1") == 0 && fe.cdrs(t, start, "1") == 0 {
		t.Error("the front end no longer answers for sensor 1")
	}
	if n := fe.cdrs(t, start, "1"); n < n1 {
		t.Errorf("sensor 1 CDRs %d after sensor 2 died, had %d", n, n1)
	}
	// Listening to an offline sensor is refused, not waited for.
	if _, resp, err := websocket.DefaultDialer.Dial(fe.wsURL(ref2, 2), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("listen on offline sensor 2: err %v, response %v; want 503", err, resp)
	}
	if got := s2.wait(t); got != 0 {
		t.Logf("sensor 2 exit %d (its database was cut)", got)
	}
	for _, a := range []*siteAgent{s1, fe} {
		a.stop()
		if code := a.wait(t); code != 0 {
			t.Errorf("agent %d exit %d; log:\n%s", a.id, code, a.log.String())
		}
	}
}

// siteDB is a scratch database on the test MariaDB.
type siteDB struct {
	addr, user, pass, name string
}

func newSiteDB(t *testing.T) siteDB {
	t.Helper()
	dsn := dbtest.DSN(t)
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("bad %s: %v", dbtest.DSNEnv, err)
	}
	if mc.Net != "tcp" {
		t.Skipf("%s uses %s; the site test needs TCP", dbtest.DSNEnv, mc.Net)
	}
	if mc, err = mysql.ParseDSN(dbtest.Scratch(t, dsn, "pbx_site_")); err != nil {
		t.Fatal(err)
	}
	return siteDB{addr: mc.Addr, user: mc.User, pass: mc.Passwd, name: mc.DBName}
}

func writeCapture(t *testing.T, dir, name string, o simulate.Options) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := simulate.WritePcap(context.Background(), f, o); err != nil {
		f.Close()
		t.Fatalf("generate %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// siteAgent is one run() of the daemon in this process.
type siteAgent struct {
	id       int
	http     string // base URL
	cancel   context.CancelFunc
	done     chan int
	log      *syncBuffer
	stopOnce sync.Once
	code     int
	waited   bool
}

func startSiteAgent(t *testing.T, dir string, id int, db siteDB, dbAddr, extra string, args ...string) *siteAgent {
	t.Helper()
	host, port, err := net.SplitHostPort(dbAddr)
	if strings.Contains(dbAddr, ",") { // cluster nodes: mysqlhost = n1:p1,n2:p2,…
		host, port, err = dbAddr, "3306", nil
	}
	if err != nil {
		t.Fatal(err)
	}
	httpPort := testkit.FreePort(t)
	conf := filepath.Join(dir, fmt.Sprintf("agent%d.conf", id))
	text := fmt.Sprintf("[general]\nid_sensor = %d\nsensor_name = site-%d\nsipport = 5060\nspooldir = %s\n"+
		"managerip = 127.0.0.1\nmanagerport = %d\nhttp_bind = 127.0.0.1:%d\napi_disable_auth = yes\n"+
		"asterisk_manager_conf = %s\nmysqlhost = %s\nmysqlport = %s\nmysqldb = %s\nmysqlusername = %s\nmysqlpassword = %s\n"+
		"cdr_flush_interval = 200ms\nsensor_heartbeat = %s\nsensor_offline_after = %s\n%s",
		id, id, filepath.Join(dir, fmt.Sprintf("spool%d", id)), testkit.FreePort(t), httpPort, filepath.Join(dir, "none.conf"),
		host, port, db.name, db.user, db.pass, siteHeartbeat, siteOfflineAfter, extra)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &siteAgent{id: id, http: fmt.Sprintf("http://127.0.0.1:%d", httpPort), cancel: cancel, done: make(chan int, 1), log: &syncBuffer{}}
	go func() { a.done <- run(ctx, append([]string{"-config", conf}, args...), io.Discard, a.log) }()
	t.Cleanup(func() {
		a.stop()
		a.wait(t)
	})
	waitUntil(t, 20*time.Second, fmt.Sprintf("agent %d's HTTP server", id), func() bool {
		resp, err := http.Get(a.http + "/api/chunkplayer/index.html")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, a.log.String)
	return a
}

func (a *siteAgent) stop() { a.stopOnce.Do(a.cancel) }

// wait joins run() (bounded: a hung shutdown fails the test).
func (a *siteAgent) wait(t *testing.T) int {
	t.Helper()
	if a.waited {
		return a.code
	}
	select {
	case a.code = <-a.done:
		a.waited = true
	case <-time.After(90 * time.Second):
		t.Fatalf("agent %d did not stop; log:\n%s", a.id, a.log.String())
	}
	return a.code
}

func (a *siteAgent) api(t *testing.T, task string, params any) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"task": task, "params": params})
	resp, err := http.Post(a.http+"/php/api.php", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("agent %d api.php %s: %v", a.id, task, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// activeCalls is listActiveCalls' reply (the fields checked here).
type activeCalls struct {
	Success bool `json:"success"`
	Results []struct {
		CallRef string  `json:"callreference"`
		Sensor  string  `json:"id_sensor"`
		Connect *string `json:"connect_duration"`
	} `json:"results"`
	Sensors []struct {
		ID     string `json:"id_sensor"`
		Status string `json:"status"`
	} `json:"sensors"`
}

func (r activeCalls) count(sensor string) int {
	n := 0
	for _, c := range r.Results {
		if c.Sensor == sensor {
			n++
		}
	}
	return n
}

func (r activeCalls) status() map[string]string {
	m := map[string]string{}
	for _, s := range r.Sensors {
		m[s.ID] = s.Status
	}
	return m
}

func (a *siteAgent) active(t *testing.T) activeCalls {
	t.Helper()
	code, b := a.api(t, "listActiveCalls", map[string]any{})
	var r activeCalls
	if code != http.StatusOK {
		t.Fatalf("listActiveCalls: %d %s", code, b)
	}
	if err := json.Unmarshal(b, &r); err != nil || !r.Success {
		t.Fatalf("listActiveCalls: %v: %.300s", err, b)
	}
	return r
}

// cdrs is sql.php LISTING's total since from, of one sensor ("" = all).
func (a *siteAgent) cdrs(t *testing.T, from time.Time, sensor string) int {
	t.Helper()
	// The agents run with the default utc = no: dates are the process's
	// local time, in the database and in requests.
	q := url.Values{"task": {"LISTING"}, "module": {"CDR"}, "fdatefrom": {from.Add(-time.Minute).Local().Format("2006-01-02T15:04:05")}}
	if sensor != "" {
		q.Set("fsensor_id", sensor)
	}
	resp, err := http.Post(a.http+"/php/model/sql.php?"+q.Encode(), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatalf("sql.php: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Total   string `json:"total"`
		Results []struct {
			Sensor any `json:"id_sensor"`
		} `json:"results"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
		// The cdr tables appear with the sensors' first writes.
		return -1
	}
	for _, row := range r.Results {
		if s := fmt.Sprint(row.Sensor); sensor != "" && s != sensor {
			t.Errorf("fsensor_id=%s listed a CDR of sensor %s", sensor, s)
		}
	}
	n, _ := strconv.Atoi(r.Total)
	return n
}

// paused reads the agent's own dashboard JSON for the call's paused flag.
func (a *siteAgent) paused(t *testing.T, ref string) bool {
	t.Helper()
	var r struct {
		Calls []struct {
			CallRef string `json:"callref"`
			Paused  bool   `json:"paused"`
		} `json:"calls"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, a.http+"/api/chunkplayer/calls.json")), &r); err != nil {
		t.Fatalf("calls.json: %v", err)
	}
	for _, c := range r.Calls {
		if c.CallRef == ref {
			return c.Paused
		}
	}
	t.Fatalf("agent %d's calls.json lacks %s", a.id, ref)
	return false
}

func (a *siteAgent) wsURL(ref string, sensor int) string {
	return "ws" + strings.TrimPrefix(a.http, "http") + "/ws/listen?" + url.Values{"callref": {ref}, "sensor_id": {strconv.Itoa(sensor)}}.Encode()
}

// listener is a websocket client of /ws/listen.
type listener struct {
	c *websocket.Conn
}

func (a *siteAgent) listen(t *testing.T, ref string, sensor int) *listener {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(a.wsURL(ref, sensor), nil)
	if err != nil {
		t.Fatalf("listen %s on sensor %d: %v (%v)", ref, sensor, err, resp)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var st struct {
		Type   string `json:"type"`
		Remote bool   `json:"remote"`
		Reason string `json:"reason"`
	}
	if err := c.ReadJSON(&st); err != nil || st.Type != "start" || !st.Remote {
		c.Close()
		t.Fatalf("first message %+v (%v), want start of a remote call", st, err)
	}
	return &listener{c: c}
}

func (l *listener) Close() { _ = l.c.Close() }

// frames reads audio frames until n in a row satisfy want, and returns
// how many did (fewer when the stream ends or 1,000 frames pass).
func (l *listener) frames(t *testing.T, n int, want func(pcm []byte) bool) int {
	t.Helper()
	run := 0
	for range 1000 {
		_ = l.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		kind, b, err := l.c.ReadMessage()
		if err != nil {
			t.Errorf("websocket: %v", err)
			return run
		}
		if kind != websocket.BinaryMessage {
			continue
		}
		h, pcm, err := player.ParseFrame(b)
		if err != nil || h.Layout != player.LayoutStereo {
			t.Fatalf("bad frame %+v: %v", h, err)
		}
		if want(pcm) {
			run++
			if run == n {
				return run
			}
		} else {
			run = 0
		}
	}
	return run
}

func peak(pcm []byte) int {
	m := 0
	for i := 0; i+1 < len(pcm); i += 2 {
		v := int(int16(binary.LittleEndian.Uint16(pcm[i:])))
		m = max(m, v, -v)
	}
	return m
}

// The generated tones are loud; G.711 silence decodes to (nearly) zero.
func isLoud(pcm []byte) bool   { return peak(pcm) > 1000 }
func isSilent(pcm []byte) bool { return peak(pcm) <= 16 }

// waitUntil polls cond every 100 ms until it holds or d passes (then the
// test fails with what(); what is called only then).
func waitUntil(t *testing.T, d time.Duration, name string, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", name, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

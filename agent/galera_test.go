package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/dbtest"
	"pbx-agent/sniffer/simulate"
)

// TestGaleraSite is issue 23's site: a 3-node MariaDB Galera cluster on
// loopback, sensor 1 writing through node 1 and sensor 2 through node 2
// (each with the other nodes after it in mysqlhost), a front end
// (sniffer = no) reading through node 3, daily partitions (cdr_partition).
// While both sensors replay their calls in real time:
//   - node 1 is SIGKILLed: sensor 1 queues to its disk queue and fails over;
//   - the daily REORGANIZE PARTITION runs through node 3 several times.
//
// Every call of each sensor must then be listed exactly once through the
// front end's sql.php and api.php (generated / stored / duplicated = N/N/0).
// Then node 1 comes back, and the front end's node 3 is killed and restarted
// while the front end is asked for the CDRs every 200 ms: every answer must
// be complete.
func TestGaleraSite(t *testing.T) {
	if testing.Short() {
		t.Skip("replays ~20 s of calls and restarts two cluster nodes; skipped with -short")
	}
	cl := dbtest.Galera(t)
	name := cl.Scratch(t, "pbx_gsite_")
	db := siteDB{user: cl.User, pass: cl.Password, name: name}
	dir := t.TempDir()
	start := time.Now().UTC().Truncate(time.Second)
	const calls = 150
	pcaps := make([]string, 2)
	for i := range pcaps {
		pcaps[i] = writeCapture(t, dir, fmt.Sprintf("sensor%d.pcap", i+1), simulate.Options{Calls: calls, CPS: 8,
			Duration: 2 * time.Second, Seed: int64(31 + i), Start: start})
	}
	// Node 2 answers after applying what the others committed before.
	check, err := sql.Open("mysql", cl.DSN(2, name)+"&wsrep_sync_wait=1")
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	stored := func(sensor int) int {
		var n int
		if err := check.QueryRow("SELECT COUNT(*) FROM cdr WHERE id_sensor = ?", sensor).Scan(&n); err != nil {
			return -1 // tables not there yet, or node restarting
		}
		return n
	}
	certBefore, abortBefore := cl.Status(t, "wsrep_local_cert_failures"), cl.Status(t, "wsrep_local_bf_aborts")

	part := "cdr_partition = yes\n"
	s1 := startSiteAgent(t, dir, 1, db, cl.List(1, 2, 3), part, "-r", pcaps[0], "--realtime")
	s2 := startSiteAgent(t, dir, 2, db, cl.List(2, 3, 1), part, "-r", pcaps[1], "--realtime")
	fe := startSiteAgent(t, dir, 3, db, cl.List(3, 1, 2), part+"sniffer = no\n")

	// The daily partition job through node 3 while the sensors write.
	var wg sync.WaitGroup
	var rounds atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ddl := cl.Open(t, 3, name)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for d := 3; d <= 8; d++ {
			time.Sleep(time.Second)
			if err := cdr.EnsurePartitions(ctx, ddl, time.Now().AddDate(0, 0, d)); err != nil {
				t.Errorf("REORGANIZE PARTITION through node 3: %v", err)
				return
			}
			rounds.Add(1)
		}
	}()

	// Kill sensor 1's node once a quarter of its calls are stored.
	waitUntil(t, 60*time.Second, "a quarter of sensor 1's calls stored", func() bool { return stored(1) >= calls/4 },
		func() string { return fmt.Sprintf("stored %d; sensor 1 log:\n%s", stored(1), s1.log.String()) })
	atKill := stored(1)
	killed := time.Now()
	cl.Kill(t, 1)
	waitUntil(t, 60*time.Second, "sensor 1 writing again after node 1 died", func() bool { return stored(1) > atKill },
		func() string { return s1.log.String() })
	nextCDR := time.Since(killed)
	switched := logTime(t, s1.log.String(), "MySQL node") // "… failed; trying the next" or "… switched"
	for _, line := range strings.Split(s1.log.String(), "\n") {
		if strings.Contains(line, "component=cdr") || strings.Contains(line, "component=dbconn") {
			t.Logf("sensor 1: %.250s", line)
		}
	}
	t.Logf("node 1 SIGKILLed at %s with %d of sensor 1's %d calls stored; sensor 1 on node 2 %v later, its next CDR stored %v after the kill",
		killed.UTC().Format("15:04:05.000"), atKill, calls, switched.Sub(killed).Round(10*time.Millisecond), nextCDR.Round(10*time.Millisecond))

	// Every call of both sensors, exactly once, through the front end.
	var bySQL, byAPI map[int]map[string]int
	waitUntil(t, 120*time.Second, "every call of both sensors listed by the front end", func() bool {
		bySQL, byAPI = fe.cdrList(t, start), fe.voipCalls(t, start)
		return len(bySQL[1]) == calls && len(bySQL[2]) == calls && len(byAPI[1]) == calls && len(byAPI[2]) == calls
	}, func() string {
		return fmt.Sprintf("sql.php %d+%d, api.php %d+%d calls; sensor 1 log:\n%s",
			len(bySQL[1]), len(bySQL[2]), len(byAPI[1]), len(byAPI[2]), s1.log.String())
	})
	wg.Wait()
	for sensor := 1; sensor <= 2; sensor++ {
		dupSQL, dupAPI := dups(bySQL[sensor]), dups(byAPI[sensor])
		t.Logf("sensor %d: generated %d, stored %d (sql.php %d, api.php %d), duplicated %d/%d",
			sensor, calls, stored(sensor), len(bySQL[sensor]), len(byAPI[sensor]), dupSQL, dupAPI)
		if n := stored(sensor); n != calls || dupSQL != 0 || dupAPI != 0 {
			t.Errorf("sensor %d: %d cdr rows, %d/%d listed twice; want %d and none", sensor, n, dupSQL, dupAPI, calls)
		}
	}
	var retries float64
	for _, a := range []*siteAgent{s1, s2} {
		retries += a.metric(t, "pbx_cdr_conflict_retries_total")
		if lost := a.metric(t, "pbx_cdr_lost_total"); lost != 0 {
			t.Errorf("agent %d lost %v CDRs", a.id, lost)
		}
	}
	t.Logf("on nodes 2 and 3: %d certification failures, %d transactions aborted by replicated ones; batches retried by the sensors: %v; REORGANIZE rounds: %d",
		dbtest.Growth(certBefore, cl.Status(t, "wsrep_local_cert_failures")), dbtest.Growth(abortBefore, cl.Status(t, "wsrep_local_bf_aborts")), retries, rounds.Load())
	if rounds.Load() != 6 {
		t.Errorf("%d of 6 REORGANIZE rounds ran", rounds.Load())
	}

	// Node 1 back; then the front end's node dies and comes back while the
	// front end keeps being asked.
	restart := time.Now()
	cl.Start(t, 1)
	t.Logf("node 1 rejoined in %v", time.Since(restart).Round(100*time.Millisecond))
	var asked, failed atomic.Int32
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	pollers.Add(1)
	go func() {
		defer pollers.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			asked.Add(1)
			if n := fe.cdrs(t, start, ""); n != 2*calls {
				failed.Add(1)
				t.Logf("front end answered %d CDRs (want %d) with node 3 down or rejoining", n, 2*calls)
			}
		}
	}()
	time.Sleep(time.Second)
	cl.Kill(t, 3)
	time.Sleep(3 * time.Second)
	restart = time.Now()
	cl.Start(t, 3)
	rejoin := time.Since(restart)
	time.Sleep(time.Second)
	close(stop)
	pollers.Wait()
	t.Logf("front end: %d of %d listings complete while node 3 was killed and rejoined (in %v)",
		asked.Load()-failed.Load(), asked.Load(), rejoin.Round(100*time.Millisecond))
	if failed.Load() != 0 || asked.Load() < 10 {
		t.Errorf("front end: %d of %d listings failed or incomplete", failed.Load(), asked.Load())
	}

	for _, a := range []*siteAgent{s1, s2, fe} {
		a.stop()
		if code := a.wait(t); code != 0 {
			t.Errorf("agent %d exit %d; log:\n%s", a.id, code, a.log.String())
		}
	}
}

// logTime is the time of the first log line containing msg (the test
// fails when there is none).
func logTime(t *testing.T, log, msg string) time.Time {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		if v, ok := strings.CutPrefix(line, "time="); ok {
			ts, _, _ := strings.Cut(v, " ")
			if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				return tm
			}
		}
	}
	t.Errorf("no %q in the log:\n%s", msg, log)
	return time.Time{}
}

func dups(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c - 1
	}
	return n
}

// cdrList is sql.php LISTING since from: per sensor, how often each call
// (fbasename) is listed.
func (a *siteAgent) cdrList(t *testing.T, from time.Time) map[int]map[string]int {
	t.Helper()
	q := url.Values{"task": {"LISTING"}, "module": {"CDR"}, "limit": {"5000"},
		"fdatefrom": {from.Add(-time.Minute).Local().Format("2006-01-02T15:04:05")}} // utc = no: local dates
	var r struct {
		Results []struct {
			Sensor    any    `json:"id_sensor"`
			Fbasename string `json:"fbasename"`
		} `json:"results"`
	}
	if !a.getJSON(t, http.MethodPost, "/php/model/sql.php?"+q.Encode(), nil, &r) {
		return nil
	}
	out := map[int]map[string]int{}
	for _, row := range r.Results {
		s, _ := strconv.Atoi(fmt.Sprint(row.Sensor))
		if out[s] == nil {
			out[s] = map[string]int{}
		}
		out[s][row.Fbasename]++
	}
	return out
}

// voipCalls is api.php getVoipCalls since from: per sensor, how often each
// call (callId) is listed.
func (a *siteAgent) voipCalls(t *testing.T, from time.Time) map[int]map[string]int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"task": "getVoipCalls", "params": map[string]any{
		"startTime": from.Add(-time.Minute).Local().Format("2006-01-02 15:04:05")}}) // utc = no: local dates
	var r struct {
		CDR []struct {
			Sensor string `json:"id_sensor"`
			CallID string `json:"callId"`
		} `json:"cdr"`
	}
	if !a.getJSON(t, http.MethodPost, "/php/api.php", body, &r) {
		return nil
	}
	out := map[int]map[string]int{}
	for _, c := range r.CDR {
		s, _ := strconv.Atoi(c.Sensor)
		if out[s] == nil {
			out[s] = map[string]int{}
		}
		out[s][c.CallID]++
	}
	return out
}

// getJSON sends a request to the agent's web server and decodes a 200
// answer into v; false for any other answer (tables not created yet).
func (a *siteAgent) getJSON(t *testing.T, method, path string, body []byte, v any) bool {
	t.Helper()
	req, err := http.NewRequest(method, a.http+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("agent %d %s: %v", a.id, path, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// metric reads one unlabelled sample from the agent's /metrics.
func (a *siteAgent) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(a.http + "/metrics")
	if err != nil {
		t.Fatalf("agent %d /metrics: %v", a.id, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("agent %d /metrics has no %s", a.id, name)
	return 0
}

package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/agent/dbconn"
	"pbx-agent/agent/dbtest"
	"pbx-agent/sniffer/call"
)

// galeraCDR is sampleCDR(i) with User-Agents and a SIP response that every
// writer of TestGaleraConcurrentWriters inserts for the first time at about
// the same moment, each through its own node.
func galeraCDR(i int, run string) *call.CDR {
	c := sampleCDR(i)
	c.CallerUA = fmt.Sprintf("caller-ua-%s-%d", run, i/2)
	c.CalledUA = fmt.Sprintf("called-ua-%s-%d", run, i/3)
	c.LastSIPResponseNum = 603
	c.LastSIPResponse = fmt.Sprintf("603 Declined %s-%d", run, i/4)
	return c
}

// setGlobal sets a global variable on every node and restores it when the
// test ends.
func setGlobal(t *testing.T, cl *dbtest.Cluster, name, value string) {
	t.Helper()
	for n := 1; n <= len(cl.Addrs); n++ {
		db := cl.Open(t, n, "")
		var old string
		if err := db.QueryRow("SELECT @@GLOBAL." + name).Scan(&old); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("SET GLOBAL " + name + " = " + value); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if d, err := sql.Open("mysql", cl.DSN(n, "")); err == nil {
				_, _ = d.Exec("SET GLOBAL " + name + " = " + old)
				d.Close()
			}
		})
	}
}

// TestGaleraConcurrentWriters: three writers (three sensors), each through
// its own node of the Galera cluster, write the same new User-Agents and
// SIP responses at once while the daily REORGANIZE PARTITION runs through
// node 3 (cdr_partition). The server's own retry of autocommit statements
// is off (wsrep_retry_autocommit = 0), so certification conflicts reach the
// writer as error 1213: every CDR must be stored exactly once and every
// lookup string once, pointing at the right row.
func TestGaleraConcurrentWriters(t *testing.T) {
	cl := dbtest.Galera(t)
	name := cl.Scratch(t, "pbx_gal_")
	setGlobal(t, cl, "wsrep_retry_autocommit", "0")
	const perWriter = 600
	run := fmt.Sprint(time.Now().UnixNano() % 1e6)

	certBefore, abortBefore := cl.Status(t, "wsrep_local_cert_failures"), cl.Status(t, "wsrep_local_bf_aborts")
	writers := make([]*Writer, 3)
	for i := range writers {
		o := testOptions(dsnOn(cl, name, i+1), t.TempDir())
		o.IDSensor, o.Partition, o.RawUA, o.BatchSize = i+1, true, true, 20
		writers[i] = startWriter(t, o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, w := range writers { // schema in place before the race
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perWriter {
				if err := w.Enqueue(galeraCDR(i, run)); err != nil {
					t.Error(err)
				}
				if i%50 == 49 {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	// The daily partition job, a few days at a time, while they write.
	ddl := cl.Open(t, 3, name)
	reorganized := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for d := 3; d <= 8; d++ {
			if err := EnsurePartitions(ctx, ddl, time.Now().AddDate(0, 0, d)); err != nil {
				t.Errorf("REORGANIZE PARTITION through node 3: %v", err)
				return
			}
			reorganized++
			time.Sleep(50 * time.Millisecond)
		}
	}()
	close(start)
	wg.Wait()
	for i, w := range writers {
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("writer %d: %v", i+1, err)
		}
	}

	// wsrep_sync_wait: node 3 answers only after applying what the other
	// nodes committed before the query (Galera applies asynchronously).
	db := openDB(t, cl.DSN(3, name)+"&wsrep_sync_wait=1")
	var retries uint64
	for i, w := range writers {
		s := w.Stats()
		retries += s.ConflictRetries
		if s.Lost != 0 || s.Rejected != 0 || s.DiskQueue != 0 || s.Written != perWriter {
			t.Errorf("writer %d: written %d of %d, lost %d, rejected %d, %d left on disk", i+1, s.Written, perWriter, s.Lost, s.Rejected, s.DiskQueue)
		}
		stored := count(t, db, "SELECT COUNT(*) FROM cdr WHERE id_sensor = ?", i+1)
		distinct := count(t, db, "SELECT COUNT(DISTINCT n.fbasename) FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID AND n.calldate = c.calldate WHERE c.id_sensor = ?", i+1)
		t.Logf("sensor %d (node %d): generated %d, stored %d, duplicated %d; conflict retries %d, spilled %d",
			i+1, i+1, perWriter, stored, stored-distinct, s.ConflictRetries, s.Spilled)
		if stored != perWriter || distinct != perWriter {
			t.Errorf("sensor %d: %d rows for %d distinct calls, want %d and %d", i+1, stored, distinct, perWriter, perWriter)
		}
	}
	// Each lookup string exactly once, and every CDR points at its own.
	wantUA := perWriter/2 + (perWriter+2)/3
	if n := count(t, db, "SELECT COUNT(*) FROM cdr_ua WHERE ua LIKE ?", "%-ua-"+run+"-%"); n != wantUA {
		t.Errorf("cdr_ua has %d rows of this run, want %d", n, wantUA)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM cdr_sip_response WHERE lastSIPresponse LIKE ?", "603 Declined "+run+"-%"); n != (perWriter+3)/4 {
		t.Errorf("cdr_sip_response has %d rows of this run, want %d", n, (perWriter+3)/4)
	}
	rows, err := db.Query("SELECT n.fbasename, a.ua, b.ua, r.lastSIPresponse FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID AND n.calldate = c.calldate " +
		"JOIN cdr_ua a ON a.id = c.a_ua_id JOIN cdr_ua b ON b.id = c.b_ua_id JOIN cdr_sip_response r ON r.id = c.lastSIPresponse_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked := 0
	for rows.Next() {
		var base, a, b, r string
		if err := rows.Scan(&base, &a, &b, &r); err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(strings.TrimPrefix(base, "gensip-1-"), "%d", &i); err != nil {
			t.Fatalf("fbasename %q", base)
		}
		want := galeraCDR(i, run)
		if a != want.CallerUA || b != want.CalledUA || r != want.LastSIPResponse {
			t.Errorf("call %d points at %q/%q/%q, want %q/%q/%q", i, a, b, r, want.CallerUA, want.CalledUA, want.LastSIPResponse)
		}
		checked++
	}
	if checked != 3*perWriter {
		t.Errorf("%d CDRs joined to their lookups, want %d", checked, 3*perWriter)
	}
	t.Logf("on the nodes: %d certification failures, %d transactions aborted by replicated ones; batches retried by the writers: %d; partition rounds: %d",
		dbtest.Growth(certBefore, cl.Status(t, "wsrep_local_cert_failures")), dbtest.Growth(abortBefore, cl.Status(t, "wsrep_local_bf_aborts")), retries, reorganized)
	if reorganized != 6 {
		t.Errorf("%d REORGANIZE rounds of 6", reorganized)
	}
}

// dsnOn is the DSN of database name through node n first, then the others
// (mysqlhost = nN,…).
func dsnOn(cl *dbtest.Cluster, name string, n int) string {
	order := []int{n}
	for m := 1; m <= len(cl.Addrs); m++ {
		if m != n {
			order = append(order, m)
		}
	}
	return fmt.Sprintf("%s:%s@%s(%s)/%s", cl.User, cl.Password, dbconn.Net, cl.List(order...), name)
}

package cdr

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// dumpTables returns every row of the tables as JSON lines, columns in table
// order, values as MySQL returns them as text (NULL as null).
func dumpTables(tb testing.TB, db *sql.DB, tables ...string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	for _, t := range tables {
		rows, err := db.Query("SELECT * FROM `" + t + "` ORDER BY 1, 2")
		if err != nil {
			tb.Fatalf("dump %s: %v", t, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			buf.WriteString(`{"_table":`)
			b, _ := json.Marshal(t)
			buf.Write(b)
			for i, c := range cols {
				if t == "cdr" && vals[i] == nil {
					continue // cdr has ~180 columns, most NULL: keep the golden file readable
				}
				buf.WriteByte(',')
				b, _ = json.Marshal(c)
				buf.Write(b)
				buf.WriteByte(':')
				if vals[i] == nil {
					buf.WriteString("null")
				} else {
					b, _ = json.Marshal(string(vals[i]))
					buf.Write(b)
				}
			}
			buf.WriteString("}\n")
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		rows.Close()
	}
	return buf.Bytes()
}

func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	testkit.Golden(tb, filepath.Join("testdata", name), got, *update)
}

// TestWriterGolden writes a few CDRs and REGISTERs and compares every row
// with testdata/rows.golden.jsonl.
func TestWriterGolden(t *testing.T) {
	dsn := scratchDB(t, testDSN(t))
	w := startWriter(t, testOptions(dsn, t.TempDir()))
	for i := range 3 {
		if err := w.Enqueue(sampleCDR(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A correlated call with its quality series (cdr_asterisk, cdr_rtp_series).
	c := sampleCDR(3)
	c.Streams[0].Series = rtp.Series{Start: c.Streams[0].FirstTime.Truncate(time.Second), Step: 1,
		Points: []rtp.Point{{T: 0, Received: 4, Jitter: 0.2, MOS: 4.5}, {T: 1, Received: 48, Lost: 2, Jitter: 1.7, MOS: 4.5}}}
	if err := w.EnqueueCorrelated(c, &Asterisk{Linkedid: "1795560694.0", Uniqueid: "1795560694.1", Channel: "PJSIP/1002-00000001",
		HangupCause: 16, HangupCauseText: "Normal Clearing", Context: "from-internal", Exten: "1002", Match: "callid"}); err != nil {
		t.Fatal(err)
	}
	w.Enqueue(sampleBusy(0))
	w.EnqueueRegister(sampleRegister(0, call.RegOK))
	failed := sampleRegister(1, call.RegFailed)
	failed.LastResponseNum, failed.LastResponse = 403, `403 Forbidden; Warning: 399 pbx "bad password"`
	w.EnqueueRegister(failed)
	flush(t, w)
	db := openDB(t, dsn)
	got := dumpTables(t, db, "cdr", "cdr_next", "cdr_rtp", "cdr_sipresp", "register_state", "register_failed",
		"cdr_ua", "cdr_sip_response", "cdr_reason", "cdr_asterisk", "cdr_rtp_series")
	golden(t, "rows.golden.jsonl", got)

	s := w.Stats()
	if s.Written != 7 || s.Rows["cdr"] != 5 || s.Rows["cdr_rtp"] != 8 || s.Rows["register_failed"] != 1 {
		t.Errorf("stats = %+v", s)
	}
	// The sensors row is agent/sensors' (Registry): the writer leaves it alone.
	if n := count(t, db, "SELECT COUNT(*) FROM sensors"); n != 0 {
		t.Errorf("the CDR writer wrote %d sensors rows, want none", n)
	}
}

// TestWriterExactlyOnce enqueues the same calls twice (as after an agent
// restart replaying the same capture) and checks each is stored once.
func TestWriterExactlyOnce(t *testing.T) {
	dsn := scratchDB(t, testDSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 2 {
		w := startWriter(t, testOptions(dsn, t.TempDir()))
		for i := range 20 {
			w.Enqueue(sampleCDR(i))
			w.Enqueue(sampleCDR(i)) // same call twice in one batch
		}
		w.EnqueueRegister(sampleRegister(0, call.RegOK))
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		s := w.Stats()
		wantWritten := uint64(21)
		if round == 1 {
			wantWritten = 0
		}
		if s.Written != wantWritten {
			t.Errorf("round %d: written = %d, want %d", round, s.Written, wantWritten)
		}
	}
	db := openDB(t, dsn)
	if n := count(t, db, "SELECT COUNT(*) FROM cdr"); n != 20 {
		t.Errorf("cdr rows = %d, want 20", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM cdr_rtp"); n != 40 {
		t.Errorf("cdr_rtp rows = %d, want 40", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM register_state"); n != 1 {
		t.Errorf("register_state rows = %d, want 1", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM (SELECT fbasename FROM cdr_next GROUP BY fbasename HAVING COUNT(*) > 1) d"); n != 0 {
		t.Errorf("%d Call-IDs stored more than once", n)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	for _, partition := range []bool{false, true} {
		dsn := scratchDB(t, testDSN(t))
		db := openDB(t, dsn)
		ctx := context.Background()
		o := schemaOptions{partition: partition, now: time.Now()}
		for i := range 2 {
			if err := migrate(ctx, db, o); err != nil {
				t.Fatalf("partition=%v run %d: %v", partition, i, err)
			}
		}
		v, err := schemaVersion(ctx, db)
		if err != nil || v != SchemaVersion {
			t.Errorf("schema version = %d, %v; want %d", v, err, SchemaVersion)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM `system` WHERE `type` = ?", schemaVersionType); n != 1 {
			t.Errorf("version rows = %d, want 1", n)
		}
		if partition {
			// today's and the next two days' partitions exist, plus pmax.
			if n := count(t, db, "SELECT COUNT(*) FROM information_schema.partitions WHERE table_schema = DATABASE() AND table_name = 'cdr'"); n != 4 {
				t.Errorf("cdr partitions = %d, want 4", n)
			}
		}
	}
}

func TestWriterPartitioned(t *testing.T) {
	dsn := scratchDB(t, testDSN(t))
	o := testOptions(dsn, t.TempDir())
	o.Partition = true
	w := startWriter(t, o)
	now := time.Now().UTC()
	for i := range 5 {
		c := sampleCDR(i)
		if i%2 == 0 { // today and the far past both land somewhere
			shift := now.Sub(c.CallDate)
			c.CallDate, c.CallEnd = c.CallDate.Add(shift), c.CallEnd.Add(shift)
		}
		w.Enqueue(c)
	}
	flush(t, w)
	db := openDB(t, dsn)
	if n := count(t, db, "SELECT COUNT(*) FROM cdr c JOIN cdr_rtp r ON r.cdr_ID = c.ID AND r.calldate = c.calldate"); n != 10 {
		t.Errorf("joined cdr_rtp rows = %d, want 10", n)
	}
}

// TestBadDatabase: wrong password, read-only user and a database that does
// not exist. The writer keeps accepting CDRs (to disk), counts the errors,
// and writes everything once the problem is fixed (here: the database is
// created on the fly).
func TestBadDatabase(t *testing.T) {
	base := testDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("wrong password", func(t *testing.T) {
		dsn := strings.Replace(scratchDB(t, base), "pbx:pbx@", "pbx:wrong@", 1)
		w := startWriter(t, testOptions(dsn, t.TempDir()))
		for i := range 3 {
			if err := w.Enqueue(sampleCDR(i)); err != nil {
				t.Fatal(err)
			}
		}
		err := w.Flush(ctx)
		s := w.Stats()
		if err == nil || s.DBErrors == 0 || s.DBUp || s.DiskQueue != 3 || s.Lost != 0 {
			t.Errorf("flush err = %v, stats = %+v; want error, db errors, 3 on disk, none lost", err, s)
		}
	})

	t.Run("missing database is created", func(t *testing.T) {
		dsn := scratchDB(t, base)
		db := openDB(t, dsn)
		if _, err := db.Exec("DROP DATABASE " + dbName(t, dsn)); err != nil {
			t.Fatal(err)
		}
		w := startWriter(t, testOptions(dsn, t.TempDir()))
		w.Enqueue(sampleCDR(0))
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if s := w.Stats(); s.Written != 1 {
			t.Errorf("written = %d, want 1", s.Written)
		}
	})

	t.Run("read-only user", func(t *testing.T) {
		dsn := scratchDB(t, base)
		name := dbName(t, dsn)
		db := openDB(t, dsn)
		// Schema made by a privileged run first, as an operator would.
		if err := migrate(ctx, db, schemaOptions{now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		user := "ro_" + name[len(name)-8:]
		for _, q := range []string{
			"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'ro'",
			"GRANT SELECT ON `" + name + "`.* TO '" + user + "'@'%'",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { db.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
		roDSN := strings.Replace(dsn, "pbx:pbx@", user+":ro@", 1)
		w := startWriter(t, testOptions(roDSN, t.TempDir()))
		w.Enqueue(sampleCDR(0))
		err := w.Flush(ctx)
		s := w.Stats()
		if err == nil || s.DBErrors == 0 || s.DiskQueue != 1 {
			t.Errorf("flush err = %v, stats = %+v; want an error and the CDR kept on disk", err, s)
		}
	})
}

func dbName(tb testing.TB, dsn string) string {
	i := strings.LastIndexByte(dsn, '/')
	name := dsn[i+1:]
	if j := strings.IndexByte(name, '?'); j >= 0 {
		name = name[:j]
	}
	return name
}

// TestQueueCap: when the on-disk queue reaches its cap (as with a full
// disk), records are lost, counted, and Enqueue says so.
func TestQueueCap(t *testing.T) {
	o := testOptions("nobody:x@tcp(127.0.0.1:1)/none", t.TempDir())
	o.QueueMaxBytes = 4096
	o.QueueSize = 1
	w, err := New(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var lastErr error
	for i := range 20 {
		if err := w.Enqueue(sampleCDR(i)); err != nil {
			lastErr = err
		}
	}
	s := w.Stats()
	if !errors.Is(lastErr, ErrQueueFull) || s.Lost == 0 || s.Spilled == 0 || s.Spilled+s.Lost+uint64(s.MemoryQueue) != 20 {
		t.Errorf("last error %v, stats %+v: want ErrQueueFull and spilled+lost+memory = 20", lastErr, s)
	}
}

func TestMetrics(t *testing.T) {
	o := testOptions("nobody:x@tcp(127.0.0.1:1)/none", t.TempDir())
	w, err := New(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	reg := prometheus.NewPedanticRegistry()
	if err := w.Register(reg); err != nil {
		t.Fatal(err)
	}
	w.Enqueue(sampleCDR(0))
	want := `
# HELP pbx_cdr_enqueued_total Records (CDRs and REGISTERs) handed to the writer.
# TYPE pbx_cdr_enqueued_total counter
pbx_cdr_enqueued_total 1
# HELP pbx_cdr_memory_queue_depth Records waiting in the in-memory queue.
# TYPE pbx_cdr_memory_queue_depth gauge
pbx_cdr_memory_queue_depth 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pbx_cdr_enqueued_total", "pbx_cdr_memory_queue_depth"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 15 {
		t.Errorf("gathered %d metrics (%v), want at least 15", n, err)
	}
}

// TestOnlyAnsweredOnlyRTP: cdronlyanswered leaves out the calls that were
// not answered, cdronlyrtp those without an RTP stream, as VoIPmonitor's
// (calltable.cpp, saveToDb); REGISTERs are not concerned.
func TestOnlyAnsweredOnlyRTP(t *testing.T) {
	answered := sampleCDR(0) // answered, RTP both ways
	unanswered := sampleCDR(1)
	unanswered.ConnectTime = time.Time{}
	noRTP := sampleCDR(2)
	noRTP.Streams = nil
	for _, tc := range []struct {
		name                  string
		onlyAnswered, onlyRTP bool
		queued, skipped       uint64
	}{
		{"off", false, false, 4, 0},
		{"cdronlyanswered", true, false, 3, 1},
		{"cdronlyrtp", false, true, 3, 1},
		{"both", true, true, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions("nobody:x@tcp(127.0.0.1:1)/none", t.TempDir())
			o.OnlyAnswered, o.OnlyRTP = tc.onlyAnswered, tc.onlyRTP
			w, err := New(o, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for _, c := range []*call.CDR{answered, unanswered, noRTP} {
				if err := w.Enqueue(c); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.EnqueueRegister(&call.Register{ToNum: "1001"}); err != nil {
				t.Fatal(err)
			}
			if s := w.Stats(); s.Enqueued != tc.queued || s.Skipped != tc.skipped {
				t.Errorf("enqueued %d, skipped %d; want %d, %d", s.Enqueued, s.Skipped, tc.queued, tc.skipped)
			}
		})
	}
}

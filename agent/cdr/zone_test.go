package cdr

import (
	"context"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/call"
)

// TestDriverConfigZone: the connection writes time.Time arguments in the
// zone of stored times (the driver's Loc); with UTC the session is +00:00
// as before, with a local zone it keeps the server's, as VoIPmonitor's
// (sql_db.cpp:1900).
func TestDriverConfigZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name   string
		dsn    string // query of the DSN
		loc    *time.Location
		wantTZ string
	}{
		{"utc", "", time.UTC, "'+00:00'"},
		{"local zone", "", ny, ""},
		// mysql_timezone (in the DSN) wins, as VoIPmonitor's only SET time_zone.
		{"mysql_timezone with utc", "?time_zone=%27%2B02%3A00%27", time.UTC, "'+02:00'"},
		{"mysql_timezone with a local zone", "?time_zone=%27Europe%2FPrague%27", ny, "'Europe/Prague'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc, err := driverConfig("u:p@tcp(db:3306)/voipmonitor"+tt.dsn, tt.loc)
			if err != nil {
				t.Fatal(err)
			}
			if mc.Loc != tt.loc || mc.Params["time_zone"] != tt.wantTZ || !mc.InterpolateParams {
				t.Errorf("Loc %v time_zone %q interpolate %v; want %v %q true", mc.Loc, mc.Params["time_zone"], mc.InterpolateParams, tt.loc, tt.wantTZ)
			}
		})
	}
}

// TestWriterZone: with Options.Location every datetime the writer fills
// (cdr calldate/callend, the partitioned children's calldate,
// register_state/register_failed created_at, system.cdatetime) holds that
// zone's wall clock, as VoIPmonitor's with utc = no, and the daily
// partitions follow the zone's dates. In New York's DST fall-back hour two
// instants an hour apart are stored as the same wall clock (01:30), as
// VoIPmonitor's localtime_r does: the column cannot tell them apart, and a
// reader takes the earlier (EDT) one.
func TestWriterZone(t *testing.T) {
	ny, err1 := time.LoadLocation("America/New_York")
	kol, err2 := time.LoadLocation("Asia/Kolkata")
	if err1 != nil || err2 != nil {
		t.Skip("no zoneinfo")
	}
	dsn := testDSN(t)
	fallEDT := time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC) // 01:30 EDT
	fallEST := fallEDT.Add(time.Hour)                        // 01:30 EST
	tests := []struct {
		name string
		loc  *time.Location
		at   []time.Time // calldates
		want []string    // stored calldate, callend = calldate + 10.934 s
	}{
		{"utc", time.UTC, []time.Time{t0}, []string{"2024-01-01 00:00:00.000"}},
		{"new york", ny, []time.Time{t0, fallEDT, fallEST}, []string{"2023-12-31 19:00:00.000", "2024-11-03 01:30:00.000", "2024-11-03 01:30:00.000"}},
		{"kolkata", kol, []time.Time{t0}, []string{"2024-01-01 05:30:00.000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := scratchDB(t, dsn)
			o := testOptions(scratch, t.TempDir())
			o.Partition, o.Location = true, tt.loc
			w := startWriter(t, o)
			for i, at := range tt.at {
				c := sampleCDR(i)
				c.CallDate, c.CallEnd = at, at.Add(ms(10934))
				if err := w.Enqueue(c); err != nil {
					t.Fatal(err)
				}
				if err := w.EnqueueRegister(&call.Register{ToNum: "1001", State: call.RegOK, Time: at}); err != nil {
					t.Fatal(err)
				}
				if err := w.EnqueueRegister(&call.Register{ToNum: "1002", State: call.RegFailed, Time: at}); err != nil {
					t.Fatal(err)
				}
			}
			flush(t, w)
			db := openDB(t, scratch)
			col := func(q string) []string { return queryStrings(t, db, q) }
			var wantEnd []string
			for _, s := range tt.want {
				tm, _ := time.Parse("2006-01-02 15:04:05.000", s)
				wantEnd = append(wantEnd, tm.Add(ms(10934)).Format("2006-01-02 15:04:05.000"))
			}
			for _, c := range []struct {
				what string
				got  []string
				want []string
			}{
				{"cdr.calldate", col("SELECT CAST(calldate AS CHAR) FROM cdr ORDER BY ID"), tt.want},
				{"cdr.callend", col("SELECT CAST(callend AS CHAR) FROM cdr ORDER BY ID"), wantEnd},
				{"cdr_next.calldate", col("SELECT CAST(n.calldate AS CHAR) FROM cdr_next n ORDER BY n.cdr_ID"), tt.want},
				{"cdr_rtp.calldate", col("SELECT CAST(MIN(r.calldate) AS CHAR) FROM cdr_rtp r GROUP BY r.cdr_ID ORDER BY r.cdr_ID"), tt.want},
				{"register_state.created_at", col("SELECT CAST(created_at AS CHAR) FROM register_state ORDER BY ID"), tt.want},
				{"register_failed.created_at", col("SELECT CAST(created_at AS CHAR) FROM register_failed ORDER BY ID"), tt.want},
			} {
				if strings.Join(c.got, ",") != strings.Join(c.want, ",") {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			// The first partition is today in the zone; system.cdatetime
			// is now in the zone.
			today := "p" + time.Now().In(tt.loc).Format("060102")
			if n := count(t, db, "SELECT COUNT(*) FROM information_schema.partitions WHERE table_schema = DATABASE() AND table_name = 'cdr' AND partition_name = ?", today); n != 1 {
				t.Errorf("no partition %s (today in %s): %q", today, tt.loc, col("SELECT partition_name FROM information_schema.partitions WHERE table_schema = DATABASE() AND table_name = 'cdr'"))
			}
			saved := col("SELECT CAST(cdatetime AS CHAR) FROM `system` WHERE `type` = '" + schemaVersionType + "'")
			if len(saved) != 1 {
				t.Fatalf("system version rows: %q", saved)
			}
			if at, err := time.ParseInLocation("2006-01-02 15:04:05", saved[0], tt.loc); err != nil || time.Since(at).Abs() > time.Minute {
				t.Errorf("system.cdatetime %q (%v), want now in %s", saved[0], err, tt.loc)
			}
		})
	}
}

// TestCleanZone: cleandatabase counts days in the zone of the stored
// times. In Kolkata (+05:30) with cleandatabase_cdr = 3 a CDR of 23:50
// three days back goes and one of 00:10 two days back stays: the cutoff is
// the local midnight, not UTC's (which, moved into the connection's zone,
// was 05:30 and took the 00:10 call too).
func TestCleanZone(t *testing.T) {
	kol, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip(err)
	}
	dsn := scratchDB(t, testDSN(t))
	o := testOptions(dsn, t.TempDir())
	o.Location = kol
	w := startWriter(t, o)
	now := time.Now().In(kol)
	at := func(days, h, m int) time.Time {
		y, mo, d := now.AddDate(0, 0, days).Date()
		return time.Date(y, mo, d, h, m, 0, 0, kol)
	}
	for i, c := range []time.Time{at(-3, 23, 50), at(-2, 0, 10)} {
		cdr := sampleCDR(i)
		cdr.CallDate, cdr.CallEnd = c, c.Add(time.Second)
		if err := w.Enqueue(cdr); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, w)
	db := openDB(t, dsn)
	// The writer's own connection, as its cleaner uses: its Loc is Kolkata.
	res, err := Clean(context.Background(), w.db, CleanOptions{CDR: 3}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	var left string
	if err := db.QueryRow("SELECT COALESCE(GROUP_CONCAT(CAST(calldate AS CHAR)), '') FROM cdr").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if want := at(-2, 0, 10).Format("2006-01-02 15:04:05.000"); res.Rows != 1 || left != want {
		t.Errorf("deleted %d rows, left %q; want 1 deleted and %q left", res.Rows, left, want)
	}
}

// TestWriterMySQLTimezone: mysql_timezone (time_zone in the DSN) is the
// writer's session time_zone, also with utc = yes, where the writer would
// set +00:00; what it stores does not move (no statement of the writer
// reads the session zone: calldate is the Location's wall clock).
func TestWriterMySQLTimezone(t *testing.T) {
	scratch := scratchDB(t, testDSN(t))
	sep := "?"
	if strings.Contains(scratch, "?") {
		sep = "&"
	}
	o := testOptions(scratch+sep+"time_zone=%27%2B02%3A00%27", t.TempDir())
	o.Location = time.UTC
	w := startWriter(t, o)
	c := sampleCDR(0)
	c.CallDate, c.CallEnd = t0, t0.Add(ms(10934))
	if err := w.Enqueue(c); err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	var tz string
	if err := w.db.QueryRow("SELECT @@session.time_zone").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	if tz != "+02:00" {
		t.Errorf("writer's session time_zone %q, want +02:00", tz)
	}
	got := queryStrings(t, openDB(t, scratch), "SELECT CAST(calldate AS CHAR) FROM cdr")
	if want := "2024-01-01 00:00:00.000"; len(got) != 1 || got[0] != want {
		t.Errorf("calldate %q, want %q (unchanged by the session zone)", got, want)
	}
}

package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// parts builds partitions of table named by day ("261201") with size MB each.
func parts(table string, mb int64, names ...string) []partition {
	var out []partition
	for _, n := range names {
		d, ok := parsePartDay("p" + n)
		if !ok {
			panic(n)
		}
		out = append(out, partition{table: table, name: "p" + n, day: d, bytes: mb << 20})
	}
	return out
}

func names(p []partition) []string {
	var out []string
	for _, x := range p {
		out = append(out, x.table+"."+x.name)
	}
	return out
}

var cleanToday = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

// TestPlanAge: which partitions cleaning by days drops on 2026-12-07.
func TestPlanAge(t *testing.T) {
	week := parts("cdr", 1, "261130", "261201", "261202", "261203", "261204", "261205", "261206", "261207", "261208", "261209")
	tests := []struct {
		name string
		in   []partition
		days int
		want []string
	}{
		{name: "0 keeps all", in: week, days: 0},
		{name: "negative keeps all", in: week, days: -3},
		// VoIPmonitor: limit p + (now - days), that day and older go.
		{name: "1 day: all before today", in: week, days: 1,
			want: []string{"cdr.p261130", "cdr.p261201", "cdr.p261202", "cdr.p261203", "cdr.p261204", "cdr.p261205", "cdr.p261206"}},
		{name: "3 days", in: week, days: 3, want: []string{"cdr.p261130", "cdr.p261201", "cdr.p261202", "cdr.p261203", "cdr.p261204"}},
		{name: "7 days", in: week, days: 7, want: []string{"cdr.p261130"}},
		{name: "30 days: nothing that old", in: week, days: 30},
		{name: "hourly partitions by their day", in: parts("rtp_stat", 1, "26120523", "26120600", "26120700"), days: 1,
			want: []string{"rtp_stat.p26120523", "rtp_stat.p26120600"}},
		{name: "newest partition kept even when old", in: parts("sip_msg", 1, "261101", "261102"), days: 1, want: []string{"sip_msg.p261101"}},
		{name: "a year back over the new year", in: parts("cdr", 1, "251231", "260101", "261206"), days: 341, want: []string{"cdr.p251231"}},
		{name: "the limit day itself goes", in: parts("cdr", 1, "251231", "260101", "261206"), days: 340, want: []string{"cdr.p251231", "cdr.p260101"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(planAge(tc.in, tc.days, cleanToday)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPlanSize: whole days go, oldest first, until the rest fits; never
// today, a later day or a table's newest partition.
func TestPlanSize(t *testing.T) {
	db := append(parts("cdr", 10, "261204", "261205", "261206", "261207", "261208"),
		parts("register_state", 1, "261204", "261205", "261206", "261207", "261208")...)
	tests := []struct {
		name         string
		total, limit int64 // MB
		want         []string
	}{
		{name: "under the limit", total: 40, limit: 100},
		{name: "no limit", total: 4000, limit: 0},
		{name: "one day", total: 60, limit: 55, want: []string{"cdr.p261204", "register_state.p261204"}},
		{name: "two days", total: 60, limit: 45, want: []string{"cdr.p261204", "register_state.p261204", "cdr.p261205", "register_state.p261205"}},
		{name: "never today", total: 1000, limit: 1, want: []string{"cdr.p261204", "register_state.p261204", "cdr.p261205",
			"register_state.p261205", "cdr.p261206", "register_state.p261206"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(planSize(db, tc.total<<20, tc.limit<<20, cleanToday)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParsePartDay(t *testing.T) {
	for in, want := range map[string]string{"p261207": "2026-12-07", "p26120713": "2026-12-07", "pmax": "", "p2612": "", "p261341": "", "x261207": ""} {
		d, ok := parsePartDay(in)
		if got := map[bool]string{true: d.Format(time.DateOnly)}[ok]; got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// TestCleanDue: at start, hourly within the hours, once a day at least.
func TestCleanDue(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 7, h, m, 0, 0, time.UTC) }
	night := HourRange{1, 5}
	tests := []struct {
		name      string
		now, last time.Time
		hours     HourRange
		want      bool
	}{
		{name: "first run", now: at(14, 0), hours: night, want: true},
		{name: "outside the hours", now: at(14, 0), last: at(9, 0), hours: night},
		{name: "inside, last run long ago", now: at(1, 0), last: at(14, 0).AddDate(0, 0, -1), hours: night, want: true},
		{name: "inside, hour not over", now: at(2, 0), last: at(1, 30), hours: night},
		{name: "inside, hour over", now: at(2, 31), last: at(1, 30), hours: night, want: true},
		{name: "a day without", now: at(14, 1), last: at(14, 0).AddDate(0, 0, -1), hours: night, want: true},
		{name: "wrapping hours", now: at(23, 0), last: at(12, 0), hours: HourRange{22, 3}, want: true},
		{name: "wrapping hours, outside", now: at(12, 0), last: at(3, 0), hours: HourRange{22, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cleanDue(tc.now, tc.last, tc.hours); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// cleanFixture is a scratch database with one CDR (two cdr_rtp rows), one
// register_state and one register_failed row on each of the 11 days up to
// today, and (partition) daily partitions from 10 days back to today + 2.
func cleanFixture(t *testing.T, partition bool) (*sql.DB, time.Time) {
	t.Helper()
	dsn := scratchDB(t, testDSN(t))
	db := openDB(t, dsn)
	ctx := context.Background()
	now := time.Now()
	today := dayOf(now)
	// The schema as a sensor started 10 days ago left it, then today's heartbeat.
	if err := migrate(ctx, db, schemaOptions{partition: partition, now: today.AddDate(0, 0, -10)}); err != nil {
		t.Fatal(err)
	}
	o := testOptions(dsn, t.TempDir())
	o.Partition = partition
	w := startWriter(t, o)
	for d := -10; d <= 0; d++ {
		c := sampleCDR(d + 10)
		shift := today.AddDate(0, 0, d).Add(time.Minute).Sub(c.CallDate)
		c.CallDate, c.CallEnd = c.CallDate.Add(shift), c.CallEnd.Add(shift)
		if err := w.Enqueue(c); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"register_state", "register_failed"} {
			if _, err := db.Exec("INSERT INTO `"+table+"` (id_sensor, created_at, sipcallerip, sipcalledip) VALUES (1, ?, 1, 2)",
				today.AddDate(0, 0, d).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	flushSlow(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return db, now
}

// flushSlow is flush with 3 minutes: the writer's connect runs up to 90
// REORGANIZE PARTITIONs here, slow on a loaded machine.
func flushSlow(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// partNames lists table's partitions, oldest first.
func partNames(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	return queryStrings(t, db, `SELECT partition_name FROM information_schema.partitions
		WHERE table_schema = DATABASE() AND table_name = ? AND partition_name IS NOT NULL ORDER BY partition_ordinal_position`, table)
}

// queryStrings returns the first column of q's rows.
func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// dayNames are the partition names of today + from … today + to, and pmax.
func dayNames(today time.Time, from, to int) []string {
	var out []string
	for d := from; d <= to; d++ {
		out = append(out, partName(today.AddDate(0, 0, d)))
	}
	return append(out, "pmax")
}

// logLines counts the lines of log text with msg.
func logLines(log *strings.Builder, msg string) int {
	return strings.Count(log.String(), `msg="`+msg+`"`)
}

// TestCleanPartitioned: cleandatabase_cdr = 3 and cleandatabase_register_state
// = 5 on a partitioned database drop exactly the older days of the tables
// they cover, one log line each; register_failed (key 0) keeps everything;
// a second pass finds nothing.
func TestCleanPartitioned(t *testing.T) {
	db, now := cleanFixture(t, true)
	today := dayOf(now)
	var logBuf strings.Builder
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	o := CleanOptions{CDR: 3, RegisterState: 5}
	res, err := Clean(context.Background(), db, o, now, log)
	if err != nil {
		t.Fatal(err)
	}
	// 7 partitioned CDR tables × 8 days (-10 … -3), register_state 6 days (-10 … -5).
	if res.Partitions != 7*8+6 || res.Rows != 0 {
		t.Errorf("result %+v, want 62 partitions, 0 rows", res)
	}
	if n := logLines(&logBuf, "dropped old partition"); n != 62 {
		t.Errorf("%d log lines for dropped partitions, want 62", n)
	}
	for _, table := range []string{"cdr", "cdr_next", "cdr_rtp", "cdr_sipresp", "cdr_dtmf", "cdr_asterisk", "cdr_rtp_series"} {
		if got, want := partNames(t, db, table), dayNames(today, -2, 2); !slices.Equal(got, want) {
			t.Errorf("%s partitions %v, want %v", table, got, want)
		}
	}
	if got, want := partNames(t, db, "register_state"), dayNames(today, -4, 2); !slices.Equal(got, want) {
		t.Errorf("register_state partitions %v, want %v", got, want)
	}
	if got, want := partNames(t, db, "register_failed"), dayNames(today, -10, 2); !slices.Equal(got, want) {
		t.Errorf("register_failed partitions %v, want %v", got, want)
	}
	checkKept(t, db, today)
	res, err = Clean(context.Background(), db, o, now, log)
	if err != nil || res != (CleanResult{}) {
		t.Errorf("second pass: %+v, %v; want nothing to do", res, err)
	}
}

// TestCleanUnpartitioned: with cdr_partition = no the same keys delete the
// rows (the CDRs' child rows go with them), in chunks.
func TestCleanUnpartitioned(t *testing.T) {
	db, now := cleanFixture(t, false)
	today := dayOf(now)
	// 2500 more old REGISTER rows: three chunks.
	if _, err := db.Exec("INSERT INTO register_state (id_sensor, created_at, sipcallerip, sipcalledip) SELECT 1, ?, 1, 2 FROM seq_1_to_2500",
		today.AddDate(0, 0, -30)); err != nil {
		t.Fatal(err)
	}
	var logBuf strings.Builder
	res, err := Clean(context.Background(), db, CleanOptions{CDR: 3, RegisterState: 5}, now, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Partitions != 0 || res.Rows != 8+6+2500 {
		t.Errorf("result %+v, want 0 partitions, 2514 rows", res)
	}
	checkKept(t, db, today)
	if n := logLines(&logBuf, "deleted old rows (table without partitions)"); n != 2 {
		t.Errorf("%d log lines, want 2 (cdr, register_state):\n%s", n, logBuf.String())
	}
}

// TestCleanBySize: above cleandatabase_size the oldest day goes from every
// table; with a limit nothing fits, every day before today, never today.
func TestCleanBySize(t *testing.T) {
	db, now := cleanFixture(t, true)
	today := dayOf(now)
	for _, table := range []string{"cdr", "cdr_next", "cdr_rtp", "cdr_sipresp", "cdr_dtmf", "cdr_asterisk", "cdr_rtp_series", "register_state", "register_failed"} {
		if _, err := db.Exec("ANALYZE TABLE `" + table + "`"); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	if err := db.QueryRow(`SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = DATABASE()`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	res, err := Clean(context.Background(), db, CleanOptions{MaxBytes: total - 1}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Partitions != 9 {
		t.Errorf("dropped %d partitions, want 9 (the oldest day of 9 tables)", res.Partitions)
	}
	for _, table := range []string{"cdr", "cdr_rtp", "register_failed"} {
		if got, want := partNames(t, db, table), dayNames(today, -9, 2); !slices.Equal(got, want) {
			t.Errorf("%s partitions %v, want %v", table, got, want)
		}
	}
	if _, err := Clean(context.Background(), db, CleanOptions{MaxBytes: 1}, now, nil); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"cdr", "cdr_rtp", "register_state"} {
		if got, want := partNames(t, db, table), dayNames(today, 0, 2); !slices.Equal(got, want) {
			t.Errorf("%s partitions %v, want %v", table, got, want)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM cdr"); n != 1 {
		t.Errorf("cdr rows = %d, want today's 1", n)
	}
}

// TestWriterCleans: the writer's cleaning goroutine runs at start, counts
// what it dropped in its metrics, and disable_partition_operations stops it.
func TestWriterCleans(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", off), func(t *testing.T) {
			dsn := scratchDB(t, testDSN(t))
			db := openDB(t, dsn)
			today := dayOf(time.Now())
			if err := migrate(context.Background(), db, schemaOptions{partition: true, now: today.AddDate(0, 0, -5)}); err != nil {
				t.Fatal(err)
			}
			o := testOptions(dsn, t.TempDir())
			o.Partition = true
			o.Clean = CleanOptions{RegisterFailed: 1}
			o.NoPartitionDrop = off
			o.cleanDelay, o.cleanTick = time.Millisecond, 10*time.Millisecond
			w := startWriter(t, o)
			flush(t, w)       // connected: schema migrated, partitions up to today + 2
			want := uint64(5) // register_failed, days -5 … -1
			if off {
				want = 0
			}
			deadline := time.Now().Add(20 * time.Second)
			for w.Stats().PartitionsDropped < want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // a disabled cleaner would have run by now
			if s := w.Stats(); s.PartitionsDropped != want || s.CleanErrors != 0 {
				t.Errorf("dropped %d partitions (%d errors), want %d", s.PartitionsDropped, s.CleanErrors, want)
			}
			first := 0
			if off {
				first = -5
			}
			if got, want := partNames(t, db, "register_failed"), dayNames(today, first, 2); !slices.Equal(got, want) {
				t.Errorf("register_failed partitions %v, want %v", got, want)
			}
		})
	}
}

// TestCleanTwoSensors: two sensors with the same keys cleaning one database
// at once both succeed and drop each partition once between them (a
// partition the other dropped first is error 1507, taken as done).
func TestCleanTwoSensors(t *testing.T) {
	db, now := cleanFixture(t, true)
	o := CleanOptions{CDR: 3, RegisterState: 5}
	type out struct {
		res CleanResult
		err error
	}
	ch := make(chan out, 2)
	for range 2 {
		go func() {
			res, err := Clean(context.Background(), db, o, now, nil)
			ch <- out{res, err}
		}()
	}
	a, b := <-ch, <-ch
	if a.err != nil || b.err != nil {
		t.Fatalf("errors: %v, %v", a.err, b.err)
	}
	if n := a.res.Partitions + b.res.Partitions; n != 62 {
		t.Errorf("dropped %d + %d partitions, want 62 between them", a.res.Partitions, b.res.Partitions)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM cdr_rtp"); n != 6 {
		t.Errorf("cdr_rtp rows = %d, want 6", n)
	}
}

// TestCleanWrittenKeys: the agent's idempotency keys go once every table
// they guard (cdr, register_state, register_failed) is cleaned past them,
// as long as the longest kept of those; with one of them kept forever they
// stay.
func TestCleanWrittenKeys(t *testing.T) {
	db, now := cleanFixture(t, true)
	today := dayOf(now)
	base := count(t, db, "SELECT COUNT(*) FROM "+writtenTable)
	for i, age := range []int{30, 30, 6, 5, 0} {
		if _, err := db.Exec("INSERT INTO "+writtenTable+" (k, kind, row_id, created_at) VALUES (?, 1, 1, ?)",
			fmt.Sprintf("%016d", i), today.AddDate(0, 0, -age).Add(time.Hour).Format(time.DateTime)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Clean(context.Background(), db, CleanOptions{CDR: 3, RegisterState: 6}, now, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM "+writtenTable); n != base+5 {
		t.Errorf("register_failed kept forever: %d keys left, want all %d", n, base+5)
	}
	if _, err := Clean(context.Background(), db, CleanOptions{CDR: 3, RegisterState: 6, RegisterFailed: 4}, now, nil); err != nil {
		t.Fatal(err)
	}
	// kept 6 days: today and the 5 before it (the keys 5 days old stay)
	if n := count(t, db, "SELECT COUNT(*) FROM "+writtenTable); n != base+2 {
		t.Errorf("%d keys left, want %d (the 5-day-old and today's added ones)", n, base+2)
	}
}

// checkKept checks the rows cleanFixture's database keeps after a pass
// with cdr kept 3 days and register_state 5 (register_failed not cleaned),
// partitioned or not.
func checkKept(t *testing.T, db *sql.DB, today time.Time) {
	t.Helper()
	for q, want := range map[string]int{
		"SELECT COUNT(*) FROM cdr": 3, "SELECT COUNT(*) FROM cdr_next": 3, "SELECT COUNT(*) FROM cdr_rtp": 6,
		"SELECT COUNT(*) FROM register_state": 5, "SELECT COUNT(*) FROM register_failed": 11,
		fmt.Sprintf("SELECT COUNT(*) FROM cdr WHERE calldate < '%s'", today.AddDate(0, 0, -2).Format(time.DateOnly)): 0,
	} {
		if n := count(t, db, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
}

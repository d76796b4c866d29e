package cdr

// Database cleaning: VoIPmonitor's cleandatabase family. With daily
// partitions the days older than a table's key are dropped, a partition at a
// time, as VoIPmonitor's _dropMysqlPartitions (sql_db.cpp); without them the
// rows are deleted in small chunks (VoIPmonitor cleans nothing there). The
// writer runs one cleaner goroutine: at start, then hourly inside
// partition_operations_enable_fromto and at least once a day
// (cCreatePartitions::check_time_partition_operation); the size limit is
// checked every ten minutes (cleandatabase_size_period).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// CleanOptions are the cleandatabase keys, already resolved: days of data
// kept per table group, 0 = keep everything. The zero value cleans nothing.
type CleanOptions struct {
	CDR              int // cleandatabase_cdr: cdr and its child tables (cdr_next, cdr_rtp, …), message*
	EnergyLevels     int // cleandatabase_cdr_rtp_energylevels (0 = as CDR)
	RegisterState    int // cleandatabase_register_state
	RegisterFailed   int // cleandatabase_register_failed
	RegisterTimeInfo int // cleandatabase_register_time_info
	SIPMsg           int // cleandatabase_sip_msg
	RTPStat          int // cleandatabase_rtp_stat
	// MaxBytes is cleandatabase_size: while the database is larger, the
	// oldest day of partitions goes (partitioned databases only). 0 = off.
	MaxBytes int64
	// Hours is partition_operations_enable_fromto: the local hours (both
	// included; From > To wraps past midnight) in which the daily drop
	// runs; nil = VoIPmonitor's 1-5.
	Hours *HourRange
}

// HourRange is an interval of hours of the day, 0-23, both included.
type HourRange struct{ From, To int }

// Contains reports whether h lies in r (From > To wraps past midnight).
func (r HourRange) Contains(h int) bool {
	if r.From <= r.To {
		return h >= r.From && h <= r.To
	}
	return h >= r.From || h <= r.To
}

// Enabled reports whether any key asks for cleaning.
func (o CleanOptions) Enabled() bool {
	return o.MaxBytes > 0 || len(o.tableDays()) > 0
}

// cdrTables are the tables cleandatabase_cdr covers: VoIPmonitor's list in
// dropMysqlPartitionsCdr (sql_db.cpp) and the agent's own CDR children.
// Tables that do not exist are skipped.
var cdrTables = []string{
	"cdr", "cdr_next", "cdr_next_branches", "cdr_rtp", "cdr_dtmf", "cdr_sipresp", "cdr_siphistory",
	"cdr_tar_part", "cdr_country_code", "cdr_sdp", "cdr_text_data", "cdr_conference", "cdr_txt",
	"cdr_proxy", "cdr_flags", "cdr_audio_transcribe", "message", "message_proxy", "message_country_code",
	"message_flags", "cdr_asterisk", "cdr_rtp_series",
}

// tableDays maps every table a key covers to the days it keeps (> 0 only).
func (o CleanOptions) tableDays() map[string]int {
	m := map[string]int{}
	add := func(days int, tables ...string) {
		if days > 0 {
			for _, t := range tables {
				m[t] = days
			}
		}
	}
	add(o.CDR, cdrTables...)
	add(cmpOr(o.EnergyLevels, o.CDR), "cdr_rtp_energylevels")
	add(o.RegisterState, "register_state", "register_state_eq_next")
	add(o.RegisterFailed, "register_failed", "register_failed_eq_next")
	add(o.RegisterTimeInfo, "register_time_info")
	add(o.SIPMsg, "sip_msg")
	add(o.RTPStat, "rtp_stat")
	return m
}

// writtenDays is how long the agent's idempotency keys (writtenTable, one
// per CDR and REGISTER row written) are kept: as long as the longest kept of
// the tables they guard, and forever when one of those is kept forever (a
// key is what stops a row being written twice). Without it the table grew
// by a row per call for good.
func (o CleanOptions) writtenDays() int {
	if o.CDR < 1 || o.RegisterState < 1 || o.RegisterFailed < 1 {
		return 0
	}
	return max(o.CDR, o.RegisterState, o.RegisterFailed)
}

// sizeTables are the tables cleandatabase_size drops days of: every table
// a days key may cover (cPartitions::fillTables).
func sizeTables() []string {
	t := append([]string{}, cdrTables...)
	return append(t, "cdr_rtp_energylevels", "register_state", "register_state_eq_next", "register_failed",
		"register_failed_eq_next", "register_time_info", "sip_msg", "rtp_stat")
}

// partition is one daily (pYYMMDD) or hourly (pYYMMDDHH) partition.
type partition struct {
	table, name string
	day         time.Time // the day it holds (its wall date), as a UTC midnight
	bytes       int64     // data_length + index_length
}

// parsePartDay reads the day of a VoIPmonitor partition name: p + YYMMDD,
// optionally followed by the hour. pmax and other names give false.
func parsePartDay(name string) (time.Time, bool) {
	if len(name) != 7 && len(name) != 9 || name[0] != 'p' {
		return time.Time{}, false
	}
	d, err := time.Parse("060102", name[1:7])
	return d, err == nil
}

// dayOf is the partition day holding t, t being in the zone of the stored
// times (Options.Location): its wall date, as the day EnsurePartitions
// names.
func dayOf(t time.Time) time.Time { return wallDate(t) }

// planAge returns the partitions of parts that cleaning by days drops on
// day today: those whose day is at least days before today (VoIPmonitor's
// limit partition name, p + strftime of now - days·24 h, and every name up to
// it). Never today's or a later one, never a table's newest partition (MySQL
// keeps at least one), nothing when days < 1.
func planAge(parts []partition, days int, today time.Time) []partition {
	if days < 1 {
		return nil
	}
	limit := today.AddDate(0, 0, -days)
	newest := map[string]time.Time{}
	for _, p := range parts {
		if p.day.After(newest[p.table]) {
			newest[p.table] = p.day
		}
	}
	var out []partition
	for _, p := range parts {
		if !p.day.After(limit) && p.day.Before(today) && !p.day.Equal(newest[p.table]) {
			out = append(out, p)
		}
	}
	sortParts(out)
	return out
}

// planSize returns the partitions cleandatabase_size drops when the database
// holds total bytes and may hold limit: whole days, oldest first, across every
// table, until the rest fits (cPartitions::cleanup_by_oversize). Only days
// before today, never a table's newest partition.
func planSize(parts []partition, total, limit int64, today time.Time) []partition {
	if limit <= 0 || total <= limit {
		return nil
	}
	newest := map[string]time.Time{}
	for _, p := range parts {
		if p.day.After(newest[p.table]) {
			newest[p.table] = p.day
		}
	}
	byDay := map[time.Time][]partition{}
	var days []time.Time
	for _, p := range parts {
		if !p.day.Before(today) || p.day.Equal(newest[p.table]) {
			continue
		}
		if byDay[p.day] == nil {
			days = append(days, p.day)
		}
		byDay[p.day] = append(byDay[p.day], p)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	var out []partition
	for _, d := range days {
		if total <= limit {
			break
		}
		for _, p := range byDay[d] {
			total -= p.bytes
			out = append(out, p)
		}
	}
	sortParts(out)
	return out
}

func sortParts(p []partition) {
	sort.Slice(p, func(i, j int) bool {
		if !p[i].day.Equal(p[j].day) {
			return p[i].day.Before(p[j].day)
		}
		if p[i].table != p[j].table {
			return p[i].table < p[j].table
		}
		return p[i].name < p[j].name
	})
}

// cleanDue reports whether the daily drop is due at now, last being the end
// of the previous successful run (zero: none yet, as at start). Inside the
// hours it runs when the last run is over an hour old, outside them once a
// day at least (check_time_partition_operation).
func cleanDue(now, last time.Time, hours HourRange) bool {
	if last.IsZero() {
		return true
	}
	since := now.Sub(last)
	return (hours.Contains(now.Hour()) && since > time.Hour) || since > 24*time.Hour
}

// CleanResult counts what one cleaning pass removed.
type CleanResult struct {
	Partitions int   // partitions dropped
	Rows       int64 // rows deleted from tables without partitions
}

// deleteChunk is how many rows one DELETE removes: small transactions, so a
// Galera cluster certifies them quickly and the writers are not held up.
const deleteChunk = 1000

// unpartitioned says how rows of a table without partitions are aged: by
// date column. Child tables of cdr follow their cdr row (ON DELETE CASCADE);
// tables the agent does not know are left alone.
var unpartitioned = map[string]string{"cdr": "calldate", "register_state": "created_at", "register_failed": "created_at"}

// Clean runs one cleaning pass at now (a time in the zone of the stored
// times: its date is "today"): the days keys first, then the size
// limit. It logs every partition it drops and returns what it removed; an
// error stops the pass (what was removed before it stays removed).
func Clean(ctx context.Context, db *sql.DB, o CleanOptions, now time.Time, log *slog.Logger) (CleanResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var res CleanResult
	today := dayOf(now)
	keep := o.tableDays()
	tables := sizeTables()
	parts, plain, err := listPartitions(ctx, db, tables)
	if err != nil {
		return res, fmt.Errorf("%w: list partitions: %w", ErrClean, err)
	}
	byTable := map[string][]partition{}
	for _, p := range parts {
		byTable[p.table] = append(byTable[p.table], p)
	}
	dropped := map[string]bool{}
	for _, t := range tables {
		days := keep[t]
		if days < 1 {
			continue
		}
		for _, p := range planAge(byTable[t], days, today) {
			ok, err := dropPartition(ctx, db, p, "cleandatabase", log)
			if err != nil {
				return res, err
			}
			if ok {
				res.Partitions++
			}
			dropped[p.table+"/"+p.name] = true
		}
		if col, ok := unpartitioned[t]; ok && plain[t] {
			n, err := deleteOlder(ctx, db, t, col, today.AddDate(0, 0, 1-days))
			res.Rows += n
			if n > 0 {
				log.Info("deleted old rows (table without partitions)", "table", t, "rows", n, "keep_days", days)
			}
			if err != nil {
				return res, err
			}
		}
	}
	if days := o.writtenDays(); days > 0 {
		n, err := deleteOlder(ctx, db, writtenTable, "created_at", today.AddDate(0, 0, 1-days))
		res.Rows += n
		if n > 0 {
			log.Info("deleted old idempotency keys", "table", writtenTable, "rows", n, "keep_days", days)
		}
		if err != nil {
			return res, err
		}
	}
	if o.MaxBytes <= 0 {
		return res, nil
	}
	total, err := databaseSize(ctx, db)
	if err != nil {
		return res, fmt.Errorf("%w: database size: %w", ErrClean, err)
	}
	var left []partition // read after the drops above: total is without them
	for _, p := range parts {
		if !dropped[p.table+"/"+p.name] {
			left = append(left, p)
		}
	}
	plan := planSize(left, total, o.MaxBytes, today)
	if len(plan) > 0 {
		log.Info("database above cleandatabase_size: dropping the oldest days", "size_mb", total>>20, "limit_mb", o.MaxBytes>>20)
	}
	for _, p := range plan {
		ok, err := dropPartition(ctx, db, p, "cleandatabase_size", log)
		if err != nil {
			return res, err
		}
		if ok {
			res.Partitions++
		}
	}
	return res, nil
}

// databaseSize is the bytes of data and indexes of the current database. MySQL
// 8 serves these figures from a cache for up to a day
// (information_schema_stats_expiry): a stale figure would make every check
// drop another day, so the session asks for fresh ones (MariaDB has no such
// cache and no such variable: error 1193 is fine).
func databaseSize(ctx context.Context, db *sql.DB) (int64, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "SET SESSION information_schema_stats_expiry = 0")
	var me *mysql.MySQLError
	if err != nil && !(errors.As(err, &me) && me.Number == 1193) {
		return 0, err
	}
	var total int64
	err = conn.QueryRowContext(ctx, `SELECT COALESCE(SUM(data_length + index_length), 0)
		FROM information_schema.tables WHERE table_schema = DATABASE()`).Scan(&total)
	return total, err
}

// listPartitions returns the daily partitions of those tables that exist,
// and which of them exist without partitions.
func listPartitions(ctx context.Context, db *sql.DB, tables []string) ([]partition, map[string]bool, error) {
	q := `SELECT table_name, partition_name, COALESCE(data_length, 0) + COALESCE(index_length, 0)
		FROM information_schema.partitions WHERE table_schema = DATABASE() AND table_name IN (?` +
		strings.Repeat(", ?", len(tables)-1) + ")"
	args := make([]any, len(tables))
	for i, t := range tables {
		args[i] = t
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var parts []partition
	plain := map[string]bool{}
	for rows.Next() {
		var table string
		var name sql.NullString
		var size int64
		if err := rows.Scan(&table, &name, &size); err != nil {
			return nil, nil, err
		}
		if !name.Valid {
			plain[table] = true
			continue
		}
		if d, ok := parsePartDay(name.String); ok {
			parts = append(parts, partition{table: table, name: name.String, day: d, bytes: size})
		}
	}
	return parts, plain, rows.Err()
}

// dropPartition drops one partition; dropped is false when it was gone
// already (error 1507: another sensor dropped it first). A Galera conflict
// or a lock wait is tried again, as REORGANIZE PARTITION is.
func dropPartition(ctx context.Context, db *sql.DB, p partition, why string, log *slog.Logger) (dropped bool, err error) {
	q := fmt.Sprintf("ALTER TABLE `%s` DROP PARTITION `%s`", p.table, p.name)
	err = retryDDL(ctx, db, q)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1507 {
		log.Debug("partition already dropped (by another sensor?)", "table", p.table, "partition", p.name)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: drop %s partition %s: %w", ErrClean, p.table, p.name, err)
	}
	log.Info("dropped old partition", "table", p.table, "partition", p.name, "day", p.day.Format(time.DateOnly), "mb", p.bytes>>20, "by", why)
	return true, nil
}

// deleteOlder deletes the rows of table whose col is before cutoff, in
// chunks of deleteChunk, each its own transaction.
func deleteOlder(ctx context.Context, db *sql.DB, table, col string, cutoff time.Time) (int64, error) {
	q := fmt.Sprintf("DELETE FROM `%s` WHERE `%s` < ? LIMIT %d", table, col, deleteChunk)
	var total int64
	for {
		var res sql.Result
		var err error
		for attempt := 1; ; attempt++ {
			// cutoff is a wall-clock midnight of the stored zone: a
			// string, not a time.Time the driver would move into its Loc.
			res, err = db.ExecContext(ctx, q, cutoff.Format(time.DateTime))
			if !isConflict(err) || attempt > conflictRetries || !sleepCtx(ctx, time.Duration(attempt)*50*time.Millisecond) {
				break
			}
		}
		if err != nil {
			return total, fmt.Errorf("%w: delete from %s: %w", ErrClean, table, err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < deleteChunk {
			return total, nil
		}
	}
}

// sizePeriod is how often cleandatabase_size is checked
// (cleandatabase_size_period's default, 10 minutes).
const sizePeriod = 10 * time.Minute

// cleaner is the writer's cleaning goroutine.
type cleaner struct {
	ready <-chan struct{} // closed when the writer has migrated the schema
	db    *sql.DB
	o     CleanOptions
	log   *slog.Logger
	st    *stats
	now   func() time.Time
	delay time.Duration // before the first pass (VoIPmonitor waits 10 s)
	tick  time.Duration // how often it looks whether a pass is due

	lastAge, lastSize, nextTry time.Time
}

func (c *cleaner) run(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-c.ready:
	}
	first := time.NewTimer(c.delay)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	t := time.NewTicker(c.tick)
	defer t.Stop()
	for {
		c.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step runs a pass when one is due. A failed pass is tried again in five
// minutes; the agent goes on writing either way.
func (c *cleaner) step(ctx context.Context) {
	now := c.now()
	if now.Before(c.nextTry) {
		return
	}
	hours := HourRange{1, 5}
	if c.o.Hours != nil {
		hours = *c.o.Hours
	}
	o := c.o
	age := len(o.tableDays()) > 0 && cleanDue(now.Local(), c.lastAge, hours)
	size := o.MaxBytes > 0 && (c.lastSize.IsZero() || now.Sub(c.lastSize) > sizePeriod)
	if !age && !size {
		return
	}
	if !age {
		o = CleanOptions{MaxBytes: o.MaxBytes}
	}
	if !size {
		o.MaxBytes = 0
	}
	res, err := Clean(ctx, c.db, o, now, c.log)
	c.st.partitionsDropped.Add(uint64(res.Partitions))
	c.st.rowsCleaned.Add(uint64(res.Rows))
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.st.cleanErrors.Add(1)
		c.nextTry = now.Add(5 * time.Minute)
		c.log.Error("database cleaning failed; trying again in 5 minutes", "err", err, "hint", cleanHint(err))
		return
	}
	if age {
		c.lastAge = now
	}
	if size {
		c.lastSize = now
	}
}

// cleanHint is hint for the cleaner's statements, which need more rights
// than the writer's.
func cleanHint(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1142, 1143, 1227:
			return "the MySQL user lacks privileges: cleandatabase needs DROP (partitions) and DELETE (tables without partitions) on mysqldb"
		}
	}
	return hint(err)
}

// startCleaner starts the cleaning goroutine when a key asks for it; the
// returned func stops it and waits for it (nil: none started).
func (w *Writer) startCleaner(ctx context.Context) (stop func()) {
	if !w.o.Clean.Enabled() {
		return nil
	}
	if w.o.NoPartitionDrop {
		w.log.Info("cleandatabase is set but disable_partition_operations keeps this sensor from dropping anything")
		return nil
	}
	o := w.o.Clean
	if o.MaxBytes > 0 && !w.o.Partition {
		w.log.Warn("cleandatabase_size needs daily partitions (cdr_partition = yes); the size is not enforced")
	}
	w.log.Info("database cleaning on", "cdr_days", o.CDR, "register_state_days", o.RegisterState,
		"register_failed_days", o.RegisterFailed, "sip_msg_days", o.SIPMsg, "size_mb", o.MaxBytes>>20, "partitions", w.o.Partition)
	loc := w.o.Location // the days and hours of the zone of stored times
	c := &cleaner{ready: w.schemaReady, db: w.db, o: o, log: w.log, st: w.st, now: func() time.Time { return time.Now().In(loc) },
		delay: cmpOr(w.o.cleanDelay, 10*time.Second), tick: cmpOr(w.o.cleanTick, time.Minute)}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.run(ctx) })
	return func() { cancel(); wg.Wait() }
}

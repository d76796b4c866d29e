// Package cdr stores finished calls and REGISTERs in MySQL/MariaDB with
// VoIPmonitor's schema, so VoIPmonitor's GUI and our compatibility APIs read
// the same rows.
//
// One writer goroutine (Run) takes records from a bounded in-memory queue and
// writes them in batches, one transaction per batch, a CDR's rows across
// tables together. When MySQL is unreachable or refuses the writes, batches go
// to an append-only, fsync'd, checksummed on-disk queue and are replayed in
// order once MySQL is back. Every record carries an idempotency key stored in
// the same transaction, so a record is written exactly once across MySQL
// restarts, agent crashes and replays.
//
// The writer takes its own Options (the daemon maps the config onto them)
// and owns the schema; the `sensors` row is agent/sensors'. Its figures
// reach /metrics through Writer.Register.
package cdr

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/dbconn"
	"pbx-agent/sniffer/call"
)

// Options configure a Writer. Zero values take the defaults noted.
type Options struct {
	DSN            string        // go-sql-driver/mysql DSN (required)
	IDSensor       int           // cdr.id_sensor; -1 = unset
	QueueDir       string        // on-disk queue directory (required)
	QueueSize      int           // in-memory queue length (default 10000)
	BatchSize      int           // records per transaction (default 200)
	FlushInterval  time.Duration // max wait for a partial batch (default 1s)
	QueueMaxBytes  int64         // cap of the on-disk queue, 0 = none
	RetryInterval  time.Duration // wait between attempts while MySQL is down (default 2s)
	PartitionCheck time.Duration // how often daily partitions are added ahead (default 30s)
	DrainTimeout   time.Duration // how long the final drain may try MySQL (default 10s)
	Partition      bool          // cdr_partition: daily partitions
	// RawUA turns off cdr_ua_normalisation (on by default, as in
	// VoIPmonitor's sample config): User-Agents are stored as sent.
	RawUA bool
	// MOSMinAll turns off mosmin_f2 (on by default, as in VoIPmonitor):
	// a_/b_/mos_min_mult10 are then the lowest of the F1, F2 and adaptive
	// MOS instead of the F2 MOS.
	MOSMinAll bool
	// OnlyAnswered and OnlyRTP (cdronlyanswered, cdronlyrtp) store no
	// record of a call that was not answered / had no RTP stream, as
	// VoIPmonitor's (counted in Stats.Skipped; its pcaps stay in the spool).
	OnlyAnswered, OnlyRTP bool
	// ResponseTimeFromFirstInvite is response_time_from_first_invite
	// (off by default, as in VoIPmonitor): response_time_100 and _xxx
	// count from the call's first INVITE to its first such response,
	// instead of the quickest INVITE transaction's.
	ResponseTimeFromFirstInvite bool
	// IPv6 is VoIPmonitor's ipv6 = yes: the tables it creates get
	// varbinary(16) IP columns, which hold IPv6 addresses (16 bytes) and
	// IPv4 ones (4 bytes). Existing tables keep their type: the writer
	// fills each IP column in the form its type asks for, as VoIPmonitor
	// does, and says so when that is not the mode asked for.
	IPv6 bool
	// Clean is the cleandatabase family: old partitions dropped, old rows
	// deleted, by a goroutine of Run (clean.go). NoPartitionDrop is
	// disable_partition_operations(_drop): this sensor cleans nothing.
	Clean           CleanOptions
	NoPartitionDrop bool
	// cleanDelay and cleanTick (tests) replace the cleaner's 10 s wait
	// before its first pass and its 1 min look at the clock.
	cleanDelay, cleanTick time.Duration
	// Location is the zone of the times written (calldate, callend,
	// created_at, …) and of the daily partitions: VoIPmonitor's local
	// time, or UTC with utc = yes (tools.h:3349-3357). nil = UTC.
	Location *time.Location
}

// item is one record waiting to be written.
type item struct {
	cdr *call.CDR
	ast *Asterisk // the CDR's Asterisk correlation, nil = none
	reg *call.Register
}

// envelope is the on-disk form of an item.
type envelope struct {
	Kind string         `json:"k"`
	CDR  *call.CDR      `json:"c,omitempty"`
	Ast  *Asterisk      `json:"a,omitempty"`
	Reg  *call.Register `json:"r,omitempty"`
}

func (it item) encode() ([]byte, error) {
	e := envelope{Kind: "cdr", CDR: it.cdr, Ast: it.ast}
	if it.reg != nil {
		e = envelope{Kind: "reg", Reg: it.reg}
	}
	return json.Marshal(e)
}

func decodeItem(b []byte) (item, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return item{}, fmt.Errorf("%w: %w", ErrRecord, err)
	}
	switch {
	case e.Kind == "cdr" && e.CDR != nil:
		return item{cdr: e.CDR, ast: e.Ast}, nil
	case e.Kind == "reg" && e.Reg != nil:
		return item{reg: e.Reg}, nil
	}
	return item{}, fmt.Errorf("%w: kind %q", ErrRecord, e.Kind)
}

// Writer is the CDR store. Enqueue and EnqueueRegister may be called from any
// goroutine; Run is the one writer goroutine.
type Writer struct {
	o   Options
	log *slog.Logger
	db  *sql.DB
	q   *diskQueue
	cb  *codebook
	st  *stats

	in       chan item
	flushReq chan chan error
	stop     chan struct{}
	done     chan struct{}
	running  atomic.Bool
	// schemaReady is closed once the schema is migrated and today's
	// partitions exist: the cleaner starts after that.
	schemaReady chan struct{}
	migrated    sync.Once

	closeMu   sync.RWMutex
	closed    bool
	closeOnce sync.Once
	closeErr  error

	// Writer-goroutine state.
	ready      bool // schema migrated, sensor registered
	idStep     uint64
	consecIDs  bool
	ips        ipForms // the IP columns' forms, read at connect
	nextRetry  time.Time
	lastErrLog time.Time
	lastErrMsg string

	// crashAfterCommit, when set by a test, is called after a replayed batch
	// is committed to MySQL and before the queue offset is saved; returning
	// true makes Run return at once, as a crash at that point would.
	crashAfterCommit func() bool
}

// New builds a Writer from explicit options.
func New(o Options, logger *slog.Logger) (*Writer, error) {
	if o.DSN == "" {
		return nil, ErrNoDatabase
	}
	if o.QueueDir == "" {
		return nil, fmt.Errorf("%w: no queue directory", ErrQueue)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o.QueueSize = cmpOr(o.QueueSize, 10000)
	o.BatchSize = cmpOr(o.BatchSize, 200)
	o.FlushInterval = cmpOr(o.FlushInterval, time.Second)
	o.RetryInterval = cmpOr(o.RetryInterval, 2*time.Second)
	o.PartitionCheck = cmpOr(o.PartitionCheck, 30*time.Second)
	o.DrainTimeout = cmpOr(o.DrainTimeout, 10*time.Second)
	if o.Location == nil {
		o.Location = time.UTC
	}
	mc, err := driverConfig(o.DSN, o.Location)
	if err != nil {
		return nil, err
	}
	db, err := dbconn.OpenConfig(mc, logger)
	if err != nil {
		return nil, fmt.Errorf("cdr: open: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	q, err := openQueue(o.QueueDir, o.QueueMaxBytes)
	if err != nil {
		db.Close()
		return nil, err
	}
	w := &Writer{
		o: o, log: logger.With("component", "cdr"), db: db, q: q, cb: newCodebook(), st: newStats(),
		in: make(chan item, o.QueueSize), flushReq: make(chan chan error),
		stop: make(chan struct{}), done: make(chan struct{}), idStep: 1, schemaReady: make(chan struct{}),
	}
	if n, b := q.Pending(); n > 0 {
		w.log.Info("on-disk CDR queue has records to replay", "records", n, "bytes", b, "dir", o.QueueDir)
	}
	if torn, _ := q.damage(); torn > 0 {
		w.log.Warn("cut a torn record from the on-disk CDR queue (crash during append)", "dir", o.QueueDir)
	}
	return w, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// driverConfig adds what the writer relies on: client-side interpolation
// (one round trip per statement), the latin1 connection VoIPmonitor's
// tables use (strings are stored byte for byte), times in loc, and a
// non-strict sql_mode so an odd value is clamped instead of failing a whole
// batch. The driver writes every time.Time argument as loc's wall clock
// (Loc): that is what puts calldate, callend, created_at, … in the zone
// VoIPmonitor would use. A time_zone the DSN carries (mysql_timezone,
// VoIPmonitor's SET time_zone of sql_db.cpp:1900-1901) is kept; without
// it, with UTC the session's time_zone is +00:00 too, and with a local zone
// it is left as the server's, as VoIPmonitor leaves it: no statement of
// the writer depends on it (no NOW(), no TIMESTAMP column).
func driverConfig(dsn string, loc *time.Location) (*mysql.Config, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("cdr: bad DSN: %w", err)
	}
	mc.InterpolateParams = true
	mc.Collation = "latin1_swedish_ci"
	mc.Loc = loc
	mc.ParseTime = true
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	if _, set := mc.Params["time_zone"]; !set && loc == time.UTC {
		mc.Params["time_zone"] = "'+00:00'"
	}
	mc.Params["sql_mode"] = "'NO_ENGINE_SUBSTITUTION'"
	return mc, nil
}

// Enqueue hands a finished call to the writer. It never blocks on MySQL: when
// the in-memory queue is full the record goes to the on-disk queue. An error
// means the record is lost (writer closed, disk queue unusable) and is counted.
func (w *Writer) Enqueue(c *call.CDR) error {
	if c == nil {
		return nil
	}
	return w.enqueue(item{cdr: c})
}

// EnqueueCorrelated is Enqueue with the call's Asterisk correlation, stored
// in cdr_asterisk beside the CDR (a nil a is Enqueue).
func (w *Writer) EnqueueCorrelated(c *call.CDR, a *Asterisk) error {
	if c == nil {
		return nil
	}
	return w.enqueue(item{cdr: c, ast: a})
}

// EnqueueRegister hands a REGISTER summary to the writer (register_state, or
// register_failed when its state is Failed).
func (w *Writer) EnqueueRegister(g *call.Register) error {
	if g == nil {
		return nil
	}
	return w.enqueue(item{reg: g})
}

func (w *Writer) enqueue(it item) error {
	if c := it.cdr; c != nil && ((w.o.OnlyAnswered && c.ConnectTime.IsZero()) || (w.o.OnlyRTP && len(c.Streams) == 0)) {
		w.st.skipped.Add(1)
		return nil
	}
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	if w.closed {
		w.st.lost.Add(1)
		return ErrClosed
	}
	w.st.enqueued.Add(1)
	select {
	case w.in <- it:
		return nil
	default:
	}
	w.st.overflow.Add(1)
	if err := w.spill([]item{it}); err != nil {
		return err
	}
	return nil
}

// spill appends items to the on-disk queue; on failure they are lost and counted.
func (w *Writer) spill(items []item) error {
	recs := make([][]byte, 0, len(items))
	for _, it := range items {
		b, err := it.encode()
		if err != nil {
			w.st.lost.Add(1)
			w.log.Error("cannot encode CDR for the disk queue; dropped", "err", err)
			continue
		}
		recs = append(recs, b)
	}
	if err := w.q.Append(recs); err != nil {
		w.st.lost.Add(uint64(len(recs)))
		w.st.queueErrors.Add(1)
		w.log.Error("on-disk CDR queue write failed; records lost", "records", len(recs), "err", err)
		return err
	}
	w.st.spilled.Add(uint64(len(recs)))
	return nil
}

// Run is the writer goroutine. It returns when ctx is cancelled or Close is
// called, after writing (or queueing to disk) everything still in memory.
func (w *Writer) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("cdr: Run called twice")
	}
	defer close(w.done)
	if stop := w.startCleaner(ctx); stop != nil {
		defer stop()
	}
	flush := time.NewTicker(w.o.FlushInterval)
	defer flush.Stop()
	partitions := time.NewTicker(w.o.PartitionCheck)
	defer partitions.Stop()
	ready := make(chan struct{})
	close(ready)

	batch := make([]item, 0, w.o.BatchSize)
	w.connect(ctx)
	for {
		// Replay the disk queue in between new batches while MySQL is up.
		var replay <-chan struct{}
		if n, _ := w.q.Pending(); n > 0 && w.ready && !time.Now().Before(w.nextRetry) {
			replay = ready
		}
		select {
		case <-ctx.Done():
			return w.drain(context.WithoutCancel(ctx), batch)
		case <-w.stop:
			return w.drain(context.WithoutCancel(ctx), batch)
		case it := <-w.in:
			batch = append(batch, it)
			if len(batch) >= w.o.BatchSize {
				w.flushBatch(ctx, batch)
				batch = batch[:0]
			}
		case <-flush.C:
			if len(batch) > 0 {
				w.flushBatch(ctx, batch)
				batch = batch[:0]
			}
			if !w.ready && !time.Now().Before(w.nextRetry) {
				w.connect(ctx)
			}
		case <-replay:
			if crashed := w.replayOnce(ctx); crashed {
				return nil
			}
		case <-partitions.C:
			if w.ready && w.o.Partition {
				if err := EnsurePartitions(ctx, w.db, time.Now().In(w.o.Location).AddDate(0, 0, 2)); err != nil {
					w.dbError("cannot add partitions", err)
				}
			}
		case reply := <-w.flushReq:
			batch = w.takeAll(batch)
			if len(batch) > 0 {
				w.flushBatch(ctx, batch)
				batch = batch[:0]
			}
			reply <- w.replayAll(ctx)
		}
	}
}

// takeAll moves whatever is in the in-memory queue into batch.
func (w *Writer) takeAll(batch []item) []item {
	for {
		select {
		case it := <-w.in:
			batch = append(batch, it)
		default:
			return batch
		}
	}
}

// drain is the shutdown path: everything in memory goes to MySQL if it
// answers within DrainTimeout, else to the disk queue.
func (w *Writer) drain(ctx context.Context, batch []item) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.DrainTimeout)
	defer cancel()
	batch = w.takeAll(batch)
	for len(batch) > 0 {
		n := min(len(batch), w.o.BatchSize)
		w.flushBatch(ctx, batch[:n])
		batch = batch[n:]
	}
	err := w.replayAll(ctx)
	if n, _ := w.q.Pending(); n > 0 {
		w.log.Warn("CDRs kept in the on-disk queue for the next start", "records", n, "dir", w.o.QueueDir)
		return nil
	}
	return err
}

// Flush writes everything queued in memory and replays the disk queue. It
// returns nil when nothing is left pending, else an error saying what is.
// It needs Run to be running (it waits for it until ctx ends).
func (w *Writer) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushReq <- reply:
	case <-w.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, waits for Run to drain (or drains to the
// disk queue itself when Run never ran) and releases the database and queue.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.closeMu.Lock()
		w.closed = true
		w.closeMu.Unlock()
		close(w.stop)
		if w.running.Load() {
			<-w.done
		} else if rest := w.takeAll(nil); len(rest) > 0 {
			w.closeErr = w.spill(rest)
		}
		w.closeErr = errors.Join(w.closeErr, w.q.Close(), w.db.Close())
	})
	return w.closeErr
}

// connect migrates the schema and registers the sensor; on failure the
// writer keeps queueing to disk and tries again after RetryInterval.
func (w *Writer) connect(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	so := schemaOptions{partition: w.o.Partition, ipv6: w.o.IPv6, now: time.Now().In(w.o.Location)}
	err := migrate(ctx, w.db, so)
	// Agents starting together on a multi-writer cluster race on the schema
	// version row: the loser gets 1213 and simply runs the steps again.
	for i := 1; isConflict(err) && i <= conflictRetries && sleepCtx(ctx, time.Duration(i)*50*time.Millisecond); i++ {
		w.st.conflicts.Add(1)
		err = migrate(ctx, w.db, so)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1049 { // unknown database: create it
		if cerr := w.createDatabase(ctx); cerr == nil {
			err = migrate(ctx, w.db, so)
		} else {
			err = fmt.Errorf("%w (and creating it failed: %w)", err, cerr)
		}
	}
	if err == nil {
		err = w.inspectAutoInc(ctx)
	}
	if err == nil {
		err = w.inspectIPColumns(ctx)
	}
	if err != nil {
		w.dbError("MySQL not usable; CDRs go to the on-disk queue", err)
		return
	}
	if !w.ready {
		w.log.Info("MySQL ready", "schema_version", SchemaVersion, "consecutive_ids", w.consecIDs)
	}
	w.ready = true
	w.migrated.Do(func() { close(w.schemaReady) })
	w.st.dbUp.Store(true)
	w.lastErrMsg = ""
}

// inspectIPColumns reads which IP columns are varbinary (ipv6 = yes) and
// says so once when the database's mode is not the one configured: the
// rows then follow the columns, as VoIPmonitor's (its checkSchema sets
// useIPv6 from cdr.sipcallerip's type and logs "IPv6 support need
// varbinary columns for IP addresses!").
func (w *Writer) inspectIPColumns(ctx context.Context) error {
	f, err := readIPForms(ctx, w.db)
	if err != nil {
		return fmt.Errorf("%w: IP columns: %w", ErrSchema, err)
	}
	if w.ready && f.v6() == w.ips.v6() {
		w.ips = f
		return nil
	}
	switch {
	case w.o.IPv6 && !f.v6():
		w.log.Warn("ipv6 = yes, but the database was created with ipv6 = no (cdr.sipcallerip is int unsigned): IPv4 addresses are stored as numbers and IPv6 addresses as NULL, as VoIPmonitor does; storing IPv6 needs a database created with ipv6 = yes (varbinary(16) IP columns)")
	case !w.o.IPv6 && f.v6():
		w.log.Warn("ipv6 = no, but the database was created with ipv6 = yes (cdr.sipcallerip is varbinary(16)): addresses are stored as varbinary, as VoIPmonitor does; IPv6 packets are still ignored (ipv6 = no)")
	}
	w.ips = f
	return nil
}

func (w *Writer) createDatabase(ctx context.Context) error {
	mc, err := mysql.ParseDSN(w.o.DSN)
	if err != nil || mc.DBName == "" {
		return fmt.Errorf("no database name: %w", err)
	}
	name := mc.DBName
	mc.DBName = ""
	db, err := dbconn.Open(mc.FormatDSN(), w.log)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` DEFAULT CHARACTER SET latin1")
	if err == nil {
		w.log.Info("created database", "name", name)
	}
	return err
}

func (w *Writer) inspectAutoInc(ctx context.Context) error {
	var mode, step int
	if err := w.db.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").Scan(&mode, &step); err != nil {
		return err
	}
	w.consecIDs = mode != 2
	w.idStep = uint64(max(step, 1))
	return nil
}

// dbError counts a MySQL failure, marks the database down and logs it
// (repeats of the same message at most once a minute).
func (w *Writer) dbError(msg string, err error) {
	w.st.dbErrors.Add(1)
	w.st.dbUp.Store(false)
	w.nextRetry = time.Now().Add(w.o.RetryInterval)
	text := err.Error()
	if text != w.lastErrMsg || time.Since(w.lastErrLog) > time.Minute {
		w.log.Error(msg, "err", err, "hint", hint(err))
		w.lastErrMsg, w.lastErrLog = text, time.Now()
	}
}

// hint turns common MySQL errors into advice for the log.
func hint(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045:
			return "wrong mysqlusername/mysqlpassword"
		case 1044, 1142, 1143, 1227:
			return "the MySQL user lacks privileges: it needs CREATE, ALTER, INSERT, SELECT, UPDATE on mysqldb"
		case 1049:
			return "mysqldb does not exist and could not be created"
		case 1290, 1836:
			return "the server is read-only"
		}
	}
	return "check mysqlhost/mysqlport/mysqlsocket; CDRs are kept in the on-disk queue meanwhile"
}

// isDataError reports MySQL errors caused by a record's values rather than by
// the server or connection: retrying the same record cannot help.
func isDataError(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1048, 1062, 1264, 1265, 1292, 1366, 1406, 1452, 1526:
		return true
	}
	return false
}

// flushBatch writes a batch of new records. While older records wait in the
// disk queue, new ones are appended behind them to keep the order.
func (w *Writer) flushBatch(ctx context.Context, batch []item) {
	if n, _ := w.q.Pending(); n > 0 || !w.ready {
		w.spill(batch) //nolint:errcheck // counted and logged in spill
		return
	}
	if err := w.writeOrSplit(ctx, batch); err != nil {
		w.dbError("CDR batch not written; queued to disk", err)
		w.ready = w.ready && !isConnError(err)
		w.spill(batch) //nolint:errcheck // counted and logged in spill
	}
}

// writeOrSplit writes a batch; when MySQL rejects it for its data, the batch
// is retried record by record and the records MySQL refuses are set aside in
// rejected.jsonl (counted) so they cannot block the queue. Other errors are
// returned with nothing written.
func (w *Writer) writeOrSplit(ctx context.Context, batch []item) error {
	err := w.writeRetry(ctx, batch)
	if err == nil || !isDataError(err) {
		return err
	}
	for i := range batch {
		err := w.writeRetry(ctx, batch[i:i+1])
		if err == nil {
			continue
		}
		if !isDataError(err) {
			return err
		}
		w.reject(batch[i], err)
	}
	return nil
}

// conflictRetries is how often a batch refused with MySQL error 1213 is
// tried again at once before it goes to the disk queue.
const conflictRetries = 8

// writeRetry writes a batch, trying again after a deadlock or, on Galera, a
// certification conflict (both error 1213: nothing of the transaction was
// kept). Two sensors inserting the same new User-Agent through two nodes, or
// the daily REORGANIZE PARTITION aborting a batch in flight, end here.
func (w *Writer) writeRetry(ctx context.Context, batch []item) error {
	for attempt := 1; ; attempt++ {
		err := w.writeBatch(ctx, batch)
		if !isConflict(err) || attempt > conflictRetries {
			return err
		}
		w.st.conflicts.Add(1)
		w.log.Debug("CDR batch hit a write conflict; retrying", "attempt", attempt, "err", err)
		if !sleepCtx(ctx, time.Duration(attempt)*50*time.Millisecond) {
			return err
		}
	}
}

// isConflict reports MySQL error 1213: a deadlock, or on Galera a
// certification conflict or a transaction aborted by a replicated one (DDL
// included). The transaction left nothing behind; trying again is safe.
func isConflict(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *Writer) reject(it item, cause error) {
	w.st.rejected.Add(1)
	w.log.Error("MySQL refused a CDR; kept in rejected.jsonl", "err", cause)
	b, err := it.encode()
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(w.o.QueueDir, "rejected.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		w.log.Error("cannot keep rejected CDR", "err", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		w.log.Error("cannot keep rejected CDR", "err", err)
	}
}

// replayOnce writes one batch from the disk queue. It reports true when the
// test crash hook fired.
func (w *Writer) replayOnce(ctx context.Context) (crashed bool) {
	recs, next, err := w.q.Read(w.o.BatchSize)
	if err != nil {
		w.st.queueErrors.Add(1)
		w.log.Error("on-disk CDR queue read failed", "err", err)
		w.nextRetry = time.Now().Add(w.o.RetryInterval)
		return false
	}
	items := make([]item, 0, len(recs))
	for _, r := range recs {
		it, err := decodeItem(r)
		if err != nil {
			w.st.rejected.Add(1)
			w.log.Error("undecodable record in the on-disk CDR queue; skipped", "err", err)
			continue
		}
		items = append(items, it)
	}
	if len(items) > 0 {
		if err := w.writeOrSplit(ctx, items); err != nil {
			w.dbError("replay of the on-disk CDR queue failed; will retry", err)
			w.ready = w.ready && !isConnError(err)
			return false
		}
	}
	if w.crashAfterCommit != nil && w.crashAfterCommit() {
		return true
	}
	if err := w.q.Commit(next, len(recs)); err != nil {
		w.st.queueErrors.Add(1)
		w.log.Error("cannot save the on-disk CDR queue position", "err", err)
		w.nextRetry = time.Now().Add(w.o.RetryInterval)
		return false
	}
	w.st.replayed.Add(uint64(len(items)))
	return false
}

// replayAll replays until the disk queue is empty or MySQL fails.
func (w *Writer) replayAll(ctx context.Context) error {
	if !w.ready {
		w.connect(ctx)
	}
	for {
		n, _ := w.q.Pending()
		if n == 0 {
			return nil
		}
		if !w.ready {
			return fmt.Errorf("cdr: MySQL not ready; %d records in the on-disk queue", n)
		}
		before := w.st.dbErrors.Load()
		if w.replayOnce(ctx) {
			return nil
		}
		if w.st.dbErrors.Load() != before || ctx.Err() != nil {
			n, _ := w.q.Pending()
			return fmt.Errorf("cdr: %d records left in the on-disk queue: %s", n, w.lastErrMsg)
		}
	}
}

// isConnError reports whether err means the connection or server is gone
// (as opposed to a refused statement).
func isConnError(err error) bool {
	var me *mysql.MySQLError
	return !errors.As(err, &me)
}

// writeBatch writes the records of one batch in one transaction. Records
// whose idempotency key is already present are skipped (counted as duplicates).
func (w *Writer) writeBatch(ctx context.Context, batch []item) error {
	start := time.Now()
	// Lookup ids first, outside the transaction (see codebook).
	look, regUA, err := w.resolveBatch(ctx, batch)
	if err != nil {
		return err
	}
	keys := make([]key, len(batch))
	for i, it := range batch {
		if it.reg != nil {
			keys[i] = registerKey(it.reg, w.o.IDSensor)
		} else {
			keys[i] = cdrKey(it.cdr, w.o.IDSensor)
		}
	}

	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	seen, err := existingKeys(ctx, tx, keys)
	if err != nil {
		return err
	}
	ro := rowOptions{idSensor: w.o.IDSensor, partition: w.o.Partition, mosMinAll: w.o.MOSMinAll,
		fromFirstInvite: w.o.ResponseTimeFromFirstInvite, ips: w.ips}
	p := planBatch(batch, keys, seen, look, regUA, ro)
	bw := batchWrite{w: w, tx: tx, rowIDs: make([]uint64, len(batch)), counts: map[string]int{}}
	if err := bw.numbered(ctx, "cdr", p.cdr); err != nil {
		return err
	}
	if err := bw.numbered(ctx, "register_state", p.regState); err != nil {
		return err
	}
	if err := bw.numbered(ctx, "register_failed", p.regFailed); err != nil {
		return err
	}
	if err := bw.children(ctx, batch, p.cdr.idx, look, ro); err != nil {
		return err
	}
	written, err := bw.keys(ctx, batch, keys)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.st.written.Add(uint64(written))
	w.st.duplicates.Add(uint64(p.dups))
	for t, n := range bw.counts {
		w.st.addRows(t, n)
	}
	w.st.observeBatch(time.Since(start))
	w.st.dbUp.Store(true)
	return nil
}

// resolveBatch finds (or creates) the codebook ids the batch's rows refer to.
func (w *Writer) resolveBatch(ctx context.Context, batch []item) ([]lookups, []uint64, error) {
	look := make([]lookups, len(batch))
	regUA := make([]uint64, len(batch))
	for i, it := range batch {
		var err error
		if it.reg != nil {
			if regUA[i], err = w.cb.resolve(ctx, w.db, lookupUA, 0, w.ua(it.reg.UA)); err != nil {
				return nil, nil, err
			}
			continue
		}
		if look[i], err = w.resolveCDR(ctx, it.cdr); err != nil {
			return nil, nil, err
		}
	}
	return look, regUA, nil
}

// numberedRows are rows whose auto-increment ids the batch needs back: idx
// are their records' positions in the batch.
type numberedRows struct {
	idx  []int
	rows []row
}

func (n *numberedRows) add(i int, r row) { n.idx, n.rows = append(n.idx, i), append(n.rows, r) }

// batchPlan is what a batch writes once the records already stored are
// left out.
type batchPlan struct {
	cdr, regState, regFailed numberedRows
	dups                     int
}

func planBatch(batch []item, keys []key, seen map[key]bool, look []lookups, regUA []uint64, ro rowOptions) batchPlan {
	var p batchPlan
	for i, it := range batch {
		if seen[keys[i]] {
			p.dups++
			continue
		}
		seen[keys[i]] = true // a key twice in one batch is written once
		if it.cdr != nil {
			p.cdr.add(i, cdrRow(it.cdr, &look[i], ro))
			continue
		}
		table, r := registerRow(it.reg, regUA[i], ro)
		if table == "register_failed" {
			p.regFailed.add(i, r)
		} else {
			p.regState.add(i, r)
		}
	}
	return p
}

// batchWrite is one batch's transaction: the ids given to its records and
// the rows written per table.
type batchWrite struct {
	w      *Writer
	tx     *sql.Tx
	rowIDs []uint64 // by batch position; 0 = not written
	counts map[string]int
}

// numbered inserts rows and records their ids: one multi-row INSERT when
// the server hands out consecutive ids, else one INSERT per row.
func (b *batchWrite) numbered(ctx context.Context, table string, n numberedRows) error {
	if len(n.rows) == 0 {
		return nil
	}
	var got []uint64
	if b.w.consecIDs {
		chunks, err := insertRows(ctx, b.tx, table, n.rows)
		if err != nil {
			return err
		}
		got = ids(chunks, b.w.idStep)
	} else {
		for _, r := range n.rows {
			chunks, err := insertRows(ctx, b.tx, table, []row{r})
			if err != nil {
				return err
			}
			got = append(got, chunks[0].first)
		}
	}
	for j, i := range n.idx {
		b.rowIDs[i] = got[j]
	}
	b.counts[table] += len(n.rows)
	return nil
}

// children inserts the rows that hang off each new cdr row.
func (b *batchWrite) children(ctx context.Context, batch []item, cdrIdx []int, look []lookups, ro rowOptions) error {
	var next, rtpRows, respRows, dtmfRows, astRows, seriesRows []row
	for _, i := range cdrIdx {
		c, id := batch[i].cdr, b.rowIDs[i]
		next = append(next, cdrNextRow(id, c, ro))
		rtpRows = append(rtpRows, cdrRTPRows(id, c, ro)...)
		respRows = append(respRows, cdrSIPRespRows(id, c, &look[i], ro)...)
		dtmfRows = append(dtmfRows, cdrDTMFRows(id, c, ro)...)
		if a := batch[i].ast; a != nil {
			astRows = append(astRows, cdrAsteriskRow(id, c, a))
		}
		seriesRows = append(seriesRows, cdrSeriesRows(id, c)...)
	}
	for _, t := range []struct {
		name string
		rows []row
	}{{"cdr_next", next}, {"cdr_rtp", rtpRows}, {"cdr_sipresp", respRows}, {"cdr_dtmf", dtmfRows},
		{"cdr_asterisk", astRows}, {"cdr_rtp_series", seriesRows}} {
		if _, err := insertRows(ctx, b.tx, t.name, t.rows); err != nil {
			return err
		}
		b.counts[t.name] += len(t.rows)
	}
	return nil
}

// keys records the idempotency key of every record written; it returns
// their number.
func (b *batchWrite) keys(ctx context.Context, batch []item, keys []key) (int, error) {
	var keyRows []row
	now := time.Now().UTC()
	for i := range batch {
		if b.rowIDs[i] == 0 {
			continue
		}
		kind := int64(1)
		if batch[i].reg != nil {
			kind = 2
		}
		keyRows = append(keyRows, row{{"k", keys[i][:]}, {"kind", kind}, {"row_id", b.rowIDs[i]}, {"created_at", now}})
	}
	if _, err := insertRows(ctx, b.tx, writtenTable, keyRows); err != nil {
		return 0, err
	}
	return len(keyRows), nil
}

// ua is a User-Agent as stored in cdr_ua.
func (w *Writer) ua(s string) string {
	if w.o.RawUA {
		return s
	}
	return NormaliseUA(s)
}

func (w *Writer) resolveCDR(ctx context.Context, c *call.CDR) (lookups, error) {
	var l lookups
	var err error
	if l.lastResponse, err = w.cb.resolve(ctx, w.db, lookupResponse, 0, c.LastSIPResponse); err != nil {
		return l, err
	}
	if l.callerUA, err = w.cb.resolve(ctx, w.db, lookupUA, 0, w.ua(c.CallerUA)); err != nil {
		return l, err
	}
	if l.calledUA, err = w.cb.resolve(ctx, w.db, lookupUA, 0, w.ua(c.CalledUA)); err != nil {
		return l, err
	}
	if l.reasonSIP, err = w.cb.resolve(ctx, w.db, lookupReason, reasonTypeSIP, reasonText(c.ReasonSIPCause, c.ReasonSIPText)); err != nil {
		return l, err
	}
	if l.reasonQ850, err = w.cb.resolve(ctx, w.db, lookupReason, reasonTypeQ850, reasonText(c.ReasonQ850Cause, c.ReasonQ850Text)); err != nil {
		return l, err
	}
	if resp := sipResponses(c); len(resp) > 0 {
		l.responses = make(map[string]uint64, len(resp))
		for _, r := range resp {
			text := responseText(r)
			if _, ok := l.responses[text]; ok {
				continue
			}
			if l.responses[text], err = w.cb.resolve(ctx, w.db, lookupResponse, 0, text); err != nil {
				return l, err
			}
		}
	}
	return l, nil
}

// reasonText is the cdr_reason text: the Reason header's text, or
// "<cause> (text missing)" as VoIPmonitor stores a cause without text.
func reasonText(cause int, text string) string {
	if text != "" {
		return text
	}
	if cause > 0 {
		return strconv.Itoa(cause) + " (text missing)"
	}
	return ""
}

func existingKeys(ctx context.Context, tx *sql.Tx, keys []key) (map[key]bool, error) {
	seen := make(map[key]bool, len(keys))
	if len(keys) == 0 {
		return seen, nil
	}
	q := make([]byte, 0, 64+len(keys)*2)
	q = append(q, "SELECT `k` FROM `"+writtenTable+"` WHERE `k` IN ("...)
	args := make([]any, len(keys))
	for i := range keys {
		if i > 0 {
			q = append(q, ',')
		}
		q = append(q, '?')
		args[i] = keys[i][:]
	}
	q = append(q, ") FOR UPDATE"...)
	rows, err := tx.QueryContext(ctx, string(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var k key
		copy(k[:], b)
		seen[k] = true
	}
	return seen, rows.Err()
}

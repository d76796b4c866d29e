package cdr

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rowTables are the tables whose written rows are counted.
var rowTables = []string{"cdr", "cdr_next", "cdr_rtp", "cdr_sipresp", "cdr_dtmf", "register_state", "register_failed", "cdr_asterisk", "cdr_rtp_series"}

type stats struct {
	enqueued    atomic.Uint64
	skipped     atomic.Uint64 // CDRs not stored (cdronlyanswered, cdronlyrtp)
	written     atomic.Uint64 // records (CDRs + REGISTERs) committed
	duplicates  atomic.Uint64 // records skipped: key already present
	overflow    atomic.Uint64 // records sent to disk because memory was full
	spilled     atomic.Uint64 // records appended to the disk queue
	replayed    atomic.Uint64 // records replayed from the disk queue
	lost        atomic.Uint64 // records dropped (closed writer, disk queue failure)
	rejected    atomic.Uint64 // records MySQL refused for their values
	conflicts   atomic.Uint64 // batches tried again after error 1213
	dbErrors    atomic.Uint64
	queueErrors atomic.Uint64
	dbUp        atomic.Bool
	// cleandatabase
	partitionsDropped atomic.Uint64
	rowsCleaned       atomic.Uint64
	cleanErrors       atomic.Uint64
	rows              map[string]*atomic.Uint64 // read-only map after newStats
	batch             prometheus.Histogram
}

func newStats() *stats {
	s := &stats{rows: map[string]*atomic.Uint64{}}
	for _, t := range rowTables {
		s.rows[t] = new(atomic.Uint64)
	}
	s.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "pbx", Subsystem: "cdr", Name: "batch_seconds",
		Help:    "Time to write one batch to MySQL (lookups, inserts, commit).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	return s
}

func (s *stats) addRows(table string, n int) {
	if c, ok := s.rows[table]; ok {
		c.Add(uint64(n))
	}
}

func (s *stats) observeBatch(d time.Duration) { s.batch.Observe(d.Seconds()) }

// Stats is a snapshot of the writer's counters.
type Stats struct {
	Enqueued, Written, Duplicates, Overflow, Spilled, Replayed uint64
	Lost, Rejected, DBErrors, QueueErrors, ConflictRetries     uint64
	Skipped                                                    uint64 // CDRs cdronlyanswered / cdronlyrtp left out
	Rows                                                       map[string]uint64
	MemoryQueue                                                int   // records waiting in memory
	DiskQueue                                                  int   // records waiting on disk
	DiskQueueBytes                                             int64 // bytes waiting on disk
	TornRecords, CorruptRecords                                int
	DBUp                                                       bool
	// PartitionsDropped and RowsCleaned count what cleandatabase removed;
	// CleanErrors the cleaning passes that failed.
	PartitionsDropped, RowsCleaned, CleanErrors uint64
}

// Stats returns the current counters.
func (w *Writer) Stats() Stats {
	s := w.st
	out := Stats{
		Enqueued: s.enqueued.Load(), Skipped: s.skipped.Load(), Written: s.written.Load(), Duplicates: s.duplicates.Load(),
		Overflow: s.overflow.Load(), Spilled: s.spilled.Load(), Replayed: s.replayed.Load(),
		Lost: s.lost.Load(), Rejected: s.rejected.Load(), DBErrors: s.dbErrors.Load(),
		QueueErrors: s.queueErrors.Load(), ConflictRetries: s.conflicts.Load(), DBUp: s.dbUp.Load(), MemoryQueue: len(w.in),
		Rows:              make(map[string]uint64, len(s.rows)),
		PartitionsDropped: s.partitionsDropped.Load(), RowsCleaned: s.rowsCleaned.Load(), CleanErrors: s.cleanErrors.Load(),
	}
	for t, c := range s.rows {
		out.Rows[t] = c.Load()
	}
	out.DiskQueue, out.DiskQueueBytes = w.q.Pending()
	out.TornRecords, out.CorruptRecords = w.q.damage()
	return out
}

// collector exposes Stats to Prometheus.
type collector struct {
	w     *Writer
	descs map[string]*prometheus.Desc
}

var metricHelp = []struct{ name, help string }{
	{"enqueued_total", "Records (CDRs and REGISTERs) handed to the writer."},
	{"written_total", "Records committed to MySQL."},
	{"skipped_total", "CDRs not stored: unanswered (cdronlyanswered) or without RTP (cdronlyrtp)."},
	{"duplicates_total", "Records skipped because their idempotency key was already in MySQL."},
	{"overflow_total", "Records sent straight to the disk queue because the memory queue was full."},
	{"spilled_total", "Records appended to the on-disk queue."},
	{"replayed_total", "Records replayed from the on-disk queue into MySQL."},
	{"lost_total", "Records dropped: writer closed or disk queue unusable (full disk, cap reached)."},
	{"rejected_total", "Records MySQL refused for their values (kept in rejected.jsonl)."},
	{"db_errors_total", "MySQL errors (connect, migrate, write)."},
	{"queue_errors_total", "On-disk queue I/O errors."},
	{"conflict_retries_total", "Batches tried again after a deadlock or a Galera certification conflict (MySQL error 1213)."},
	{"memory_queue_depth", "Records waiting in the in-memory queue."},
	{"disk_queue_depth", "Records waiting in the on-disk queue."},
	{"disk_queue_bytes", "Bytes waiting in the on-disk queue."},
	{"db_up", "1 when the last MySQL operation succeeded."},
	{"rows_written_total", "Rows inserted, by table."},
	{"partitions_dropped_total", "Daily partitions dropped by database cleaning (cleandatabase*, cleandatabase_size)."},
	{"rows_cleaned_total", "Rows deleted by database cleaning from tables without partitions."},
	{"clean_errors_total", "Database cleaning passes that failed (tried again in 5 minutes)."},
}

func (w *Writer) collector() *collector {
	c := &collector{w: w, descs: map[string]*prometheus.Desc{}}
	for _, m := range metricHelp {
		var labels []string
		if m.name == "rows_written_total" {
			labels = []string{"table"}
		}
		c.descs[m.name] = prometheus.NewDesc(prometheus.BuildFQName("pbx", "cdr", m.name), m.help, labels, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	c.w.st.batch.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.Stats()
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
	counter("enqueued_total", s.Enqueued)
	counter("written_total", s.Written)
	counter("skipped_total", s.Skipped)
	counter("duplicates_total", s.Duplicates)
	counter("overflow_total", s.Overflow)
	counter("spilled_total", s.Spilled)
	counter("replayed_total", s.Replayed)
	counter("lost_total", s.Lost)
	counter("rejected_total", s.Rejected)
	counter("db_errors_total", s.DBErrors)
	counter("queue_errors_total", s.QueueErrors)
	counter("conflict_retries_total", s.ConflictRetries)
	counter("partitions_dropped_total", s.PartitionsDropped)
	counter("rows_cleaned_total", s.RowsCleaned)
	counter("clean_errors_total", s.CleanErrors)
	gauge("memory_queue_depth", float64(s.MemoryQueue))
	gauge("disk_queue_depth", float64(s.DiskQueue))
	gauge("disk_queue_bytes", float64(s.DiskQueueBytes))
	up := 0.0
	if s.DBUp {
		up = 1
	}
	gauge("db_up", up)
	for _, t := range rowTables {
		ch <- prometheus.MustNewConstMetric(c.descs["rows_written_total"], prometheus.CounterValue, float64(s.Rows[t]), t)
	}
	c.w.st.batch.Collect(ch)
}

// Register adds the writer's metrics (pbx_cdr_*) to reg.
func (w *Writer) Register(reg prometheus.Registerer) error {
	return reg.Register(w.collector())
}

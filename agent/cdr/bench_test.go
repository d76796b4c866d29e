package cdr

import (
	"context"
	"testing"
	"time"

	"pbx-agent/agent/dbtest"
)

// BenchmarkWriterInsert measures the sustained CDR insert rate into MariaDB:
// each CDR is 1 cdr + 1 cdr_next + 2 cdr_rtp + 3 cdr_sipresp rows + its key,
// written in batches of 200 through the writer goroutine. One op is 1000
// CDRs enqueued and flushed.
func BenchmarkWriterInsert(b *testing.B) {
	benchInsert(b, scratchDB(b, testDSN(b)))
}

// BenchmarkWriterGalera is BenchmarkWriterInsert in one run against the
// single MariaDB and through node 1 of the Galera cluster (make
// cluster-test's), for the ratio: every commit there is certified by the
// three nodes and ids are learnt one row at a time (innodb_autoinc_lock_mode
// = 2).
//
//	go test -run '^$' -bench WriterGalera -benchtime 5x ./agent/cdr
func BenchmarkWriterGalera(b *testing.B) {
	cl := dbtest.Galera(b)
	b.Run("single", func(b *testing.B) { benchInsert(b, scratchDB(b, testDSN(b))) })
	b.Run("galera", func(b *testing.B) { benchInsert(b, cl.DSN(1, cl.Scratch(b, "pbx_b_"))) })
}

func benchInsert(b *testing.B, dsn string) {
	o := testOptions(dsn, b.TempDir())
	o.BatchSize = 200
	o.QueueSize = 100000
	o.FlushInterval = 50 * time.Millisecond
	w := startWriter(b, o)
	ctx := context.Background()
	if err := w.Flush(ctx); err != nil { // schema in place before timing
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for range 1000 {
			if err := w.Enqueue(sampleCDR(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	s := w.Stats()
	var rows uint64
	for _, n := range s.Rows {
		rows += n
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(s.Written)/sec, "cdrs/s")
	b.ReportMetric(float64(rows)/sec, "rows/s")
	if s.Written != uint64(i) {
		b.Errorf("written %d of %d", s.Written, i)
	}
}

// BenchmarkCDRRow measures mapping one CDR to its cdr row.
func BenchmarkCDRRow(b *testing.B) {
	c := sampleCDR(1)
	l := &lookups{lastResponse: 1, callerUA: 2}
	b.ReportAllocs()
	for b.Loop() {
		cdrRow(c, l, rowOptions{idSensor: 1})
	}
}

package cdr

import (
	"context"
	"testing"
	"time"
)

// BenchmarkWriterInsert measures the sustained CDR insert rate into MariaDB:
// each CDR is 1 cdr + 1 cdr_next + 2 cdr_rtp + 3 cdr_sipresp rows + its key,
// written in batches of 200 through the writer goroutine. One op is 1000
// CDRs enqueued and flushed.
func BenchmarkWriterInsert(b *testing.B) {
	dsn := scratchDB(b, testDSN(b))
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

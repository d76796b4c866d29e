package cdr

import (
	"testing"
	"time"

	"pbx-agent/sniffer/rtp"
)

// TestSeriesRowsUniqueIndex: a call with more streams than cdr_rtp_series'
// index holds (tinyint unsigned) gets a series row for each of the first
// 255 only, each index once: a repeated (cdr_ID, index) key would make
// MySQL reject the whole CDR.
func TestSeriesRowsUniqueIndex(t *testing.T) {
	c := sampleCDR(0)
	one := rtp.Series{Start: time.Unix(1700000000, 0), Step: 1, Points: []rtp.Point{{Received: 50, MOS: 4.5}}}
	c.Streams = make([]rtp.Summary, 300)
	for i := range c.Streams {
		c.Streams[i].Series = one
	}
	rows := cdrSeriesRows(1, c)
	if len(rows) != maxTiny {
		t.Errorf("%d series rows for 300 streams, want %d", len(rows), maxTiny)
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		for _, cl := range r {
			if cl.name != "index" {
				continue
			}
			idx := cl.v.(int64)
			if seen[idx] || idx < 1 || idx > maxTiny {
				t.Fatalf("series row index %d repeated or out of 1…%d", idx, maxTiny)
			}
			seen[idx] = true
		}
	}
}

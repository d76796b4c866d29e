package cdr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func recs(from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("record-%06d", from+i))
	}
	return out
}

func readAll(t *testing.T, q *diskQueue) []string {
	t.Helper()
	var out []string
	for {
		rs, next, err := q.Read(7)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			return out
		}
		for _, r := range rs {
			out = append(out, string(r))
		}
		if err := q.Commit(next, len(rs)); err != nil {
			t.Fatal(err)
		}
	}
}

// mustOpenQueue opens the on-disk queue in dir or stops the test.
func mustOpenQueue(tb testing.TB, dir string, maxBytes int64) *diskQueue {
	tb.Helper()
	q, err := openQueue(dir, maxBytes)
	if err != nil {
		tb.Fatal(err)
	}
	return q
}

// cdrBatch returns one encoded CDR-sized record and a batch of n copies of it.
func cdrBatch(n int) ([]byte, [][]byte) {
	rec, _ := item{cdr: sampleCDR(1)}.encode()
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = rec
	}
	return rec, batch
}

func TestQueueAppendReadCommit(t *testing.T) {
	dir := t.TempDir()
	q := mustOpenQueue(t, dir, 0)
	q.segMax = 200 // force several segments
	for i := 0; i < 50; i += 10 {
		if err := q.Append(recs(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := q.Pending(); n != 50 {
		t.Fatalf("pending = %d, want 50", n)
	}
	// Read without commit, then reopen: nothing is lost.
	if _, _, err := q.Read(20); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q = mustOpenQueue(t, dir, 0)
	if n, _ := q.Pending(); n != 50 {
		t.Fatalf("pending after reopen = %d, want 50", n)
	}
	got := readAll(t, q)
	if len(got) != 50 || got[0] != "record-000000" || got[49] != "record-000049" {
		t.Fatalf("read %d records: %v…", len(got), got[:min(3, len(got))])
	}
	if n, b := q.Pending(); n != 0 || b != 0 {
		t.Errorf("pending after drain = %d records %d bytes", n, b)
	}
	segs, _ := q.segments()
	if len(segs) != 1 {
		t.Errorf("segments after drain = %v, want only the fresh one", segs)
	}
	// Appending after a drain works and survives reopen.
	if err := q.Append(recs(100, 3)); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q = mustOpenQueue(t, dir, 0)
	defer q.Close()
	if got := readAll(t, q); len(got) != 3 || got[0] != "record-000100" {
		t.Errorf("after drain+append+reopen read %v", got)
	}
}

func TestQueueTornTail(t *testing.T) {
	tests := []struct {
		name string
		cut  func(b []byte) []byte // applied to the segment file
		want int
	}{
		{"half header", func(b []byte) []byte { return append(b, 0, 0, 0) }, 5},
		{"half payload", func(b []byte) []byte { return b[:len(b)-4] }, 4},
		{"bad checksum", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := mustOpenQueue(t, dir, 0)
			if err := q.Append(recs(0, 5)); err != nil {
				t.Fatal(err)
			}
			q.Close()
			seg := filepath.Join(dir, segName(1))
			b, _ := os.ReadFile(seg)
			if err := os.WriteFile(seg, tt.cut(b), 0o640); err != nil {
				t.Fatal(err)
			}
			q = mustOpenQueue(t, dir, 0)
			defer q.Close()
			if torn, _ := q.damage(); torn != 1 {
				t.Errorf("torn = %d, want 1", torn)
			}
			if err := q.Append(recs(5, 1)); err != nil { // appends after the cut
				t.Fatal(err)
			}
			got := readAll(t, q)
			if len(got) != tt.want+1 || got[len(got)-1] != "record-000005" {
				t.Errorf("read %v, want %d good records then record-000005", got, tt.want)
			}
		})
	}
}

func TestQueueCorruptMiddle(t *testing.T) {
	dir := t.TempDir()
	q := mustOpenQueue(t, dir, 0)
	q.segMax = 100
	for i := range 4 {
		if err := q.Append(recs(i*3, 3)); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	// Flip a byte in the first segment's second record.
	seg := filepath.Join(dir, segName(1))
	b, _ := os.ReadFile(seg)
	b[recHeader+13+recHeader+2] ^= 0xff
	os.WriteFile(seg, b, 0o640)
	q = mustOpenQueue(t, dir, 0)
	defer q.Close()
	got := readAll(t, q)
	if _, corrupt := q.damage(); corrupt != 1 {
		t.Errorf("corrupt = %d, want 1", corrupt)
	}
	if len(got) == 0 || got[0] != "record-000000" || got[len(got)-1] != "record-000011" {
		t.Errorf("read %v: want the first record, the later segments, and the end", got)
	}
}

func TestQueueCapBytes(t *testing.T) {
	q := mustOpenQueue(t, t.TempDir(), 100)
	defer q.Close()
	if err := q.Append(recs(0, 4)); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(recs(4, 4)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("append over cap: err = %v, want ErrQueueFull", err)
	}
	if n, _ := q.Pending(); n != 4 {
		t.Errorf("pending = %d, want 4", n)
	}
}

// BenchmarkQueueAppend measures the on-disk queue's write rate with one
// fsync per batch of 100 CDR-sized records (records/s in the output).
func BenchmarkQueueAppend(b *testing.B) {
	q := mustOpenQueue(b, b.TempDir(), 0)
	defer q.Close()
	rec, batch := cdrBatch(100)
	b.SetBytes(int64(len(rec) * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkQueueReplay measures reading, decoding and committing records
// back from the on-disk queue (without MySQL).
func BenchmarkQueueReplay(b *testing.B) {
	q := mustOpenQueue(b, b.TempDir(), 0)
	defer q.Close()
	_, batch := cdrBatch(100)
	for range max(1, 2000/len(batch)) {
		if err := q.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rs, next, err := q.Read(100)
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) == 0 {
			b.StopTimer()
			if err := q.Append(batch); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			continue
		}
		for _, r := range rs {
			if _, err := decodeItem(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := q.Commit(next, len(rs)); err != nil {
			b.Fatal(err)
		}
		n += len(rs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func TestItemRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   item
	}{
		{"cdr", item{cdr: sampleCDR(3)}},
		{"busy", item{cdr: sampleBusy(1)}},
		{"register", item{reg: sampleRegister(0, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.in.encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeItem(b)
			if err != nil {
				t.Fatal(err)
			}
			// The idempotency key must survive the disk round trip.
			if tt.in.cdr != nil && cdrKey(got.cdr, 1) != cdrKey(tt.in.cdr, 1) {
				t.Error("cdr key changed across encode/decode")
			}
			if tt.in.reg != nil && registerKey(got.reg, 1) != registerKey(tt.in.reg, 1) {
				t.Error("register key changed across encode/decode")
			}
			b2, _ := got.encode()
			if string(b) != string(b2) {
				t.Errorf("re-encoding differs:\n%s\n%s", b, b2)
			}
		})
	}
	for _, bad := range []string{"", "{}", `{"k":"cdr"}`, `{"k":"x","c":{}}`, "[1]"} {
		if _, err := decodeItem([]byte(bad)); !errors.Is(err, ErrRecord) {
			t.Errorf("decodeItem(%q) err = %v, want ErrRecord", bad, err)
		}
	}
}

func FuzzQueueRecord(f *testing.F) {
	rec, _ := item{cdr: sampleCDR(1)}.encode()
	f.Add(rec)
	f.Add([]byte(`{"k":"reg","r":{"Time":"2024-01-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := decodeItem(b)
		if err != nil {
			return
		}
		if (it.cdr == nil) == (it.reg == nil) {
			t.Fatal("decoded item must hold exactly one record")
		}
		ro := rowOptions{idSensor: 1}
		if it.cdr != nil {
			cdrRow(it.cdr, &lookups{}, ro)
			cdrRTPRows(1, it.cdr, ro)
		} else {
			registerRow(it.reg, 0, ro)
		}
	})
}

package cdr

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// unreachableDSN points at a port nothing listens on: the writer spills
// everything to the disk queue.
const unreachableDSN = "nobody:x@tcp(127.0.0.1:1)/none?timeout=200ms"

// fillQueue puts n CDRs in the on-disk queue at dir (MySQL unreachable).
func fillQueue(t *testing.T, dir string, n int) {
	t.Helper()
	o := testOptions(unreachableDSN, dir)
	w, err := New(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Enqueue(sampleCDR(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.DiskQueue != n || s.Lost != 0 {
		t.Fatalf("queue holds %d records (lost %d), want %d", s.DiskQueue, s.Lost, n)
	}
}

func flushUntil(t *testing.T, w *Writer, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.Flush(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flush: %v; stats %+v", err, w.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce asserts that calls 0..n-1 are each stored once.
func checkExactlyOnce(t *testing.T, dsn string, n int) (rows, distinct int) {
	t.Helper()
	db := openDB(t, dsn)
	rows = count(t, db, "SELECT COUNT(*) FROM cdr")
	distinct = count(t, db, "SELECT COUNT(DISTINCT fbasename) FROM cdr_next")
	rtp := count(t, db, "SELECT COUNT(*) FROM cdr_rtp")
	if rows != n || distinct != n || rtp != 2*n {
		t.Errorf("cdr rows %d, distinct calls %d, cdr_rtp rows %d; want %d, %d, %d (generated %d, duplicated %d, lost %d)",
			rows, distinct, rtp, n, n, 2*n, n, rows-distinct, n-distinct)
	}
	return rows, distinct
}

// TestCrashMidReplay: the writer "crashes" after a replayed batch is
// committed to MySQL but before the queue position is saved. The next writer
// replays that batch again; the idempotency keys make it a no-op.
func TestCrashMidReplay(t *testing.T) {
	dsn := scratchDB(t, testDSN(t))
	dir := t.TempDir()
	const n = 120
	fillQueue(t, dir, n)

	o := testOptions(dsn, dir)
	w, err := New(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	w.crashAfterCommit = func() bool { batches++; return batches == 2 }
	if err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := count(t, openDB(t, dsn), "SELECT COUNT(*) FROM cdr"); got != 2*o.BatchSize {
		t.Fatalf("after crash: %d cdr rows, want %d", got, 2*o.BatchSize)
	}

	w2 := startWriter(t, o)
	if s := w2.Stats(); s.DiskQueue != n-o.BatchSize {
		t.Errorf("after restart: %d records pending, want %d", s.DiskQueue, n-o.BatchSize)
	}
	flushUntil(t, w2, 30*time.Second)
	s := w2.Stats()
	if s.Duplicates != uint64(o.BatchSize) || s.Written != uint64(n-2*o.BatchSize) {
		t.Errorf("second writer: written %d duplicates %d; want %d and %d", s.Written, s.Duplicates, n-2*o.BatchSize, o.BatchSize)
	}
	rows, distinct := checkExactlyOnce(t, dsn, n)
	t.Logf("crash mid-replay: generated %d, written %d, duplicated %d, lost %d", n, distinct, rows-distinct, n-distinct)
}

// TestMariaDBRestartDuringWrites stops MariaDB (SIGKILL, then a clean
// restart) while CDRs keep arriving; every CDR must end up stored once.
func TestMariaDBRestartDuringWrites(t *testing.T) {
	m := startPrivateMariaDB(t)
	dsn := scratchDB(t, m.dsn)
	o := testOptions(dsn, t.TempDir())
	o.BatchSize = 20
	w := startWriter(t, o)

	const n = 600
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := w.Enqueue(sampleCDR(i)); err != nil {
				t.Errorf("enqueue %d: %v", i, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for start := time.Now(); w.Stats().Written < 100 && time.Since(start) < 30*time.Second; {
		time.Sleep(10 * time.Millisecond)
	}
	m.down(t, true) // SIGKILL mid-stream
	time.Sleep(500 * time.Millisecond)
	m.up(t) // clean start of the same datadir (InnoDB crash recovery)
	wg.Wait()
	flushUntil(t, w, 60*time.Second)

	s := w.Stats()
	rows, distinct := checkExactlyOnce(t, dsn, n)
	t.Logf("MariaDB killed mid-stream: generated %d, written %d, duplicated %d, lost %d; spilled to disk %d, replayed %d, duplicate keys skipped %d, db errors %d",
		n, distinct, rows-distinct, n-distinct, s.Spilled, s.Replayed, s.Duplicates, s.DBErrors)
	if s.Lost != 0 {
		t.Errorf("lost = %d, want 0", s.Lost)
	}
}

// TestSIGKILLMidReplay runs the replay in a child process and SIGKILLs it
// while it writes; a second writer finishes the job.
func TestSIGKILLMidReplay(t *testing.T) {
	dsn := scratchDB(t, testDSN(t))
	dir := t.TempDir()
	const n = 3000
	fillQueue(t, dir, n)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReplay$")
	cmd.Env = append(os.Environ(), "PBX_HELPER_REPLAY_DSN="+dsn, "PBX_HELPER_REPLAY_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dsn)
	killedAt := -1
	for start := time.Now(); time.Since(start) < 60*time.Second; time.Sleep(5 * time.Millisecond) {
		var got int
		if err := db.QueryRow("SELECT COUNT(*) FROM cdr").Scan(&got); err != nil {
			continue // tables not created yet
		}
		if got >= n/4 {
			killedAt = got
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if killedAt < 0 || killedAt >= n {
		t.Logf("child was not killed mid-replay (rows at kill: %d)", killedAt)
	}

	w := startWriter(t, testOptions(dsn, dir))
	flushUntil(t, w, 60*time.Second)
	s := w.Stats()
	rows, distinct := checkExactlyOnce(t, dsn, n)
	t.Logf("SIGKILL mid-replay at %d rows: generated %d, written %d, duplicated %d, lost %d; restart wrote %d, skipped %d duplicate keys",
		killedAt, n, distinct, rows-distinct, n-distinct, s.Written, s.Duplicates)
}

// TestHelperReplay is the child process of TestSIGKILLMidReplay.
func TestHelperReplay(t *testing.T) {
	dsn, dir := os.Getenv("PBX_HELPER_REPLAY_DSN"), os.Getenv("PBX_HELPER_REPLAY_DIR")
	if dsn == "" {
		t.Skip("helper process for TestSIGKILLMidReplay")
	}
	o := testOptions(dsn, dir)
	o.BatchSize = 10
	w := startWriter(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "helper flush:", err)
	}
}

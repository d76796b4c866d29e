package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Spinning for 50 ms of wall time on a locked thread uses CPU time of the
// thread and the process, never more than the wall time for the thread.
func TestCPUTimeAdvances(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p0, t0, w0 := Process(), Thread(), time.Now()
	x := 0
	for time.Since(w0) < 50*time.Millisecond {
		x++
	}
	wall := time.Since(w0)
	dp, dt := Process()-p0, Thread()-t0
	if dp <= 0 || dt <= 0 || x == 0 {
		t.Fatalf("process CPU +%v, thread CPU +%v over %v of spinning", dp, dt, wall)
	}
	if dt > wall+10*time.Millisecond {
		t.Fatalf("thread CPU +%v over %v of wall time", dt, wall)
	}
}

// Package cputime reads the CPU time a process or thread has used, for
// benchmarks on a shared machine: CPU time is what the work costs whatever
// else runs, wall time how long it waited for a core.
package cputime

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Process is the process's user + system CPU time so far.
func Process() time.Duration { return usage(syscall.RUSAGE_SELF) }

// Thread is the calling thread's user + system CPU time so far (Linux;
// lock the goroutine to its thread around what is measured), to the
// nanosecond (the kernel's per-thread clock: rusage advances in ticks).
func Thread() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func usage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PerOp reports the process CPU time since start divided by b.N as
// "cpu-ns/op" (b.Loop benchmarks: call it after the loop).
func PerOp(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(Process()-start)/float64(b.N), "cpu-ns/op")
	}
}

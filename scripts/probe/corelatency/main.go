//go:build linux

// corelatency measures how long a cache line takes to go from one CPU to
// another and back: two threads pinned to -a and -b pass a counter back
// and forth through one atomic word. Within one core complex this is tens
// of nanoseconds; between vCPUs a host placed on different dies it is
// hundreds, and every hand-off between the packet path's stages (reader,
// packet path, media workers) pays it, which is why the speed-up of
// `replay --workers 2` depends on the machine as much as on the agent:
//
//	go run ./scripts/probe/corelatency            # CPUs 0 and 1
//	go run ./scripts/probe/corelatency -a 0 -b 3
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// pin locks the calling goroutine to its thread and the thread to cpu.
func pin(cpu int) error {
	runtime.LockOSThread()
	var mask [16]uint64
	mask[cpu/64] |= 1 << (cpu % 64)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0]))); errno != 0 {
		return fmt.Errorf("sched_setaffinity cpu %d: %w", cpu, errno)
	}
	return nil
}

func main() {
	a := flag.Int("a", 0, "first CPU")
	b := flag.Int("b", 1, "second CPU")
	n := flag.Int64("n", 2_000_000, "round trips per measurement")
	rounds := flag.Int("rounds", 5, "measurements")
	flag.Parse()
	if *a < 0 || *b < 0 || *a >= 1024 || *b >= 1024 || *a == *b {
		fmt.Fprintln(os.Stderr, "corelatency: -a and -b must be two different CPUs (0 to 1023)")
		os.Exit(2)
	}
	var word struct {
		_ [64]byte // a line of its own
		v atomic.Int64
		_ [64]byte
	}
	for range *rounds {
		word.v.Store(0)
		var wg sync.WaitGroup
		player := func(cpu int, parity int64) {
			defer wg.Done()
			if err := pin(cpu); err != nil { // the other would wait for ever
				fmt.Fprintln(os.Stderr, "corelatency:", err)
				os.Exit(1)
			}
			for i := int64(0); i < *n; i++ {
				for word.v.Load() != 2*i+parity {
				}
				word.v.Store(2*i + parity + 1)
			}
		}
		wg.Add(2)
		start := time.Now()
		go player(*a, 0)
		go player(*b, 1)
		wg.Wait()
		fmt.Printf("CPU %d ↔ %d: %.0f ns a round trip\n", *a, *b, float64(time.Since(start).Nanoseconds())/float64(*n))
	}
}

// memlines measures what the memory of the machine charges a packet path
// whose per-packet state is many cache lines of one of many objects, the
// shape of pbx-agent's (index slot, call, media state, stream, jitter-buffer
// queues: about 20 lines of 7 kB per call): per "packet" it reads and writes
// the first -lines lines of one of n objects, the objects in turn in a
// random order (each stream gets a packet in turn), asking for the lines of
// the object -ahead packets later first (software prefetch, as the packet
// path reads ahead). It prints ns per packet at 1,000, 10,000 and 100,000
// objects:
//
//	go run ./scripts/probe/memlines -lines 20 -ahead 4
//	go run ./scripts/probe/memlines -lines 5 -ahead 16
//
// -size sets the object's bytes: objects of a few lines packed together
// (-size 256 -lines 4) show what the cost is once all of them fit in the
// last-level cache.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"time"
	"unsafe"

	"pbx-agent/internal/prefetch"
)

func main() {
	lines := flag.Int("lines", 20, "cache lines of an object each packet reads and writes")
	ahead := flag.Int("ahead", 4, "packets ahead whose object's lines are asked for (0: none)")
	packets := flag.Int("packets", 4_000_000, "packets timed per object count")
	size := flag.Int("size", 7168, "bytes of an object, a multiple of 64 (heap per active call ≈ 7 kB)")
	flag.Parse()
	objSize := *size
	if objSize < prefetch.LineSize || objSize%prefetch.LineSize != 0 {
		fmt.Println("-size: a multiple of", prefetch.LineSize)
		return
	}
	if *lines < 1 || *lines*prefetch.LineSize > objSize {
		fmt.Println("-lines: 1 to", objSize/prefetch.LineSize)
		return
	}
	for _, n := range []int{1000, 10000, 100000} {
		arena := make([]uint64, n*objSize/8)
		for i := range arena {
			arena[i] = uint64(i)
		}
		order := rand.Perm(n)
		seq := make([]int32, *packets)
		for i := range seq {
			seq[i] = int32(order[i%n])
		}
		const words = prefetch.LineSize / 8
		var sum uint64
		start := time.Now()
		for i, o := range seq {
			if *ahead > 0 && i+*ahead < len(seq) {
				prefetch.Lines(unsafe.Pointer(&arena[int(seq[i+*ahead])*objSize/8]), *lines)
			}
			obj := arena[int(o)*objSize/8:]
			for l := range *lines {
				obj[l*words]++
				sum += obj[l*words]
			}
		}
		d := time.Since(start)
		fmt.Printf("%7d objects of %d bytes × %d lines, ahead %d: %6.1f ns per packet (%d)\n", n, objSize, *lines, *ahead, float64(d.Nanoseconds())/float64(len(seq)), sum&1)
	}
}

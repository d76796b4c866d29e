package rtp

import (
	"unsafe"

	"pbx-agent/internal/prefetch"
)

// hotLines is how many cache lines the fields Update reads or writes for
// every packet take (Stream's layout puts them first; a Stream in a
// mediaStream starts on a line).
const hotLines = int(unsafe.Offsetof(Stream{}.q1)+prefetch.LineSize-1) / prefetch.LineSize

// Prefetch asks for the cache lines Update will read or write for the
// stream's next voice packet: the per-packet fields and the jitter
// buffers' state, the queue slots the fixed buffers take and give frames
// at, and the adaptive buffer's next history entry. It reads only the
// queue positions. The packet path calls it for a batch of packets'
// streams before updating them one by one: out of the caches their misses
// then overlap instead of coming one packet at a time.
func (s *Stream) Prefetch() {
	prefetch.Lines(unsafe.Pointer(s), hotLines)
	prefetch.Lines(unsafe.Pointer(&s.q1[s.f1.head%jbQueueLen]), 1)
	prefetch.Lines(unsafe.Pointer(&s.q1[(s.f1.head+s.f1.n)%jbQueueLen]), 1)
	prefetch.Lines(unsafe.Pointer(&s.q2[s.f2.head%jbQueueLen]), 1)
	prefetch.Lines(unsafe.Pointer(&s.q2[(s.f2.head+s.f2.n)%jbQueueLen]), 1)
	prefetch.Lines(unsafe.Pointer(&s.delays[s.adapt.pos%adaptHistory]), 1)
}

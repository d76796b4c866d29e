package rtp

import (
	"unsafe"

	"pbx-agent/internal/prefetch"
)

// hotLines is how many cache lines the fields Update reads or writes for
// every packet take (Stream's layout puts them first; a Stream in a
// mediaStream starts on a line); statLines is the part before the jitter
// buffers' state, all a stream with every simulator off touches.
const (
	hotLines  = int(unsafe.Offsetof(Stream{}.q1)+prefetch.LineSize-1) / prefetch.LineSize
	statLines = int(unsafe.Offsetof(Stream{}.f1)+prefetch.LineSize-1) / prefetch.LineSize
)

// Prefetch asks for the cache lines Update reads or writes for every
// packet: the per-packet fields and, when sims (a jitter-buffer simulator
// runs: the stream's configuration, known to the caller without reading
// the stream), the simulators' state. It reads nothing of the stream. The
// packet path calls it for the stream of a packet a few packets ahead,
// then PrefetchQueues a packet or two later, once these lines are in: out
// of the caches the misses then overlap with the work on the packets
// before instead of coming one packet at a time.
func (s *Stream) Prefetch(sims bool) {
	if sims {
		prefetch.Lines(unsafe.Pointer(s), hotLines)
		return
	}
	prefetch.Lines(unsafe.Pointer(s), statLines)
}

// PrefetchQueues asks for the queue slots the fixed buffers that run will
// take and give frames at and the adaptive buffer's next history entry; it
// reads their positions (Prefetch's lines).
func (s *Stream) PrefetchQueues() {
	if s.f1On {
		prefetch.Lines(unsafe.Pointer(&s.q1[s.f1.head%jbQueueLen]), 1)
		prefetch.Lines(unsafe.Pointer(&s.q1[(s.f1.head+s.f1.n)%jbQueueLen]), 1)
	}
	if s.f2On {
		prefetch.Lines(unsafe.Pointer(&s.q2[s.f2.head%jbQueueLen]), 1)
		prefetch.Lines(unsafe.Pointer(&s.q2[(s.f2.head+s.f2.n)%jbQueueLen]), 1)
	}
	if s.adaptOn {
		prefetch.Lines(unsafe.Pointer(&s.delays[s.adapt.pos%adaptHistory]), 1)
	}
}

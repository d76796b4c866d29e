package simulate

// evKind says what an event does when its time comes.
type evKind uint8

const (
	evSpawn    evKind = iota // start the next call (if a slot is free)
	evSIP                    // send step n of call c's SIP schedule
	evRTP                    // nominal send time of RTP packet n of stream dir of call c
	evArrive                 // a jittered RTP packet reaches the capture point
	evRegister               // start the next REGISTER
)

// event is one entry of the generator's time-ordered queue.
type event struct {
	at     int64  // ns since Options.Start
	order  uint64 // insertion counter: ties leave in insertion order
	c      *callState
	n      int32
	rtpTS  uint32
	rtpSeq uint16
	kind   evKind
	dir    uint8
	marker bool
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.order < b.order
}

// eventQueue is a binary min-heap of events by (at, order). It is written out
// rather than built on container/heap to avoid boxing every event.
type eventQueue struct {
	ev    []event
	order uint64
}

func (q *eventQueue) len() int { return len(q.ev) }

func (q *eventQueue) push(e event) {
	e.order = q.order
	q.order++
	q.ev = append(q.ev, e)
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.ev[i].before(&q.ev[p]) {
			break
		}
		q.ev[i], q.ev[p] = q.ev[p], q.ev[i]
		i = p
	}
}

func (q *eventQueue) pop() event {
	top := q.ev[0]
	last := len(q.ev) - 1
	q.ev[0] = q.ev[last]
	q.ev[last] = event{} // drop pointers for the GC
	q.ev = q.ev[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && q.ev[r].before(&q.ev[l]) {
			m = r
		}
		if !q.ev[m].before(&q.ev[i]) {
			break
		}
		q.ev[i], q.ev[m] = q.ev[m], q.ev[i]
		i = m
	}
	return top
}
